"""Checks of values Envoy would reject, done before anything is emitted.

Each check returns an error message (``str``) or ``None`` when the value is fine, or raises
`ValueError` with a message when it also converts the value. Messages name the value, so they
can go into a diagnostic as they are.
"""

from __future__ import annotations

import ipaddress
import re
from re import _parser  # type: ignore[attr-defined]
from typing import Any, Final

# Kubernetes host names: DNS-1123 subdomains, optionally with a leading "*." wildcard label.
_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$")
_FORBIDDEN_IN_PATH = frozenset("?#\0\r\n\t ")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_DURATION = re.compile(r"^(\d{1,12})(ms|s|m|h)?$")
_DURATION_MS: Final = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
MAX_DURATION_MS: Final = 365 * 24 * 3_600_000
# RE2 rejects counted repetitions above 1000.
_RE2_MAX_REPEAT: Final = 1000
_RE2_FLAGS: Final = frozenset("imsU-")
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
    """Reject what RE2 (Envoy's regex engine) rejects, as far as we can tell without RE2.

    Catches Perl/Python-only syntax RE2 lacks (lookaround, backreferences, atomic groups,
    possessive quantifiers, conditionals, comments, ``\\Z``), repeat counts above 1000, and
    anything Python's `re` cannot compile once RE2-only syntax is translated for it. It cannot
    check RE2's program-size limit.
    """
    try:
        python_pattern = _re2_to_python(pattern)
    except ValueError as exc:
        return f"regex {pattern!r} is not RE2 syntax: {exc}"
    try:
        re.compile(python_pattern)
    except re.error as exc:
        return f"regex {pattern!r} is invalid: {exc}"
    except (OverflowError, RecursionError):
        return f"regex {pattern!r} is too large"
    return None


def python_form(pattern: str) -> str:
    """A Python `re` pattern with the same groups as the RE2 `pattern` (which must be valid)."""
    return _re2_to_python(pattern)


