"""Issue #14, point 2: the ADS port gives no private key and no other gateway's tenants to a
client that only says who it is.

A real xds service (`start_xds`, in-process, its own Redis key prefix) serves two tenants,
each with a TLS Secret whose private key is sealed in Redis (the service opens it for SDS).
Real grpc clients speak Delta ADS and SotW to it:

(a) plaintext (or server-only TLS), no RIPPLE_XDS_INSECURE_DEV_SECRETS: a node with a made-up
    id asking for the tenants' secrets (SotW, Delta, after a CDS request or as its first) is
    closed with PERMISSION_DENIED and no private key ever crosses the wire;
(b) mTLS with gateways gw-a (tenant a) and gw-b (tenant b): a client holding gw-a's
    certificate whose node claims gw-b (node.cluster or metadata `ripple.gateway`, the node id
    being the certificate's own name) gets PERMISSION_DENIED and nothing of tenant b;
(c) the legitimate gateways still get their own secrets, private key included, with the
    gateway taken from the certificate alone (a DNS-name certificate and no node claim; a
    SPIFFE certificate `spiffe://ripple.test/gateway/gw-b`), and never the other tenant's.

On the code before the fix, (a) returned both private keys, (b) served gw-b's tenant to gw-a's
certificate (the node id matched the certificate) and (c) refused both legitimate gateways
(the gateway came from node.cluster, and a URI SAN was not a name)."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
import redis.asyncio as aioredis
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import struct_pb2
from pydantic import SecretStr

from ripple_common.lifecycle import Lifecycle
from ripple_common.resources import TypeUrl
from ripple_common.sealing import Sealer
from ripple_translator.seal import seal_secret
from ripple_translator.store import KeyLayout, RedisTenantStore
from ripple_xds.app import start_xds
from ripple_xds.gateway import HTTP_LISTENER
from ripple_xds.https import HTTPS_LISTENER
from ripple_xds.identity import GATEWAY_METADATA
from ripple_xds.service import XdsService
from ripple_xds.settings import XdsSettings
from tests.conftest import StackEnv
from tests.integration.loopback import free_port
from tests.integration.xds_service.support import tenant_resources, write_tenant
from tests.unit.xds import certs

TIMEOUT_S = 5.0
KEY = os.urandom(32)
A, B = "hostile-a", "hostile-b"
GW_A, GW_B = "gw-a", "gw-b"
SPIFFE_B = f"spiffe://ripple.test/gateway/{GW_B}"
SERVER_NAME = "xds.ripple.test"
SDS, CDS = TypeUrl.SECRET.value, TypeUrl.CLUSTER.value


@dataclass(frozen=True, slots=True)
class Tenant:
    name: str
    secret: str  # the Secret resource's name
    private_key: bytes  # its plaintext PEM key: must reach only its own gateway


@dataclass(frozen=True, slots=True)
class World:
    a: Tenant
    b: Tenant
    ca: certs.Authority
    files: dict[str, Path]  # server.crt, server.key, ca.crt
    store_prefix: str
    redis_url: str


@pytest.fixture
async def world(
    stack: StackEnv, redis_client: aioredis.Redis, prefix: str, tmp_path: Path
) -> World:
    store = RedisTenantStore(redis_client, layout=KeyLayout(prefix=prefix))
    tenants = []
    for name in (A, B):
        pem = certs.self_signed(f"{name}.example.com")
        secret = f"{name}/{name}/tls"
        resources = tenant_resources(name, [f"{name}.example.com"], backend_port=9)
        resources.append(seal_secret(certs.secret(secret, pem), Sealer(KEY)))
        await write_tenant(store, name, resources)
        tenants.append(Tenant(name=name, secret=secret, private_key=pem.private_key))
    ca = certs.authority()
    server = certs.issued(ca, SERVER_NAME, ips=("127.0.0.1",))
    files = {"server.crt": server.certificate, "server.key": server.private_key}
    files["ca.crt"] = ca.pem.certificate
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return World(
        a=tenants[0],
        b=tenants[1],
        ca=ca,
        files={name: tmp_path / name for name in files},
        store_prefix=prefix,
        redis_url=stack["RIPPLE_REDIS_URL"],
    )


@asynccontextmanager
async def xds(world: World, **settings: Any) -> AsyncIterator[XdsService]:
    lc = Lifecycle()
    try:
        yield await start_xds(
            lc,
            XdsSettings(
                redis_url=world.redis_url,
                redis_prefix=world.store_prefix,
                listen="127.0.0.1:0",
                gateway_http_address="127.0.0.1",
                gateway_http_port=free_port(),
                gateway_https_port=free_port(),
                sealing_key=SecretStr(base64.b64encode(KEY).decode()),
                shutdown_grace_s=0.2,
                block_ms=200,
                **settings,
            ),
        )
    finally:
        await lc.aclose()


def mtls_settings(world: World) -> dict[str, Any]:
    return {
        "tls_cert_file": world.files["server.crt"],
        "tls_key_file": world.files["server.key"],
        "tls_client_ca_file": world.files["ca.crt"],
        "gateways": {GW_A: [A], GW_B: [B]},
    }


def node(node_id: str, *, cluster: str = "", gateway: str | None = None) -> base_pb2.Node:
    found = base_pb2.Node(id=node_id, cluster=cluster)
    if gateway is not None:
        found.metadata.CopyFrom(
            struct_pb2.Struct(fields={GATEWAY_METADATA: struct_pb2.Value(string_value=gateway)})
        )
    return found


def plaintext(service: XdsService) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(f"127.0.0.1:{service.server.port}")


def mtls(service: XdsService, world: World, client: certs.Pem) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=world.ca.pem.certificate,
        private_key=client.private_key,
        certificate_chain=client.certificate,
    )
    return grpc.aio.secure_channel(
        f"127.0.0.1:{service.server.port}",
        credentials,
        options=[("grpc.ssl_target_name_override", SERVER_NAME)],
    )


@dataclass(slots=True)
class Exchange:
    """What one stream received: every response's bytes and resource names, and how it
    ended (None: still open when we stopped reading)."""

    received: list[bytes]
    names: list[str]
    code: grpc.StatusCode | None = None

    def holds(self, secret: bytes) -> bool:
        return any(secret in data for data in self.received)


async def exchange(
    channel: grpc.aio.Channel,
    requests: Sequence[Any],
    *,
    delta: bool,
) -> Exchange:
    """Write each request after reading the previous one's response; stop at the first
    error (its status code is kept) or after the last request's response."""
    stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
    call = stub.DeltaAggregatedResources() if delta else stub.StreamAggregatedResources()
    seen = Exchange(received=[], names=[])
    try:
        for request in requests:
            await call.write(request)
            try:
                response = await asyncio.wait_for(call.read(), TIMEOUT_S)
            except TimeoutError:
                break  # no answer (and no refusal)
            if response is grpc.aio.EOF:
                break
            seen.received.append(response.SerializeToString())
            if delta:
                seen.names += [r.name for r in response.resources]
            else:
                seen.names += [_sotw_name(r) for r in response.resources]
    except grpc.aio.AioRpcError as exc:
        seen.code = exc.code()
    finally:
        call.cancel()
    return seen


