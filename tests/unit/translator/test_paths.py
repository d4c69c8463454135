"""Ingress paths to Envoy route matches, and their order."""

from __future__ import annotations

import pytest

from ripple_common.resources import TypeUrl
from ripple_translator.translate import Reason, Severity
from tests.unit.translator import decode, k8s


@pytest.mark.parametrize(
    ("path", "path_type", "expected"),
    [
        ("/api", "Exact", ("path", "/api")),
        ("/api", "Prefix", ("path_separated_prefix", "/api")),
        ("/api/", "Prefix", ("path_separated_prefix", "/api")),
        ("/", "Prefix", ("prefix", "/")),
        ("/api", "ImplementationSpecific", ("prefix", "/api")),
    ],
)
def test_path_type_becomes_its_envoy_match(
    path: str, path_type: str, expected: tuple[str, str]
) -> None:
    t = k8s.run(
        k8s.ingress(rules=[k8s.rule("shop.example.com", k8s.path(path, path_type=path_type))])
    )

    assert decode.match_of(decode.main_route(t)) == expected


def test_missing_path_type_is_implementation_specific() -> None:
    ing = k8s.ingress()
    del ing["spec"]["rules"][0]["http"]["paths"][0]["pathType"]
    ing["spec"]["rules"][0]["http"]["paths"][0]["path"] = "/x"

    assert decode.match_of(decode.main_route(k8s.run(ing))) == ("prefix", "/x")


def test_routes_are_ordered_exact_first_then_longest_prefix() -> None:
    t = k8s.run(
        k8s.ingress(
            rules=[
                k8s.rule(
                    "shop.example.com",
                    k8s.path("/"),
                    k8s.path("/a/b"),
                    k8s.path("/a", path_type="ImplementationSpecific"),
                    k8s.path("/a"),
                    k8s.path("/z", path_type="Exact"),
                )
            ]
        )
    )

    assert [decode.match_of(r) for r in decode.routes(t)] == [
        ("path", "/z"),
        ("path_separated_prefix", "/a/b"),
        ("path_separated_prefix", "/a"),
        ("prefix", "/a"),
        ("prefix", "/"),
    ]


def test_paths_of_several_ingresses_on_one_host_are_ordered_together() -> None:
    t = k8s.run(
        k8s.ingress("a", rules=[k8s.rule("shop.example.com", k8s.path("/"))]),
        k8s.ingress("b", rules=[k8s.rule("shop.example.com", k8s.path("/api/v1"))]),
    )

    assert [r.name for r in decode.routes(t)] == ["shop/b", "shop/a"]


def test_route_forwards_to_the_service_port_cluster_without_a_total_timeout() -> None:
    route = decode.main_route(k8s.run(k8s.ingress()))

    assert route.route.cluster == "t1/shop/web:80"
    assert route.route.HasField("timeout")
    assert route.route.timeout.seconds == 0
    assert route.route.idle_timeout.seconds == 60


def test_backend_port_by_name_resolves_through_the_service_ports() -> None:
    t = k8s.run(
        k8s.ingress(rules=[k8s.rule("shop.example.com", k8s.path("/", port="http"))]),
    )

    assert decode.main_route(t).route.cluster == "t1/shop/web:80"


def test_missing_service_answers_503_and_is_reported() -> None:
    t = k8s.run(k8s.ingress(rules=[k8s.rule("shop.example.com", k8s.path("/", service="nope"))]))

    assert decode.main_route(t).direct_response.status == 503
    [d] = decode.diags(t, Reason.SERVICE_NOT_FOUND)
    assert d.severity is Severity.WARNING
    assert (d.object.kind, d.object.name) == ("Ingress", "web")
    assert "shop/nope" in d.message


def test_missing_service_port_answers_503_and_is_reported() -> None:
    t = k8s.run(k8s.ingress(rules=[k8s.rule("shop.example.com", k8s.path("/", port=81))]))

    assert decode.main_route(t).direct_response.status == 503
    assert decode.diags(t, Reason.SERVICE_PORT_NOT_FOUND)


def test_missing_backend_does_not_emit_a_cluster() -> None:
    t = k8s.run(k8s.ingress(rules=[k8s.rule("shop.example.com", k8s.path("/", service="nope"))]))

    assert decode.names(t, TypeUrl.CLUSTER) == []


def test_external_name_service_is_unsupported_and_answers_503() -> None:
    t = k8s.run(k8s.ingress(), services=[k8s.service(type_="ExternalName")])

    assert decode.main_route(t).direct_response.status == 503
    assert decode.diags(t, Reason.UNSUPPORTED_BACKEND)


def test_default_backend_is_the_last_route_of_each_host_of_the_ingress() -> None:
    t = k8s.run(
        k8s.ingress(
            rules=[k8s.rule("shop.example.com", k8s.path("/api", service="api"))],
            default_backend=k8s.backend("web", 80),
        ),
        services=[k8s.service(), k8s.service("api")],
    )

    last = decode.routes(t)[-1]
    assert decode.match_of(last) == ("prefix", "/")
    assert last.route.cluster == "t1/shop/web:80"


def test_default_backend_without_hosts_is_not_a_catch_all() -> None:
    t = k8s.run(k8s.ingress(rules=[], default_backend=k8s.backend()))

    assert t.hosts == ()
    [d] = decode.diags(t, Reason.CATCH_ALL_UNSUPPORTED)
    assert d.severity is Severity.WARNING


def test_rule_without_host_is_left_out_and_reported() -> None:
    t = k8s.run(k8s.ingress(rules=[k8s.rule(None), k8s.rule("shop.example.com")]))

    assert t.hosts == ("shop.example.com",)
    assert decode.diags(t, Reason.CATCH_ALL_UNSUPPORTED)


def test_wildcard_host_gets_its_own_scope() -> None:
    t = k8s.run(k8s.ingress(rules=[k8s.rule("*.example.com"), k8s.rule("shop.example.com")]))

    assert t.hosts == ("*.example.com", "shop.example.com")
    assert not t.diagnostics


@pytest.mark.parametrize("path", ["api", "/a b", "/a?b=1", "/a#x"])
def test_invalid_plain_path_leaves_the_ingress_out(path: str) -> None:
    t = k8s.run(
        k8s.ingress("bad", rules=[k8s.rule("a.example.com", k8s.path(path, path_type="Exact"))]),
        k8s.ingress("good", rules=[k8s.rule("b.example.com")]),
    )

    assert t.hosts == ("b.example.com",)
    [d] = decode.diags(t, Reason.INVALID_PATH)
    assert (d.object.name, d.severity) == ("bad", Severity.ERROR)
