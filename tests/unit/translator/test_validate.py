"""Value checks: RE2 syntax, durations, CIDRs, hosts, regex program size."""

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
        "/\\x{263a}",
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
        ("/(?P<n>a)(?P=n)", "group syntax"),
        ("/(?>a)", "atomic"),
        ("/a++", "possessive"),
        ("/a{2}+", "possessive"),
        ("/(?(1)a|b)", "conditional"),
        ("/(?#c)", "comment"),
        ("/a\\Z", "\\Z"),
        ("/(?x)a", "flag"),
        ("/a{1001}", "above 1000"),
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


# Program sizes Envoy 1.40 reported for "(?i)(?:PATH).*" (see test_envoy_accepts.py).
ENVOY_SIZES = [
    ("/a", 8), ("/abcdefghij", 17), ("/[a-z]+", 9), ("/[^/]+", 10), ("/.*", 9), ("/(a|b)", 10),
    ("/x{1,20}", 46), ("/x{3}", 10), ("/\\d+", 9), ("/\\w+", 11), ("/(?:foo)?bar", 14),
    ("/[a-zA-Z0-9_-]+/x", 14), ("/é", 9), ("/\\s", 10), ("/(a)(b)(c)", 16),
    ("/" + "abcdefghij" * 20, 207),
]  # fmt: skip


@pytest.mark.parametrize(("path", "envoy_size"), ENVOY_SIZES)
def test_program_size_estimate_never_undershoots_envoy(path: str, envoy_size: int) -> None:
    estimate = validate.estimate_program_size(f"(?i)(?:{path}).*")

    assert envoy_size <= estimate <= envoy_size + 10


def test_envoy_literal_escapes_percent() -> None:
    assert validate.envoy_literal("100% %s") == "100%% %%s"