def _sotw_name(resource: Any) -> str:
    if resource.type_url == SDS:
        return str(secret_pb2.Secret.FromString(resource.value).name)
    return "?"


def delta_sds(names: Sequence[str], who: base_pb2.Node | None = None) -> Any:
    request = discovery_pb2.DeltaDiscoveryRequest(
        type_url=SDS, resource_names_subscribe=list(names)
    )
    if who is not None:
        request.node.CopyFrom(who)
    return request


def delta_cds(who: base_pb2.Node) -> Any:
    return discovery_pb2.DeltaDiscoveryRequest(type_url=CDS, node=who)


def sotw_sds(names: Sequence[str], who: base_pb2.Node) -> Any:
    return discovery_pb2.DiscoveryRequest(type_url=SDS, resource_names=list(names), node=who)


# -- (a) no TLS, no development flag ------------------------------------------------------


@pytest.mark.parametrize("how", ["delta-first", "delta-after-cds", "delta-wildcard", "sotw"])
async def test_a_made_up_node_without_tls_gets_no_secret(world: World, how: str) -> None:
    both = [world.a.secret, world.b.secret]
    stranger = node("made-up-node", cluster="anything")
    async with xds(world) as service, plaintext(service) as channel:
        if how == "delta-first":
            seen = await exchange(channel, [delta_sds(both, stranger)], delta=True)
        elif how == "delta-after-cds":
            seen = await exchange(channel, [delta_cds(stranger), delta_sds(both)], delta=True)
        elif how == "delta-wildcard":
            seen = await exchange(channel, [delta_sds(["*"], stranger)], delta=True)
        else:
            seen = await exchange(channel, [sotw_sds(both, stranger)], delta=False)
        stats = service.stats
        _, metrics = service.health_routes()["/metrics"]()
        listeners = list(service.cache.names(TypeUrl.LISTENER))
    assert seen.code == grpc.StatusCode.PERMISSION_DENIED, seen.names
    assert not seen.holds(world.a.private_key)
    assert not seen.holds(world.b.private_key)
    assert not [n for n in seen.names if n in both]
    assert stats.secrets_refused == 1
    assert "ripple_xds_secrets_refused_total 1" in metrics.splitlines()
    # No HTTPS listener: its certificates could never be served.
    assert HTTP_LISTENER in listeners
    assert not [n for n in listeners if n.startswith(HTTPS_LISTENER)]


