"""Hand-encoded responses parse with the generated Envoy classes and carry each resource's
cached bytes unchanged."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.service.discovery.v3 import discovery_pb2

from ripple_common.resources import Resource
from ripple_xds.delta import DeltaResponse
from ripple_xds.snapshot import Entry
from ripple_xds.sotw import SotwResponse
from ripple_xds.wire import encode_delta, encode_sotw
from tests.unit.xds.helpers import CDS, RDS


def _entry(resource: Resource) -> Entry:
    return Entry.of(resource)


def _cluster(name: str, *, size: int = 0) -> Resource:
    message = cluster_pb2.Cluster(name=name, alt_stat_name="x" * size)
    return Resource(CDS, name, message.SerializeToString())


def test_sotw_response_parses_with_cached_bytes_as_any_values() -> None:
    a, b = _cluster("a"), _cluster("b", size=300)  # 300 B: a two-byte length varint
    response = SotwResponse(CDS, version_info="v7", nonce="3", resources=(_entry(a), _entry(b)))
    parsed = discovery_pb2.DiscoveryResponse.FromString(encode_sotw(response))
    assert (parsed.version_info, parsed.type_url, parsed.nonce) == ("v7", CDS.value, "3")
    assert [(r.type_url, r.value) for r in parsed.resources] == [
        (CDS.value, a.body),
        (CDS.value, b.body),
    ]


def test_sotw_response_with_no_resources_parses_empty() -> None:
    response = SotwResponse(CDS, version_info="v0", nonce="1", resources=())
    parsed = discovery_pb2.DiscoveryResponse.FromString(encode_sotw(response))
    assert (len(parsed.resources), parsed.version_info, parsed.nonce) == (0, "v0", "1")


def test_delta_response_parses_with_names_versions_and_removals() -> None:
    big = Resource(RDS, "r" * 200, b"\x0a\x03abc" * 50_000)  # 350 kB: a three-byte varint
    response = DeltaResponse(
        RDS, system_version_info="s1", nonce="9", resources=(_entry(big),), removed=("gone", "")
    )
    parsed = discovery_pb2.DeltaDiscoveryResponse.FromString(encode_delta(response))
    assert (parsed.system_version_info, parsed.type_url, parsed.nonce) == ("s1", RDS.value, "9")
    [resource] = parsed.resources
    assert (resource.name, resource.version) == (big.name, big.version)
    assert (resource.resource.type_url, resource.resource.value) == (RDS.value, big.body)
    assert list(parsed.removed_resources) == ["gone", ""]