def _re2_to_python(pattern: str) -> str:  # noqa: PLR0915 - one linear scanner
    """Scan an RE2 pattern; raise ValueError on syntax RE2 rejects; return a Python equivalent.

    The Python equivalent is only for a syntax check: it keeps the structure (groups,
    quantifiers, classes) and replaces RE2-only escapes with something Python accepts.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    prev_quantifier = False
    while i < n:
        c = pattern[i]
        quantifier = False
        if c == "\\":
            if i + 1 >= n:
                raise ValueError("trailing backslash")
            e = pattern[i + 1]
            if e.isdigit() and e != "0" and not in_class:
                raise ValueError(f"backreference \\{e} is not supported")
            if e == "Z":
                raise ValueError("\\Z is not supported (use \\z or $)")
            if e in "uUN":
                raise ValueError(f"escape \\{e} is not supported")
            if e == "z":
                out.append(r"\Z")
                i += 2
            elif e in "pP":
                # Unicode class: \pL or \p{Greek}; Python has none, any class stands in.
                if i + 2 < n and pattern[i + 2] == "{":
                    end = pattern.find("}", i + 3)
                    if end < 0:
                        raise ValueError("unterminated \\p{...}")
                    i = end + 1
                else:
                    i += 3
                out.append(r"\w")
            elif e == "Q":
                end = pattern.find("\\E", i + 2)
                literal = pattern[i + 2 :] if end < 0 else pattern[i + 2 : end]
                out.append(re.escape(literal))
                i = n if end < 0 else end + 2
            elif e == "C":
                out.append(".")
                i += 2
            elif e == "x" and i + 2 < n and pattern[i + 2] == "{":
                end = pattern.find("}", i + 3)
                if end < 0:
                    raise ValueError("unterminated \\x{...}")
                try:
                    code = int(pattern[i + 3 : end], 16)
                except ValueError:
                    raise ValueError("bad \\x{...} escape") from None
                if code > 0x10FFFF:
                    raise ValueError("\\x{...} is beyond Unicode")
                out.append(f"\\U{code:08x}")
                i = end + 1
            else:
                out.append(pattern[i : i + 2])
                i += 2
        elif in_class:
            if c == "[" and pattern.startswith("[:", i):
                end = pattern.find(":]", i + 2)
                if end > 0:  # POSIX class [:alpha:]
                    out.append(r"\w")
                    i = end + 2
                    continue
            if c == "]":
                in_class = False
            out.append(c)
            i += 1
        elif c == "[":
            in_class = True
            out.append(c)
            i += 1
            # A ']' first in the class (after an optional '^') is a literal.
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":
                out.append(r"\]")
                i += 1
        elif c == "(" and pattern.startswith("(?", i):
            i = _group_opening(pattern, i, out)
        elif c in "*+?":
            if c == "+" and prev_quantifier:
                raise ValueError("possessive quantifiers are not supported")
            quantifier = c != "?" or not prev_quantifier
            out.append(c)
            i += 1
        elif c == "{":
            m = re.match(r"\{(\d+)(,(\d*))?\}", pattern[i:])
            if m:
                if prev_quantifier:
                    raise ValueError("a repetition cannot follow a repetition")
                for bound in (m.group(1), m.group(3)):
                    if bound and int(bound) > _RE2_MAX_REPEAT:
                        raise ValueError(f"repeat count {bound} is above {_RE2_MAX_REPEAT}")
                quantifier = True
                out.append(m.group(0))
                i += len(m.group(0))
            else:
                out.append(r"\{")
                i += 1
        else:
            out.append(c)
            i += 1
        prev_quantifier = quantifier
    if in_class:
        raise ValueError("missing ']'")
    return "".join(out)


def _group_opening(pattern: str, i: int, out: list[str]) -> int:
    """Handle ``(?...`` at `i`; append the Python form to `out`; return the next index."""
    rest = pattern[i + 2 :]
    for prefix, what in (
        ("=", "lookahead"),
        ("!", "negative lookahead"),
        ("<=", "lookbehind"),
        ("<!", "negative lookbehind"),
        (">", "atomic groups"),
        ("(", "conditionals"),
        ("#", "comments"),
    ):
        if rest.startswith(prefix):
            raise ValueError(f"{what} are not supported")
    if rest.startswith("P<") or rest.startswith("<"):
        start = i + (4 if rest.startswith("P<") else 3)
        end = pattern.find(">", start)
        if end < 0:
            raise ValueError("unterminated group name")
        out.append(f"(?P<{pattern[start:end]}>")
        return end + 1
    m = re.match(r"([A-Za-z-]*)([:)])", rest)
    if not m:
        raise ValueError(f"unknown group syntax {pattern[i : i + 4]!r}")
    flags, close = m.group(1), m.group(2)
    bad = set(flags) - _RE2_FLAGS
    if bad:
        raise ValueError(f"flag(s) {''.join(sorted(bad))!r} are not supported (only i, m, s, U)")
    if close == ")":
        # A bare flag group such as (?i): Python 3.11 only allows those at the start; the flags
        # do not change what is valid syntax, so the check drops them.
        return i + 2 + len(m.group(0))
    out.append("(?:")
    return i + 2 + len(m.group(0))


def check_program_size(regex: str, limit: int) -> str | None:
    """Reject a (valid) regex whose RE2 program would likely exceed Envoy's size limit."""
    size = estimate_program_size(regex)
    if size > limit:
        return (
            f"regex {regex!r} is too complex for the gateway (RE2 program size about {size}, "
            f"limit {limit})"
        )
    return None


def estimate_program_size(regex: str) -> int:
    """An upper estimate of RE2's program size for a valid RE2 `regex`.

    Calibrated against Envoy 1.40's reports: a literal byte costs 1, a capture group 2, a
    counted repeat copies its body, plus a fixed overhead. It errs on the large side, since an
    underestimate gets the tenant's whole RouteConfiguration rejected.
    """
    return 3 + _size(_parser.parse(python_form(regex)))


def _size(nodes: Any) -> int:
    total = 0
    for op, av in nodes:
        kind = str(op)
        if kind == "LITERAL":
            total += len(chr(av).encode())
        elif kind in ("NOT_LITERAL", "ANY", "CATEGORY"):
            total += 4
        elif kind == "IN":
            negated = any(str(o) == "NEGATE" for o, _ in av)
            total += 1 + len(av) + (4 if negated else 0)
        elif kind == "AT":
            total += 1
        elif kind == "SUBPATTERN":
            group, _, _, body = av
            total += _size(body) + (2 if group else 0)
        elif kind == "BRANCH":
            branches = av[1]
            total += sum(_size(b) for b in branches) + len(branches) - 1
        elif kind in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, body = av
            inner = _size(body)
            if high == _parser.MAXREPEAT:
                total += inner * max(low, 1) + 1
            else:
                total += inner * high + (high - low)
        else:  # GROUPREF, ASSERT, ... (not RE2) and anything unforeseen: be generous
            total += 8
    return total
