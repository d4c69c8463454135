"""The EDS service name of a cluster, read from its bytes (`ripple_xds.eds_name`), and the
snapshot cache entry that carries it."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2

from ripple_common.resources import Resource
from ripple_translator.translate import envoy, naming
from ripple_translator.translate.annotations import ClusterSettings, LbPolicy
from ripple_xds.eds_name import eds_service_name
from ripple_xds.snapshot import Entry
from tests.unit.xds.helpers import CDS, EDS, eds_cluster, res


def test_service_name_is_read_from_the_cluster() -> None:
    cluster = eds_cluster("c~ring_hash", endpoints="t/ns/web:80")
    assert eds_service_name(cluster.name, cluster.body) == "t/ns/web:80"


def test_cluster_without_service_name_asks_for_its_own_name() -> None:
    cluster = eds_cluster("t/ns/web:80")
    assert eds_service_name(cluster.name, cluster.body) == "t/ns/web:80"


def test_cluster_with_no_eds_config_gives_its_own_name() -> None:
    body = cluster_pb2.Cluster(name="static", type=cluster_pb2.Cluster.STATIC)
    assert eds_service_name("static", body.SerializeToString()) == "static"


def test_fields_around_the_eds_config_are_skipped_by_wire_type() -> None:
    msg = cluster_pb2.Cluster(name="c")
    msg.eds_cluster_config.service_name = "svc"
    msg.connect_timeout.seconds = 5  # length-delimited
    msg.per_connection_buffer_limit_bytes.value = 1  # nested varint
    msg.lb_policy = cluster_pb2.Cluster.RING_HASH  # varint
    msg.common_lb_config.healthy_panic_threshold.value = 12.5  # nested fixed64 (double)
    msg.upstream_bind_config.source_address.port_value = 7
    assert eds_service_name("c", msg.SerializeToString()) == "svc"


def test_bytes_that_are_not_a_message_give_the_cluster_name() -> None:
    for body in (b"c:v1", b"\x1a\x05ab", b"\x08", b"\x1a\x02\x12\x05", b"\x0b"):
        assert eds_service_name("c", body) == "c", body


def test_translator_variants_of_a_service_port_share_its_assignment() -> None:
    """The translator's ring-hash variant (cookie affinity) keeps the service port's
    ClusterLoadAssignment: the xds server must read the name, not derive it from the
    cluster's."""
    endpoints = naming.endpoints_name("t", "ns", "web", 80)
    settings = ClusterSettings(lb_policy=LbPolicy.RING_HASH)
    name = naming.cluster_name(endpoints, settings.variant)
    assert name != endpoints
    resource = envoy.cluster(name, endpoints=endpoints, settings=settings, keepalive_timeout_s=60)
    assert Entry.of(resource).endpoints == endpoints


def test_only_cluster_entries_carry_an_assignment_name() -> None:
    assert Entry.of(res(EDS, "e")).endpoints is None
    assert Entry.of(Resource(CDS, "c", b"c:v1")).endpoints == "c"
