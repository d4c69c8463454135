"""Which resources a tenant gets, how they are named, and how scopes point at routes."""

from __future__ import annotations

import pytest

from ripple_common.resources import TypeUrl
from ripple_translator.translate import TenantState, translate
from ripple_translator.translate.naming import NamingError
from tests.unit.translator import decode, k8s


def test_one_ingress_yields_cluster_endpoints_routes_and_a_scope() -> None:
    t = k8s.run(k8s.ingress())

    assert [(r.type_url.short, r.name) for r in t.resources] == [
        ("cds", "t1/shop/web:80"),
        ("eds", "t1/shop/web:80"),
        ("srds", "t1/scope/shop.example.com"),
        ("rds", "t1/routes"),
    ]


def test_every_host_shares_the_tenants_one_route_configuration() -> None:
    t = k8s.run(
        k8s.ingress("a", rules=[k8s.rule("a.example.com")]),
        k8s.ingress("b", rules=[k8s.rule("b.example.com")]),
    )

    rc = decode.route_config(t)
    assert [vh.name for vh in rc.virtual_hosts] == ["a.example.com", "b.example.com"]
    assert [list(vh.domains) for vh in rc.virtual_hosts] == [["a.example.com"], ["b.example.com"]]


def test_route_configuration_ignores_the_port_in_host_matching() -> None:
    assert decode.route_config(k8s.run(k8s.ingress())).ignore_port_in_host_matching


def test_scope_is_keyed_by_the_exact_host_and_points_at_the_tenant_routes() -> None:
    t = k8s.run(k8s.ingress())

    scope = decode.one(t, TypeUrl.SCOPED_ROUTE)
    assert scope.name == "t1/scope/shop.example.com"
    assert scope.route_configuration_name == "t1/routes"
    assert [f.string_key for f in scope.key.fragments] == ["shop.example.com"]
    assert scope.on_demand is False


def test_hosts_lists_the_served_hosts() -> None:
    t = k8s.run(k8s.ingress(rules=[k8s.rule("b.example.com"), k8s.rule("a.example.com")]))

    assert t.hosts == ("a.example.com", "b.example.com")


def test_two_tenants_with_identical_objects_never_share_a_resource_name() -> None:
    first = k8s.run(k8s.ingress(), tenant="t1")
    second = k8s.run(k8s.ingress(), tenant="t2")

    assert {r.name for r in first.resources}.isdisjoint(r.name for r in second.resources)


def test_cluster_is_an_eds_cluster_over_ads_named_after_the_service_port() -> None:
    c = decode.cluster(k8s.run(k8s.ingress()))

    assert c.name == "t1/shop/web:80"
    assert c.type == c.EDS
    assert c.eds_cluster_config.service_name == "t1/shop/web:80"
    assert c.eds_cluster_config.eds_config.HasField("ads")
    assert c.eds_cluster_config.eds_config.resource_api_version == 2  # V3


def test_a_tenant_without_ingresses_yields_nothing() -> None:
    t = k8s.run()

    assert t.resources == ()
    assert t.diagnostics == ()


@pytest.mark.parametrize("tenant", ["", "a/b", "-x", "x y"])
def test_an_unusable_tenant_name_is_refused(tenant: str) -> None:
    with pytest.raises(NamingError):
        translate(TenantState(tenant=tenant))


def test_resources_are_serialized_deterministically() -> None:
    ingresses = [
        k8s.ingress(
            "a",
            rules=[k8s.rule("a.example.com", k8s.path("/x"), k8s.path("/y"))],
            annotations=k8s.nginx(enable_cors="true", whitelist_source_range="10.0.0.0/8"),
        ),
        k8s.ingress("b", rules=[k8s.rule("b.example.com")], created="2024-02-01T00:00:00Z"),
    ]
    forward = k8s.run(*ingresses)
    backward = k8s.run(*reversed(ingresses))

    assert forward.resources == backward.resources
    assert [r.body for r in forward.resources] == [r.body for r in backward.resources]
    assert forward.diagnostics == backward.diagnostics
