"""EndpointSlices to ClusterLoadAssignments: ready endpoints only, always with a locality."""

from __future__ import annotations

from typing import Any

from ripple_translator.translate import Reason
from tests.unit.translator import decode, k8s


def assignment(*slices: k8s.JsonDict, ports: Any = None) -> Any:
    services = [k8s.service(ports=ports)] if ports is not None else None
    return decode.endpoints(k8s.run(k8s.ingress(), slices=list(slices), services=services))


def addresses(cla: Any) -> list[tuple[str, int]]:
    return [
        (e.endpoint.address.socket_address.address, e.endpoint.address.socket_address.port_value)
        for group in cla.endpoints
        for e in group.lb_endpoints
    ]


def test_ready_endpoints_are_listed_with_the_slice_target_port() -> None:
    cla = assignment(k8s.endpoint_slice(endpoints=[k8s.endpoint("10.0.0.1", "10.0.0.2")]))

    assert cla.cluster_name == "t1/shop/web:80"
    assert addresses(cla) == [("10.0.0.1", 8080), ("10.0.0.2", 8080)]


def test_not_ready_endpoints_are_left_out() -> None:
    cla = assignment(
        k8s.endpoint_slice(
            endpoints=[k8s.endpoint("10.0.0.1"), k8s.endpoint("10.0.0.2", ready=False)]
        )
    )

    assert addresses(cla) == [("10.0.0.1", 8080)]


def test_absent_ready_condition_counts_as_ready() -> None:
    cla = assignment(k8s.endpoint_slice(endpoints=[k8s.endpoint("10.0.0.1", ready=None)]))

    assert addresses(cla) == [("10.0.0.1", 8080)]


def test_every_group_has_a_locality_even_without_zone() -> None:
    cla = assignment(k8s.endpoint_slice(endpoints=[k8s.endpoint("10.0.0.1", zone=None)]))

    [group] = cla.endpoints
    assert group.HasField("locality")
    assert (group.locality.zone, group.locality.sub_zone) == ("", "")


def test_endpoints_are_grouped_by_zone_and_node() -> None:
    cla = assignment(
        k8s.endpoint_slice(
            endpoints=[
                k8s.endpoint("10.0.0.3", zone="b", node="n2"),
                k8s.endpoint("10.0.0.1", zone="a", node="n1"),
                k8s.endpoint("10.0.0.2", zone="a", node="n1"),
            ]
        )
    )

    groups = [
        (g.locality.zone, g.locality.sub_zone, g.load_balancing_weight.value) for g in cla.endpoints
    ]
    assert groups == [("a", "n1", 2), ("b", "n2", 1)]


def test_an_address_in_two_slices_is_listed_once() -> None:
    cla = assignment(
        k8s.endpoint_slice("web-a", endpoints=[k8s.endpoint("10.0.0.1")]),
        k8s.endpoint_slice("web-b", endpoints=[k8s.endpoint("10.0.0.1", zone="zone-b")]),
    )

    assert addresses(cla) == [("10.0.0.1", 8080)]
    assert cla.endpoints[0].locality.zone == "zone-a"


def test_named_service_port_picks_the_slice_port_of_that_name() -> None:
    ports = [{"name": "http", "port": 80}, {"name": "admin", "port": 9000}]
    cla = assignment(
        k8s.endpoint_slice(
            endpoints=[k8s.endpoint("10.0.0.1")],
            ports=[{"name": "admin", "port": 9090}, {"name": "http", "port": 8081}],
        ),
        ports=ports,
    )

    assert addresses(cla) == [("10.0.0.1", 8081)]


def test_unnamed_single_port_service_matches_the_unnamed_slice_port() -> None:
    cla = assignment(
        k8s.endpoint_slice(endpoints=[k8s.endpoint("10.0.0.1")], ports=[{"port": 3000}]),
        ports=[{"port": 80, "targetPort": 3000}],
    )

    assert addresses(cla) == [("10.0.0.1", 3000)]


def test_slices_of_other_services_are_ignored() -> None:
    cla = assignment(
        k8s.endpoint_slice(service_name="other", endpoints=[k8s.endpoint("10.0.0.9")]),
    )

    assert addresses(cla) == []


def test_ipv6_endpoints_are_supported() -> None:
    cla = assignment(
        k8s.endpoint_slice(address_type="IPv6", endpoints=[k8s.endpoint("2001:db8::1")])
    )

    assert addresses(cla) == [("2001:db8::1", 8080)]


def test_fqdn_slices_are_reported_on_the_service() -> None:
    t = k8s.run(
        k8s.ingress(),
        slices=[k8s.endpoint_slice(address_type="FQDN", endpoints=[k8s.endpoint("db.local")])],
    )

    assert addresses(decode.endpoints(t)) == []
    [d] = decode.diags(t, Reason.UNSUPPORTED_ENDPOINTS)
    assert (d.object.kind, d.object.name) == ("Service", "web")


def test_service_without_endpoints_still_gets_an_empty_assignment() -> None:
    cla = assignment()

    assert list(cla.endpoints) == []
