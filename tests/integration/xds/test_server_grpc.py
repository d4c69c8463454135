"""The grpcio aio adapter with a grpc client on 127.0.0.1 (no Envoy): wire format, NACK
records, fan-out and stream cleanup."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc.aio
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.rpc import status_pb2

from ripple_common.resources import Resource, TypeUrl
from ripple_xds.server import XdsServer
from ripple_xds.snapshot import SnapshotCache
from tests.waiting import eventually

CDS = TypeUrl.CLUSTER
TIMEOUT_S = 5.0


def _cluster(name: str, body: bytes = b"\x0a\x01x") -> Resource:
    return Resource(CDS, name, body)


@pytest.fixture
async def cache_and_server() -> AsyncIterator[tuple[SnapshotCache, XdsServer]]:
    cache = SnapshotCache()
    server = XdsServer(cache, host="127.0.0.1", port=0, grace_seconds=0.1)
    await server.start()
    try:
        yield cache, server
    finally:
        await server.stop()


@pytest.fixture
async def stub(cache_and_server: tuple[SnapshotCache, XdsServer]) -> AsyncIterator[Any]:
    _, server = cache_and_server
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)


def _node(node_id: str) -> Any:
    return base_pb2.Node(id=node_id)


async def _read(call: Any) -> Any:
    return await asyncio.wait_for(call.read(), TIMEOUT_S)


async def test_sotw_response_carries_the_cached_bytes(
    cache_and_server: tuple[SnapshotCache, XdsServer], stub: Any
) -> None:
    cache, _ = cache_and_server
    cache.apply(upserts=[_cluster("a", b"\x0a\x01a\xff\xfe")])  # bytes passed through as is
    call = stub.StreamAggregatedResources()
    await call.write(discovery_pb2.DiscoveryRequest(node=_node("n1"), type_url=CDS.value))
    response = await _read(call)
    assert [(r.type_url, r.value) for r in response.resources] == [
        (CDS.value, b"\x0a\x01a\xff\xfe")
    ]
    call.cancel()


async def test_delta_stream_is_sent_removals(
    cache_and_server: tuple[SnapshotCache, XdsServer], stub: Any
) -> None:
    cache, _ = cache_and_server
    cache.apply(upserts=[_cluster("a"), _cluster("b")])
    call = stub.DeltaAggregatedResources()
    await call.write(discovery_pb2.DeltaDiscoveryRequest(node=_node("n1"), type_url=CDS.value))
    first = await _read(call)
    assert sorted(r.name for r in first.resources) == ["a", "b"]
    await call.write(
        discovery_pb2.DeltaDiscoveryRequest(type_url=CDS.value, response_nonce=first.nonce)
    )
    cache.apply(removals=[(CDS, "a")])
    second = await _read(call)
    assert (list(second.removed_resources), len(second.resources)) == (["a"], 0)
    call.cancel()


async def test_nack_is_recorded_with_node_and_error_text(
    cache_and_server: tuple[SnapshotCache, XdsServer], stub: Any
) -> None:
    cache, server = cache_and_server
    cache.apply(upserts=[_cluster("a")])
    call = stub.StreamAggregatedResources()
    await call.write(discovery_pb2.DiscoveryRequest(node=_node("gw-7"), type_url=CDS.value))
    sent = await _read(call)
    await call.write(
        discovery_pb2.DiscoveryRequest(
            type_url=CDS.value,
            response_nonce=sent.nonce,
            error_detail=status_pb2.Status(code=3, message="cluster a: no endpoints"),
        )
    )
    await eventually(lambda: len(server.stats.nack_log) > 0, within_s=TIMEOUT_S, every_s=0.01)
    record = server.stats.nack_log[0]
    assert (record.node_id, record.mode, record.type_url, record.error, record.names) == (
        "gw-7",
        "sotw",
        CDS,
        "cluster a: no endpoints",
        ("a",),
    )
    assert record.rejected_version == sent.version_info
    call.cancel()


async def test_one_change_reaches_every_stream(
    cache_and_server: tuple[SnapshotCache, XdsServer], stub: Any
) -> None:
    cache, _ = cache_and_server
    calls = [stub.DeltaAggregatedResources() for _ in range(3)]
    for i, call in enumerate(calls):
        await call.write(
            discovery_pb2.DeltaDiscoveryRequest(node=_node(f"n{i}"), type_url=CDS.value)
        )
        empty = await _read(call)  # the first answer to a wildcard, empty
        await call.write(
            discovery_pb2.DeltaDiscoveryRequest(type_url=CDS.value, response_nonce=empty.nonce)
        )
    cache.apply(upserts=[_cluster("new")])
    received = [await _read(call) for call in calls]
    assert [[r.name for r in resp.resources] for resp in received] == [["new"]] * 3
    for call in calls:
        call.cancel()


async def test_closed_stream_stops_following_the_cache(
    cache_and_server: tuple[SnapshotCache, XdsServer], stub: Any
) -> None:
    cache, server = cache_and_server
    call = stub.DeltaAggregatedResources()
    await call.write(discovery_pb2.DeltaDiscoveryRequest(node=_node("n"), type_url=CDS.value))
    await _read(call)
    assert cache.subscriber_count == 1
    call.cancel()
    await eventually(
        lambda: cache.subscriber_count == 0 and server.stats.streams_open == 0,
        within_s=TIMEOUT_S,
        every_s=0.01,
    )
