"""use-regex and rewrite-target: host-wide case-insensitive regex paths, as ingress-nginx."""

from __future__ import annotations

import pytest

from ripple_translator.translate import Reason, Severity
from tests.unit.translator import decode, k8s

REGEX_PATH = "/api(/|$)(.*)"


def regex_ingress(name: str = "web", path: str = REGEX_PATH, **annotations: str) -> k8s.JsonDict:
    return k8s.ingress(
        name,
        rules=[k8s.rule("shop.example.com", k8s.path(path, path_type="ImplementationSpecific"))],
        annotations=k8s.nginx(**annotations),
    )


def test_use_regex_matches_case_insensitively_from_the_start() -> None:
    t = k8s.run(regex_ingress(use_regex="true"))

    assert decode.match_of(decode.main_route(t)) == ("safe_regex", "(?i)(?:/api(/|$)(.*)).*")


def test_rewrite_target_rewrites_the_matched_part_with_capture_groups() -> None:
    t = k8s.run(regex_ingress(rewrite_target="/$2"))

    rewrite = decode.main_route(t).route.regex_rewrite
    assert rewrite.pattern.regex == "(?i)^(?:/api(/|$)(.*))"
    assert rewrite.substitution == "/\\2"


def test_rewrite_target_implies_regex_paths() -> None:
    t = k8s.run(regex_ingress(rewrite_target="/$2"))

    assert decode.match_of(decode.main_route(t))[0] == "safe_regex"


def test_use_regex_on_one_ingress_makes_every_path_of_the_host_a_regex() -> None:
    t = k8s.run(
        regex_ingress("a", use_regex="true"),
        k8s.ingress(
            "b", rules=[k8s.rule("shop.example.com", k8s.path("/exact", path_type="Exact"))]
        ),
    )

    kinds = {r.name: decode.match_of(r) for r in decode.routes(t)}
    assert kinds["shop/b"] == ("safe_regex", "(?i)(?:/exact).*")


def test_regex_mode_stays_on_its_host() -> None:
    t = k8s.run(
        regex_ingress("a", use_regex="true"),
        k8s.ingress("b", rules=[k8s.rule("other.example.com", k8s.path("/x", path_type="Exact"))]),
    )

    assert decode.match_of(decode.main_route(t, "other.example.com")) == ("path", "/x")


def test_regex_routes_are_ordered_longest_path_first() -> None:
    t = k8s.run(
        k8s.ingress(
            rules=[
                k8s.rule(
                    "shop.example.com",
                    k8s.path("/a", path_type="ImplementationSpecific"),
                    k8s.path("/a/[0-9]+", path_type="ImplementationSpecific"),
                )
            ],
            annotations=k8s.nginx(use_regex="true"),
        )
    )

    assert [decode.match_of(r)[1] for r in decode.routes(t)] == [
        "(?i)(?:/a/[0-9]+).*",
        "(?i)(?:/a).*",
    ]


@pytest.mark.parametrize(
    "path",
    [
        "/a(?=b)",  # lookahead
        "/a(?<!b)",  # lookbehind
        "/(a)\\1",  # backreference
        "/a*+",  # possessive
        "/(?>a)",  # atomic group
        "/a\\Z",  # \Z
        "/a{1001}",  # repeat count
        "/a(",  # unbalanced
        "/[a",  # unterminated class
    ],
)
def test_invalid_regex_leaves_the_ingress_out(path: str) -> None:
    t = k8s.run(regex_ingress("bad", path, use_regex="true"))

    assert t.hosts == ()
    [d] = decode.diags(t, Reason.INVALID_PATH)
    assert (d.object.name, d.severity) == ("bad", Severity.ERROR)


def test_invalid_regex_of_one_ingress_leaves_other_ingresses_served() -> None:
    t = k8s.run(
        regex_ingress("bad", "/a(?=b)", use_regex="true"),
        k8s.ingress("good", rules=[k8s.rule("other.example.com")]),
    )

    assert t.hosts == ("other.example.com",)


def test_path_invalid_only_as_a_regex_is_left_out_when_a_neighbour_forces_regex_mode() -> None:
    t = k8s.run(
        regex_ingress("a", "/ok", use_regex="true"),
        k8s.ingress(
            "b",
            rules=[
                k8s.rule(
                    "shop.example.com",
                    k8s.path("/x(", path_type="ImplementationSpecific"),
                    k8s.path("/fine", path_type="ImplementationSpecific"),
                )
            ],
        ),
    )

    assert [decode.match_of(r)[1] for r in decode.routes(t) if r.name == "shop/b"] == [
        "(?i)(?:/fine).*"
    ]
    [d] = decode.diags(t, Reason.INVALID_PATH)
    assert d.object.name == "b"
    assert "shop/a" in d.message


def test_rewrite_target_referring_to_a_missing_group_is_an_error() -> None:
    t = k8s.run(regex_ingress(path="/api/(.*)", rewrite_target="/$2"))

    assert t.hosts == ()
    [d] = decode.diags(t, Reason.INVALID_PATH)
    assert "group 2" in d.message


def test_regex_too_large_for_envoy_is_an_error() -> None:
    t = k8s.run(regex_ingress(path="/" + "abcdefghij" * 20, use_regex="true"))

    assert t.hosts == ()
    [d] = decode.diags(t, Reason.INVALID_PATH)
    assert "too complex" in d.message


def test_regex_size_limit_is_configurable() -> None:
    from ripple_translator.translate import TranslateOptions

    t = k8s.run(
        regex_ingress(path="/" + "abcdefghij" * 20, use_regex="true"),
        options=TranslateOptions(max_regex_program_size=1000),
    )

    assert t.hosts == ("shop.example.com",)
