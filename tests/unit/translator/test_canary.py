"""Canary Ingresses: header, cookie and weight rules added to the primary's routes."""

from __future__ import annotations

from typing import Any

from ripple_translator.translate import Reason, Severity, Translation
from tests.unit.translator import decode, k8s

SERVICES = [k8s.service(), k8s.service("web-v2")]
SLICES = [
    k8s.endpoint_slice(endpoints=[k8s.endpoint("10.0.0.1")]),
    k8s.endpoint_slice("web-v2-x", service_name="web-v2", endpoints=[k8s.endpoint("10.0.0.2")]),
]
PRIMARY = "t1/shop/web:80"
CANARY = "t1/shop/web-v2:80"


def canary(**annotations: str) -> k8s.JsonDict:
    return k8s.ingress(
        "web-canary",
        rules=[k8s.rule("shop.example.com", k8s.path("/", service="web-v2"))],
        annotations=k8s.nginx(canary="true", **annotations),
        created="2024-06-01T00:00:00Z",
    )


def run(*ingresses: k8s.JsonDict) -> Translation:
    return k8s.run(*ingresses, services=SERVICES, slices=SLICES)


def header_routes(t: Translation) -> list[tuple[str, str, str, str]]:
    """(header, exact value or regex, target cluster, route name) of header-matched routes."""
    out = []
    for r in decode.routes(t):
        for h in r.match.headers:
            value = h.string_match.exact or h.string_match.safe_regex.regex
            out.append((h.name, value, r.route.cluster, r.name))
    return out


def weights(route: Any) -> list[tuple[str, int]]:
    return [(c.name, c.weight.value) for c in route.route.weighted_clusters.clusters]


def test_canary_by_header_routes_always_to_canary_and_never_to_primary() -> None:
    t = run(k8s.ingress(), canary(canary_by_header="x-canary"))

    assert header_routes(t) == [
        ("x-canary", "always", CANARY, "shop/web-canary"),
        ("x-canary", "never", PRIMARY, "shop/web"),
    ]
    assert decode.main_route(t).route.cluster == PRIMARY


def test_canary_by_header_value_matches_that_value() -> None:
    t = run(k8s.ingress(), canary(canary_by_header="x-canary", canary_by_header_value="v2"))

    assert header_routes(t) == [("x-canary", "v2", CANARY, "shop/web-canary")]


def test_canary_by_header_pattern_matches_a_regex_anywhere() -> None:
    t = run(k8s.ingress(), canary(canary_by_header="x-user", canary_by_header_pattern="^beta-"))

    assert header_routes(t) == [("x-user", ".*(?:^beta-).*", CANARY, "shop/web-canary")]


def test_canary_by_cookie_matches_the_cookie_header() -> None:
    t = run(k8s.ingress(), canary(canary_by_cookie="canary"))

    [(name, always, target, _), (_, never, back, _)] = header_routes(t)
    assert (name, target, back) == ("cookie", CANARY, PRIMARY)
    assert always == "(?:.*;\\s*)?canary=always(?:;.*)?"
    assert never == "(?:.*;\\s*)?canary=never(?:;.*)?"


def test_header_rules_come_before_cookie_rules() -> None:
    t = run(k8s.ingress(), canary(canary_by_header="x-canary", canary_by_cookie="c"))

    assert [h[0] for h in header_routes(t)] == ["x-canary", "x-canary", "cookie", "cookie"]


def test_canary_weight_splits_the_primary_route() -> None:
    t = run(k8s.ingress(), canary(canary_weight="30"))

    assert weights(decode.main_route(t)) == [(PRIMARY, 70), (CANARY, 30)]


def test_canary_weight_total_changes_the_split() -> None:
    t = run(k8s.ingress(), canary(canary_weight="1", canary_weight_total="1000"))

    assert weights(decode.main_route(t)) == [(PRIMARY, 999), (CANARY, 1)]


def test_full_canary_weight_sends_everything_to_the_canary() -> None:
    t = run(k8s.ingress(), canary(canary_weight="100"))

    assert decode.main_route(t).route.cluster == CANARY


def test_canary_routes_use_the_primarys_route_settings() -> None:
    primary = k8s.ingress(
        annotations=k8s.nginx(
            upstream_vhost="internal", proxy_read_timeout="7", proxy_send_timeout="7"
        )
    )
    t = run(primary, canary(canary_by_header="x-canary"))

    first = decode.routes(t)[0]
    assert first.route.cluster == CANARY
    assert (first.route.host_rewrite_literal, first.route.idle_timeout.seconds) == ("internal", 7)


def test_non_canary_annotations_on_a_canary_are_ignored_with_a_warning() -> None:
    t = run(k8s.ingress(), canary(canary_weight="10", upstream_vhost="evil"))

    assert decode.main_route(t).route.host_rewrite_literal == ""
    [d] = decode.diags(t, Reason.ANNOTATION_IGNORED)
    assert (d.object.name, d.severity) == ("web-canary", Severity.WARNING)


def test_canary_load_balance_applies_to_the_canary_cluster() -> None:
    t = run(k8s.ingress(), canary(canary_weight="10", load_balance="ewma"))

    assert weights(decode.main_route(t)) == [(PRIMARY, 90), (CANARY + "~least_request", 10)]


def test_canary_without_a_primary_is_reported_and_gets_no_route() -> None:
    t = run(canary(canary_weight="50"))

    assert t.hosts == ()
    [d] = decode.diags(t, Reason.CANARY_WITHOUT_PRIMARY)
    assert d.object.name == "web-canary"


def test_canary_does_not_conflict_with_its_primary() -> None:
    t = run(k8s.ingress(), canary(canary_weight="50"))

    assert decode.diags(t, Reason.PATH_CONFLICT) == []


def test_second_canary_for_the_same_path_is_reported() -> None:
    second = canary(canary_weight="5")
    second["metadata"]["name"] = "web-canary-2"
    second["metadata"]["creationTimestamp"] = "2024-07-01T00:00:00Z"
    t = run(k8s.ingress(), canary(canary_weight="10"), second)

    assert weights(decode.main_route(t)) == [(PRIMARY, 90), (CANARY, 10)]
    [d] = decode.diags(t, Reason.CANARY_CONFLICT)
    assert d.object.name == "web-canary-2"


def test_canary_annotations_on_a_primary_are_reported() -> None:
    t = run(k8s.ingress(annotations=k8s.nginx(canary_weight="10")))

    assert decode.main_route(t).route.cluster == PRIMARY
    assert decode.diags(t, Reason.ANNOTATION_IGNORED, Severity.WARNING)
