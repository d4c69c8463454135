"""Value checks: RE2 syntax and program size (RE2 itself, as Envoy compiles a regex),
durations, CIDRs, hosts."""

from __future__ import annotations

import pytest

from ripple_translator.translate import validate


@pytest.mark.parametrize(
    "pattern",
    [
        "/api(/|$)(.*)",
        "/a[0-9]{1,3}/b",
        "/(?P<name>x)",
        "/(?i)mixed",  # RE2 allows flags anywhere; Python 3.11 does not
        "/\\pL+",
        "/\\p{Greek}",
        "/\\x{e9}",
        # The hand-written checker was wrong about these (Python's parser, RE2's verdict):
        "/\\C",  # any byte
        "/(?<name>x)",  # RE2's own named group syntax
        "/(?P<1a>x)",  # a group name Python refuses
        "/x{,3}",  # a literal in RE2
        "/[\\d-z]",
        "/\\Qa.b\\E",
        "/a\\z",
        "/[[:alpha:]]+",
        "/a*?",
        "/[]a]",
    ],
)
def test_re2_accepts(pattern: str) -> None:
    assert validate.check_re2(pattern) is None


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("/a(?=b)", "lookahead"),
        ("/a(?!b)", "lookahead"),
        ("/(?<=a)b", "lookbehind"),
        ("/(?<!a)b", "lookbehind"),
        ("/(a)\\1", "backreference"),
        ("/(?P<n>a)(?P=n)", "backreference"),
        ("/(?>a)", "atomic"),
        ("/a++", "possessive"),
        ("/a{2}+", "possessive"),
        ("/(?(1)a|b)", "conditional"),
        ("/(?#c)", "comment"),
        ("/a\\Z", "\\Z"),
        ("/(?x)a", "flag"),
        ("/a{1001}", "above 1000"),
        ("/a**", "cannot follow a repetition"),
        ("/a{2}{3}", "cannot follow a repetition"),
        # The hand-written checker accepted these, which Envoy rejects:
        ("/\\x{263a}", "beyond \\xff"),  # Envoy compiles as Latin-1
        ("/(?P<é>x)", "invalid named capture group"),
        ("/\\p{Foo}", "invalid character class range"),
        ("/[[:foo:]]", "invalid character class range"),
        ("/(a{1000}){1000}", "above 1000"),
        ("/\\e", "invalid escape sequence"),
        ("/[a-\\d]", "invalid escape sequence"),
        ("/\\u0041", "\\u"),
        ("/a(", "invalid"),
        ("/[a", "missing"),
        ("*a", "invalid"),
        ("/a\\", "backslash"),
    ],
)
def test_re2_rejects(pattern: str, why: str) -> None:
    problem = validate.check_re2(pattern)

    assert problem is not None
    assert why in problem


@pytest.mark.parametrize(
    ("value", "ms"),
    [("60", 60_000), ("5s", 5_000), ("250ms", 250), ("2m", 120_000), ("1h", 3_600_000)],
)
def test_duration_parses(value: str, ms: int) -> None:
    assert validate.parse_duration_ms(value) == ms


@pytest.mark.parametrize("value", ["", "0", "-1", "1.5", "5d", "s", "9999999999999"])
def test_duration_rejects(value: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        validate.parse_duration_ms(value)


def test_cidrs_accept_single_addresses_and_host_bits() -> None:
    nets = validate.parse_cidrs("10.0.0.1, 10.1.2.3/16,::1")

    assert [str(n) for n in nets] == ["10.0.0.1/32", "10.1.0.0/16", "::1/128"]


@pytest.mark.parametrize("value", ["", " , ", "10.0.0.0/33", "example.com"])
def test_cidrs_reject(value: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        validate.parse_cidrs(value)


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("shop.example.com", True),
        ("*.example.com", True),
        ("a", True),
        ("Shop.example.com", False),
        ("a.*.example.com", False),
        ("-a.example.com", False),
        ("a_b.example.com", False),
        ("a" * 64 + ".com", False),
    ],
)
def test_host_check(host: str, ok: bool) -> None:
    assert (validate.check_host(host) is None) is ok


# Program sizes Envoy 1.40 reports for "(?i)(?:PATH).*" (`re2.max_program_size.error_level` 1
# makes it report every size; test_envoy_accepts.py asks the real Envoy again when it exists).
ENVOY_SIZES = [
    ("/a", 8), ("/abcdefghij", 17), ("/[a-z]+", 10), ("/[^/]+", 11), ("/.*", 7), ("/(a|b)", 10),
    ("/x{1,20}", 46), ("/x{3}", 10), ("/\\d+", 10), ("/\\w+", 12), ("/(?:foo)?bar", 14),
    ("/[a-zA-Z0-9_-]+/x", 14), ("/é", 9), ("/\\s", 10), ("/(a)(b)(c)", 16),
    ("/" + "abcdefghij" * 20, 207),
]  # fmt: skip


@pytest.mark.parametrize(("path", "envoy_size"), ENVOY_SIZES)
def test_program_size_is_envoys(path: str, envoy_size: int) -> None:
    assert validate.program_size(f"(?i)(?:{path}).*") == envoy_size


def test_program_size_check_names_the_size_and_the_limit() -> None:
    regex = "(?i)(?:/" + "abcdefghij" * 20 + ").*"

    assert validate.check_program_size(regex, 207) is None
    problem = validate.check_program_size(regex, 206)
    assert problem is not None
    assert "RE2 program size 207, limit 206" in problem


def test_capture_groups_are_re2s() -> None:
    assert validate.capture_groups("/(a)(?:b)(?P<c>c)(?<d>d)") == 3


def test_envoy_literal_escapes_percent() -> None:
    assert validate.envoy_literal("100% %s") == "100%% %%s"