async def test_server_tls_without_client_certificates_gives_no_secret_either(
    world: World,
) -> None:
    """TLS without RIPPLE_XDS_TLS_CLIENT_CA_FILE encrypts, but proves nothing of the client."""
    server_tls = {
        "tls_cert_file": world.files["server.crt"],
        "tls_key_file": world.files["server.key"],
    }
    credentials = grpc.ssl_channel_credentials(root_certificates=world.ca.pem.certificate)
    stranger = node("made-up-node", cluster="anything")
    async with xds(world, **server_tls) as service:
        address = f"127.0.0.1:{service.server.port}"
        options = [("grpc.ssl_target_name_override", SERVER_NAME)]
        async with grpc.aio.secure_channel(address, credentials, options=options) as channel:
            seen = await exchange(
                channel, [delta_cds(stranger), delta_sds([world.a.secret])], delta=True
            )
    assert seen.code == grpc.StatusCode.PERMISSION_DENIED, seen.names
    assert seen.names  # the clusters, before the Secret request closed the stream
    assert not seen.holds(world.a.private_key)


async def test_the_development_flag_serves_secrets_without_tls(world: World) -> None:
    """The control: RIPPLE_XDS_INSECURE_DEV_SECRETS=true is what the local stack runs with."""
    async with xds(world, insecure_dev_secrets=True) as service, plaintext(service) as channel:
        seen = await exchange(channel, [delta_sds([world.a.secret], node("dev"))], delta=True)
        listeners = list(service.cache.names(TypeUrl.LISTENER))
    assert seen.code is None
    assert seen.holds(world.a.private_key)
    assert HTTPS_LISTENER in listeners


# -- (b) mTLS: a certificate of gw-a claiming gw-b ----------------------------------------


@pytest.mark.parametrize("claim", ["cluster", "metadata"])
@pytest.mark.parametrize("ask", ["delta-cds", "delta-sds", "sotw-sds"])
async def test_a_node_claiming_another_gateway_than_its_certificate_is_refused(
    world: World, claim: str, ask: str
) -> None:
    # The node id is the certificate's own name: the old rule accepted "names the node id".
    spoof = node(GW_A, cluster=GW_B) if claim == "cluster" else node(GW_A, gateway=GW_B)
    requests = {
        "delta-cds": ([delta_cds(spoof)], True),
        "delta-sds": ([delta_sds([world.b.secret, world.a.secret], spoof)], True),
        "sotw-sds": ([sotw_sds([world.b.secret, world.a.secret], spoof)], False),
    }
    sequence, delta = requests[ask]
    async with xds(world, **mtls_settings(world)) as service:
        async with mtls(service, world, certs.issued(world.ca, GW_A)) as channel:
            seen = await exchange(channel, sequence, delta=delta)
        rejected = service.stats.nodes_rejected
    assert seen.code == grpc.StatusCode.PERMISSION_DENIED, seen.names
    assert not [n for n in seen.names if n.startswith(f"{B}/")]
    assert not seen.holds(world.b.private_key)
    assert rejected == 1


# -- (c) the legitimate gateways ----------------------------------------------------------


@pytest.mark.parametrize("delta", [True, False], ids=["delta", "sotw"])
async def test_each_gateway_gets_its_own_secrets_from_its_certificate(
    world: World, delta: bool
) -> None:
    both = [world.a.secret, world.b.secret]
    request = delta_sds if delta else sotw_sds
    async with xds(world, **mtls_settings(world)) as service:
        # gw-a: a DNS-name certificate, a node id of its own and no claim at all.
        async with mtls(service, world, certs.issued(world.ca, GW_A)) as channel:
            seen_a = await exchange(channel, [request(both, node("edge-node-7"))], delta=delta)
        # gw-b: a SPIFFE certificate (as cert-manager issues them), the node agreeing.
        spiffe = certs.issued(world.ca, uris=(SPIFFE_B,))
        async with mtls(service, world, spiffe) as channel:
            who = node("edge-node-8", cluster=GW_B)
            seen_b = await exchange(channel, [request(both, who)], delta=delta)
        rejected = service.stats.nodes_rejected
    assert seen_a.code is None, seen_a
    assert seen_b.code is None, seen_b
    assert seen_a.names == [world.a.secret]
    assert seen_a.holds(world.a.private_key)
    assert not seen_a.holds(world.b.private_key)
    assert seen_b.names == [world.b.secret]
    assert seen_b.holds(world.b.private_key)
    assert not seen_b.holds(world.a.private_key)
    assert rejected == 0
