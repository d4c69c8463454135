"""The xds service started in-process (`start_xds` under a Lifecycle) against the stack's
Redis: node identity is enforced on both ADS modes, and /readyz follows the lifecycle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from ripple_common.lifecycle import Lifecycle
from ripple_common.resources import TypeUrl
from ripple_translator.store import RedisTenantStore
from ripple_xds.app import start_xds
from ripple_xds.gateway import HTTP_LISTENER
from ripple_xds.service import XdsService
from ripple_xds.settings import XdsSettings
from tests.conftest import StackEnv
from tests.integration.loopback import free_port, http_get, status
from tests.integration.xds_service.support import (
    tenant_resources,
    write_tenant,
)

TIMEOUT_S = 5.0
LDS = TypeUrl.LISTENER.value
CDS = TypeUrl.CLUSTER.value


@pytest.fixture
async def running(
    stack: StackEnv, store: RedisTenantStore, prefix: str
) -> AsyncIterator[tuple[XdsService, Lifecycle, int]]:
    await write_tenant(store, "ta", tenant_resources("ta", ["a.example.com"], backend_port=9))
    health_port = free_port()
    settings = XdsSettings(
        redis_url=stack["RIPPLE_REDIS_URL"],
        redis_prefix=prefix,
        listen="127.0.0.1:0",
        gateway_http_address="127.0.0.1",
        gateway_http_port=free_port(),
        health_port=health_port,
        shutdown_grace_s=0.2,
        block_ms=200,
    )
    lc = Lifecycle()
    try:
        service = await start_xds(lc, settings)
        yield service, lc, health_port
    finally:
        await lc.aclose()


async def _first_response_or_error(stub: Any, *, delta: bool, node: Any | None) -> Any:
    if delta:
        call = stub.DeltaAggregatedResources()
        await call.write(discovery_pb2.DeltaDiscoveryRequest(node=node, type_url=CDS))
    else:
        call = stub.StreamAggregatedResources()
        await call.write(discovery_pb2.DiscoveryRequest(node=node, type_url=CDS))
    try:
        return await asyncio.wait_for(call.read(), TIMEOUT_S)
    finally:
        call.cancel()


@pytest.mark.parametrize("delta", [True, False], ids=["delta", "sotw"])
async def test_node_without_id_is_refused_with_a_clear_message(
    running: tuple[XdsService, Lifecycle, int], delta: bool
) -> None:
    service, _, _ = running
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.server.port}") as channel:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        for node in (None, base_pb2.Node(id="", cluster="edge")):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _first_response_or_error(stub, delta=delta, node=node)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "node.id" in (refused.value.details() or "")

        response = await _first_response_or_error(stub, delta=delta, node=base_pb2.Node(id="gw-1"))
        assert len(response.resources) == 1  # tenant ta's one cluster
    assert service.stats.nodes_rejected == 2


async def test_identified_node_gets_the_gateway_listener(
    running: tuple[XdsService, Lifecycle, int],
) -> None:
    service, _, _ = running
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.server.port}") as channel:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        call = stub.DeltaAggregatedResources()
        await call.write(
            discovery_pb2.DeltaDiscoveryRequest(node=base_pb2.Node(id="gw-1"), type_url=LDS)
        )
        response = await asyncio.wait_for(call.read(), TIMEOUT_S)
        call.cancel()
    assert [r.name for r in response.resources] == [HTTP_LISTENER]


async def test_readiness_follows_load_and_stop(
    running: tuple[XdsService, Lifecycle, int],
) -> None:
    service, lc, health_port = running
    assert service.source.stats.tenants_loaded == 1
    assert await status(health_port, "/readyz") == 200
    code, metrics = await asyncio.to_thread(http_get, health_port, "/metrics")
    assert code == 200
    assert "ripple_xds_tenants_loaded 1" in metrics.splitlines()
    lc.request_stop()  # what SIGTERM does: readiness drops before anything closes
    assert await asyncio.to_thread(http_get, health_port, "/readyz") == (503, "stopping\n")
    assert await status(health_port, "/healthz") == 200
