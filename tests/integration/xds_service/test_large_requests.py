"""A gateway holding hundreds of thousands of hosts resumes its stream (issue #17, found at
200,000 Ingresses): reconnecting, Envoy's first Delta request lists every resource it holds
(`initial_resource_versions`), about 70 bytes a host, 14 MB for 200,000 scopes. grpc's
default limit on a received message (4 MiB) refused it with RESOURCE_EXHAUSTED, the gateway
retried for ever, and no change reached it again."""

from __future__ import annotations

import asyncio

import grpc.aio
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from ripple_common.resources import TypeUrl
from ripple_xds.server import XdsServer
from tests.unit.xds.helpers import cache_with, res

SRDS = TypeUrl.SCOPED_ROUTE
HELD = 150_000  # scopes the reconnecting gateway lists: ~10 MB


async def test_a_reconnecting_gateway_listing_every_scope_it_holds_is_answered() -> None:
    tenant_scope = "t/scope/new.example.com"
    server = XdsServer(cache_with(res(SRDS, tenant_scope)), require_node_id=True)
    await server.start()
    try:
        held = {f"t{i % 20_000:05d}/scope/i{i}.t{i % 20_000}.example.com": "1" for i in range(HELD)}
        request = discovery_pb2.DeltaDiscoveryRequest(
            node=base_pb2.Node(id="gw-1"),
            type_url=str(SRDS),
            initial_resource_versions=held,
        )
        assert request.ByteSize() > 4 * 2**20
        # Envoy's own gRPC client takes responses of any size; grpc's Python client 4 MiB.
        options = [("grpc.max_receive_message_length", -1)]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}", options) as channel:
            call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).DeltaAggregatedResources()
            await call.write(request)
            response = await asyncio.wait_for(call.read(), 30)
            call.cancel()
        assert [r.name for r in response.resources] == [tenant_scope]
        # every scope it listed and the server does not hold is removed
        assert len(response.removed_resources) == HELD
    finally:
        await server.stop()
