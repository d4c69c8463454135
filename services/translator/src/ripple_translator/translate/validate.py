"""Checks of values Envoy would reject, done before anything is emitted.

Each check returns an error message (``str``) or ``None`` when the value is fine, or raises
`ValueError` with a message when it also converts the value. Messages name the value, so they
can go into a diagnostic as they are.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Final

import re2  # type: ignore[import-untyped]

# Kubernetes host names: DNS-1123 subdomains, optionally with a leading "*." wildcard label.
_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$")
_FORBIDDEN_IN_PATH = frozenset("?#\0\r\n\t ")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_DURATION = re.compile(r"^(\d{1,12})(ms|s|m|h)?$")
_DURATION_MS: Final = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
MAX_DURATION_MS: Final = 365 * 24 * 3_600_000
# Envoy's default for the runtime key re2.max_program_size.error_level: a larger regex program
# is rejected (and with it the whole RouteConfiguration).
ENVOY_MAX_PROGRAM_SIZE: Final = 100


def check_host(host: str) -> str | None:
    if len(host) > 253 or not _HOST.match(host):
        return (
            f"host {host!r} is not a valid lower-case DNS name "
            "(an optional leading '*.' is the only wildcard allowed)"
        )
    return None


def check_url_path(path: str) -> str | None:
    """A literal request path (or path prefix) as Envoy matches and writes it."""
    if not path.startswith("/"):
        return f"path {path!r} must start with '/'"
    bad = sorted(set(path) & _FORBIDDEN_IN_PATH)
    if bad:
        return f"path {path!r} holds {', '.join(repr(c) for c in bad)}"
    return None


def is_wildcard(host: str) -> bool:
    return host.startswith("*.")


def check_header_name(name: str, *, request: bool) -> str | None:
    """A header name; with `request` (a header the gateway adds or removes, on requests or
    responses) also not Host, which Envoy refuses to modify."""
    if not _TOKEN.match(name):
        return f"{name!r} is not a valid HTTP header name"
    lowered = name.lower()
    if request and lowered == "host":
        return "the Host header cannot be set or removed this way (Envoy refuses it)"
    return None


def check_header_value(value: str) -> str | None:
    if any(c in value for c in "\r\n\0"):
        return f"header value {value!r} holds a line break or NUL"
    return None


def envoy_literal(value: str) -> str:
    """Escape text for an Envoy header value, where ``%`` starts a substitution command."""
    return value.replace("%", "%%")


def parse_duration_ms(value: str) -> int:
    """An nginx-style duration: a bare number is seconds; units ms, s, m, h. Must be > 0."""
    m = _DURATION.match(value.strip())
    if not m:
        raise ValueError(f"{value!r} is not a duration (a number of seconds, or with ms/s/m/h)")
    ms = int(m.group(1)) * _DURATION_MS[m.group(2) or "s"]
    if ms <= 0:
        raise ValueError(f"duration {value!r} must be positive")
    if ms > MAX_DURATION_MS:
        raise ValueError(f"duration {value!r} is longer than a year")
    return ms


def parse_cidrs(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """A comma-separated list of CIDRs or single addresses, as ingress-nginx accepts them."""
    nets = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or CIDR range") from None
    if not nets:
        raise ValueError("the list of source ranges is empty")
    return tuple(nets)


def check_re2(pattern: str) -> str | None:
    """Reject what Envoy's RE2 rejects: the pattern is compiled by RE2 itself, as Envoy
    compiles it (`_compile`), so the verdict is RE2's; the message explains the usual Perl or
    Python syntax RE2 lacks (lookaround, backreferences, atomic groups, possessive
    quantifiers, ...) and quotes RE2's own error."""
    return _compile(pattern)[1]


def capture_groups(pattern: str) -> int:
    """The number of capture groups of the RE2 `pattern` (which must be valid)."""
    groups: int = _valid(pattern).groups
    return groups


def check_program_size(regex: str, limit: int) -> str | None:
    """Reject a regex whose RE2 program is larger than Envoy's limit (`limit`, Envoy's
    ``re2.max_program_size.error_level``): Envoy would reject the whole RouteConfiguration.
    An invalid regex gets `check_re2`'s message."""
    compiled, problem = _compile(regex)
    if compiled is None:
        return problem
    size: int = compiled.programsize
    if size > limit:
        return (
            f"regex {regex!r} is too complex for the gateway (RE2 program size {size}, "
            f"limit {limit})"
        )
    return None


def program_size(regex: str) -> int:
    """RE2's program size of a valid `regex`, the number Envoy compares with its limit."""
    size: int = _valid(regex).programsize
    return size


# Envoy 1.40 compiles a regex's UTF-8 bytes as Latin-1 text: its accepted syntax and program
# sizes are RE2's with that encoding (measured: `re2.max_program_size.error_level` 1 makes
# Envoy report every size; `tests/unit/translator/test_envoy_accepts.py` compares them). So
# `\x{263a}` is rejected, and `.` or a negated class costs a byte range, not UTF-8's several.
_OPTIONS = re2.Options()
_OPTIONS.encoding = re2.Options.Encoding.LATIN1
_OPTIONS.log_errors = False

# (the start of RE2's error, the start of the fragment it quotes, what it means)
_HINTS: Final = (
    ("invalid perl operator", "(?=", "lookahead is not supported"),
    ("invalid perl operator", "(?!", "negative lookahead is not supported"),
    ("invalid perl operator", "(?<=", "lookbehind is not supported"),
    ("invalid perl operator", "(?<!", "negative lookbehind is not supported"),
    ("invalid perl operator", "(?>", "atomic groups are not supported"),
    ("invalid perl operator", "(?(", "conditionals are not supported"),
    ("invalid perl operator", "(?#", "comments are not supported"),
    ("invalid perl operator", "(?P", "named backreferences are not supported"),
    ("invalid perl operator", "(?", "unknown group syntax or flag (only i, m, s and U)"),
    ("bad repetition operator", "", "a repetition cannot follow a repetition"),
    ("invalid repetition size", "", "a repeat count above 1000 is not supported"),
    ("invalid escape sequence", "\\Z", "\\Z is not supported (use \\z or $)"),
    ("invalid escape sequence", "\\x{", "a character beyond \\xff is not supported"),
    ("trailing \\", "", "a trailing backslash"),
)
_BACKREFERENCE = re.compile(r"^\\[1-9]")
_POSSESSIVE = re.compile(r"[*+?}]\+$")


def _compile(pattern: str) -> tuple[Any, str | None]:
    """(RE2's compiled `pattern`, None) or (None, why it is rejected)."""
    try:
        return re2.compile(pattern.encode(), _OPTIONS), None
    except re2.error as exc:
        return None, f"regex {pattern!r} is invalid in RE2 (Envoy's regex engine): {_explain(exc)}"


def _valid(pattern: str) -> Any:
    compiled, problem = _compile(pattern)
    if compiled is None:
        raise ValueError(problem)
    return compiled


def _explain(exc: re2.error) -> str:
    raw = exc.args[0] if exc.args else ""
    error = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    code, _, fragment = error.partition(": ")
    hint = None
    if code == "bad repetition operator" and _POSSESSIVE.search(fragment):
        hint = "possessive quantifiers are not supported"
    elif code == "invalid escape sequence" and _BACKREFERENCE.match(fragment):
        hint = "backreferences are not supported"
    else:
        hint = next(
            (h for c, f, h in _HINTS if error.startswith(c) and fragment.startswith(f)), None
        )
    return f"{hint} ({error})" if hint else error
