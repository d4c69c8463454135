"""Gateway-group sharding (issue #17): an xds replica configured for gateway group "a"
(`RIPPLE_XDS_GATEWAYS={"group-a": ["a-*"]}`, mTLS) loads, follows and holds only the a-*
tenants, so its memory follows its group's size, not the whole cloud's.

Against the stack's Redis (tenants written by the translator's store under the test's own key
prefix):

- the real `python -m ripple_xds` process holds a-one and a-two, never b-one (its /debug/nodes
  `versions` and `ripple_xds_tenants_loaded`), and a Delta ADS client holding group-a's
  certificate is served their scopes only; b-one's next version and a new tenant b-two are
  never loaded (not fetched: the source's counters), while a-one's next version
  reaches the client;
- the source itself (`RedisSource` with the group's tenant filter) skips other groups'
  change entries by their tenant field alone, counted as foreign, with no Redis read for them.

Without the filter the replica loaded b-one at start and fetched every b-* version."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
import redis.asyncio as aioredis
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from ripple_common.resources import TypeUrl
from ripple_common.store_contract import KeyLayout
from ripple_translator.store import RedisTenantStore
from ripple_xds.identity import GatewayPolicy
from ripple_xds.snapshot import SnapshotCache
from ripple_xds.source import RedisSource
from ripple_xds.tenants import tenants_of
from tests.conftest import StackEnv
from tests.integration.loopback import http_get
from tests.integration.xds_service.support import (
    PROPAGATION_S,
    Ports,
    metric,
    running_xds,
    tenant_resources,
    until,
    write_tenant,
    xds_settings,
)
from tests.unit.xds import certs

GROUP_A = "group-a"
GATEWAYS = {GROUP_A: ["a-*"]}
A1, A2, B1, B2 = "a-one", "a-two", "b-one", "b-two"
SERVER_NAME = "xds.ripple.test"
TIMEOUT_S = 5.0
SRDS = TypeUrl.SCOPED_ROUTE.value


def host(tenant: str, n: int = 1) -> str:
    return f"h{n}.{tenant}.example.com"


async def write(store: RedisTenantStore, tenant: str, hosts: int, backend_port: int) -> int:
    names = [host(tenant, n) for n in range(1, hosts + 1)]
    return await write_tenant(
        store, tenant, tenant_resources(tenant, names, backend_port=backend_port)
    )


async def debug_nodes(port: int) -> dict[str, Any]:
    code, body = await asyncio.to_thread(http_get, port, "/debug/nodes")
    assert code == 200, body
    return dict(json.loads(body))


async def metrics(port: int) -> str:
    code, body = await asyncio.to_thread(http_get, port, "/metrics")
    assert code == 200, body
    return body


class Pki:
    """A CA, the server's certificate and group-a's client certificate (a DNS-name gateway
    certificate), as files for the xds process."""

    def __init__(self, directory: Path) -> None:
        self.ca = certs.authority()
        self.client = certs.issued(self.ca, GROUP_A)
        server = certs.issued(self.ca, SERVER_NAME, ips=("127.0.0.1",))
        self.files = {
            "tls_cert_file": directory / "server.crt",
            "tls_key_file": directory / "server.key",
            "tls_client_ca_file": directory / "ca.crt",
        }
        self.files["tls_cert_file"].write_bytes(server.certificate)
        self.files["tls_key_file"].write_bytes(server.private_key)
        self.files["tls_client_ca_file"].write_bytes(self.ca.pem.certificate)

    def channel(self, port: int) -> grpc.aio.Channel:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=self.ca.pem.certificate,
            private_key=self.client.private_key,
            certificate_chain=self.client.certificate,
        )
        return grpc.aio.secure_channel(
            f"127.0.0.1:{port}",
            credentials,
            options=[("grpc.ssl_target_name_override", SERVER_NAME)],
        )


def srds(*, nonce: str = "", node_id: str = "") -> Any:
    request = discovery_pb2.DeltaDiscoveryRequest(type_url=SRDS, response_nonce=nonce)
    if node_id:
        request.node.CopyFrom(base_pb2.Node(id=node_id))
    return request


async def read(call: Any) -> Any:
    response = await asyncio.wait_for(call.read(), TIMEOUT_S)
    assert response is not grpc.aio.EOF, "the server closed the stream"
    return response


async def test_a_group_replica_holds_and_serves_only_its_groups_tenants(
    *,
    stack: StackEnv,
    store: RedisTenantStore,
    prefix: str,
    backend_port: int,
    ports: Ports,
    tmp_path: Path,
) -> None:
    for tenant in (A1, A2, B1):
        await write(store, tenant, 1, backend_port)
    pki = Pki(tmp_path)
    settings = {
        **xds_settings(redis_url=stack["RIPPLE_REDIS_URL"], prefix=prefix, ports=ports),
        **{k: str(v) for k, v in pki.files.items()},
        "gateways": json.dumps(GATEWAYS),
    }
    async with running_xds(settings, log=tmp_path / "xds.log", health_port=ports.health) as xds:
        assert (await debug_nodes(ports.health))["versions"] == {A1: 1, A2: 1}
        assert metric(await metrics(ports.health), "ripple_xds_tenants_loaded") == 2

        async with pki.channel(ports.xds) as channel:
            stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
            call = stub.DeltaAggregatedResources()
            await call.write(srds(node_id="gw-a-1"))
            first = await read(call)
            scopes = [r.name for r in first.resources]
            assert tenants_of(scopes) == (A1, A2), scopes

            await write(store, B1, 2, backend_port)  # b-one v2: another group's change
            await write(store, B2, 1, backend_port)  # a new tenant of another group
            assert await write(store, A1, 2, backend_port) == 2
            await call.write(srds(nonce=first.nonce))  # ACK: the next push may come
            pushed = await read(call)
            call.cancel()
        assert tenants_of([r.name for r in pushed.resources]) == (A1,)
        assert any(host(A1, 2) in r.name for r in pushed.resources), pushed

        async def a1_at_v2() -> bool:
            xds.check_alive()
            versions: dict[str, int] = (await debug_nodes(ports.health))["versions"]
            return versions.get(A1) == 2

        await until("a-one v2 held", a1_at_v2, logs=[xds.log], within_s=PROPAGATION_S)
        held = await debug_nodes(ports.health)
        page = await metrics(ports.health)
    assert held["versions"] == {A1: 2, A2: 1}, "b-* versions were loaded"
    # a-one v2 only: b-one v2 and b-two v1 were never fetched (nor re-read)
    assert metric(page, "ripple_xds_source_fetched_total") == 1
    assert metric(page, "ripple_xds_source_reloaded_total") == 0
    assert metric(page, "ripple_xds_tenants_loaded") == 2
    # b-one v2 and b-two v1: counted where an operator sees them
    assert metric(page, "ripple_xds_source_foreign_total") == 2


@pytest.fixture
async def layout(prefix: str) -> KeyLayout:
    return KeyLayout(prefix=prefix)


async def test_the_source_skips_other_groups_entries_unread(
    *,
    redis_client: aioredis.Redis,
    store: RedisTenantStore,
    layout: KeyLayout,
    backend_port: int,
) -> None:
    await write(store, A1, 1, backend_port)
    await write(store, B1, 1, backend_port)
    source = RedisSource(
        redis_client,
        SnapshotCache(),
        layout=layout,
        block_ms=100,
        tenants=GatewayPolicy.of(GATEWAYS).tenant_filter(),
    )
    await source.load()
    assert source.tenant_versions() == {A1: 1}

    for hosts in (2, 3):  # b-one v2, v3
        await write(store, B1, hosts, backend_port)
    await write(store, B2, 1, backend_port)
    await write(store, A2, 1, backend_port)
    handled = 0
    while handled < 4:
        handled += await source.step(block_ms=100)
    assert source.tenant_versions() == {A1: 1, A2: 1}
    stats = source.stats
    assert (stats.entries, stats.foreign, stats.skipped) == (4, 3, 0)
    assert (stats.fetched, stats.reloaded) == (1, 0)  # a-two v1 only

    # The control: a replica of every tenant ("*") loads b-one too.
    every = RedisSource(
        redis_client,
        SnapshotCache(),
        layout=layout,
        tenants=GatewayPolicy.of({"edge": ["*"], **GATEWAYS}).tenant_filter(),
    )
    await every.load()
    assert every.tenant_versions() == {A1: 1, A2: 1, B1: 3, B2: 1}
