"""Node identity and mTLS between clients and the xds server, over real TLS on 127.0.0.1.

The server requires a client certificate signed by the test CA (mTLS) and knows one gateway,
`blue`, with tenant t1. With a grpc ADS client: a node of `blue` presenting a certificate
naming `blue` gets t1's resources and never t2's (nor t2's later changes); a node naming
an unknown gateway, a node whose certificate names another gateway, and a node without an
id get nothing (the stream is closed, PERMISSION_DENIED / INVALID_ARGUMENT); a client
without a certificate does not get a connection. With a real Envoy: mTLS to the server (its
bootstrap's transport_socket), routes of t1 serve HTTP 200, t2's cluster never reaches it;
an Envoy whose certificate names another gateway gets nothing."""

from __future__ import annotations

import asyncio
import http.client
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from ripple_common.resources import TypeUrl
from ripple_xds.identity import GatewayPolicy
from ripple_xds.server import XdsServer, server_credentials
from ripple_xds.snapshot import SnapshotCache
from tests.conftest import StackEnv
from tests.integration.loopback import free_port, status
from tests.integration.xds import envoy_resources as er
from tests.unit.xds import certs
from tests.waiting import eventually

SERVER_NAME = "xds.ripple.test"
TIMEOUT_S = 5.0
T1_CLUSTER, T2_CLUSTER = "t1/backend", "t2/backend"


@dataclass(frozen=True, slots=True)
class Pki:
    dir: Path
    ca: certs.Authority

    def write(self, name: str, pem: certs.Pem) -> tuple[Path, Path]:
        cert, key = self.dir / f"{name}.crt", self.dir / f"{name}.key"
        cert.write_bytes(pem.certificate)
        key.write_bytes(pem.private_key)
        return cert, key

    @property
    def ca_file(self) -> Path:
        path = self.dir / "ca.crt"
        path.write_bytes(self.ca.pem.certificate)
        return path

    def client(self, *names: str) -> certs.Pem:
        return certs.issued(self.ca, *names)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(dir=tmp_path, ca=certs.authority())


@pytest.fixture
async def mtls(pki: Pki, backend_port: int) -> AsyncIterator[tuple[SnapshotCache, XdsServer]]:
    cache = SnapshotCache()
    cache.apply(
        upserts=[
            er.eds_cluster(T1_CLUSTER),
            er.endpoints(T1_CLUSTER, port=backend_port),
            er.eds_cluster(T2_CLUSTER),
            er.endpoints(T2_CLUSTER, port=backend_port),
        ]
    )
    cert, key = pki.write("server", certs.issued(pki.ca, SERVER_NAME, ips=("127.0.0.1",)))
    server = XdsServer(
        cache,
        host="127.0.0.1",
        port=0,
        grace_seconds=0.2,
        policy=GatewayPolicy.of({"blue": ["t1"]}),
        credentials=server_credentials(cert=cert, key=key, client_ca=pki.ca_file),
    )
    await server.start()
    try:
        yield cache, server
    finally:
        await server.stop()


def _channel(pki: Pki, port: int, client: certs.Pem | None) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.ca.pem.certificate,
        private_key=client.private_key if client else None,
        certificate_chain=client.certificate if client else None,
    )
    return grpc.aio.secure_channel(
        f"127.0.0.1:{port}",
        credentials,
        options=[("grpc.ssl_target_name_override", SERVER_NAME)],
    )


def _cds(*, cluster: str | None, node_id: str = "gw-1", nonce: str = "") -> Any:
    request = discovery_pb2.DeltaDiscoveryRequest(
        type_url=TypeUrl.CLUSTER.value, response_nonce=nonce
    )
    if cluster is not None:
        request.node.CopyFrom(base_pb2.Node(id=node_id, cluster=cluster))
    return request


async def _open(channel: grpc.aio.Channel, first: Any) -> Any:
    call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).DeltaAggregatedResources()
    await call.write(first)
    return call


async def _first_response(channel: grpc.aio.Channel, first: Any) -> Any:
    call = await _open(channel, first)
    return await asyncio.wait_for(call.read(), TIMEOUT_S)


async def test_a_node_of_a_gateway_gets_its_tenants_only(
    mtls: tuple[SnapshotCache, XdsServer], pki: Pki
) -> None:
    cache, server = mtls
    async with _channel(pki, server.port, pki.client("blue")) as channel:
        call = await _open(channel, _cds(cluster="blue"))
        response = await asyncio.wait_for(call.read(), TIMEOUT_S)
        assert [r.name for r in response.resources] == [T1_CLUSTER]
        await call.write(_cds(cluster=None, nonce=response.nonce))
        # A change of t2 is not this node's business; a change of t1 is.
        cache.apply(upserts=[er.eds_cluster(T2_CLUSTER, connect_timeout_ms=3000)])
        cache.apply(upserts=[er.eds_cluster(T1_CLUSTER, connect_timeout_ms=3000)])
        response = await asyncio.wait_for(call.read(), TIMEOUT_S)
        assert [r.name for r in response.resources] == [T1_CLUSTER]
        call.cancel()
    assert server.stats.nodes_rejected == 0


@pytest.mark.parametrize(
    ("client_names", "node_cluster", "code"),
    [
        (("red",), "red", grpc.StatusCode.PERMISSION_DENIED),  # unknown gateway
        (("green",), "blue", grpc.StatusCode.PERMISSION_DENIED),  # certificate of another
        (("blue",), None, grpc.StatusCode.INVALID_ARGUMENT),  # no node at all
    ],
    ids=["unknown-gateway", "foreign-certificate", "no-node"],
)
async def test_a_node_without_a_valid_identity_gets_nothing(
    mtls: tuple[SnapshotCache, XdsServer],
    pki: Pki,
    client_names: tuple[str, ...],
    node_cluster: str | None,
    code: grpc.StatusCode,
) -> None:
    _, server = mtls
    async with _channel(pki, server.port, pki.client(*client_names)) as channel:
        call = await _open(channel, _cds(cluster=node_cluster))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await asyncio.wait_for(call.read(), TIMEOUT_S)
    assert caught.value.code() == code
    assert server.stats.nodes_rejected == 1
    assert sum(server.stats.resources_sent.values()) == 0


async def test_a_client_without_a_certificate_is_not_served(
    mtls: tuple[SnapshotCache, XdsServer], pki: Pki
) -> None:
    _, server = mtls
    async with _channel(pki, server.port, None) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _first_response(channel, _cds(cluster="blue"))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert server.stats.streams_total == 0


# -- a real Envoy over mTLS -----------------------------------------------------------------


def _envoy(
    stack: StackEnv, *, pki: Pki, xds_port: int, client: str, workdir: Path
) -> tuple[subprocess.Popen[bytes], int, Path]:
    cert, key = pki.write(f"envoy-{client}", pki.client(client))
    admin_port = free_port()
    config = workdir / f"envoy-{client}.yaml"
    config.write_text(
        er.bootstrap(
            node_id=f"envoy-{client}",
            node_cluster="blue",
            admin_port=admin_port,
            xds_port=xds_port,
            api_type="DELTA_GRPC",
            xds_tls=er.XdsTls(cert=cert, key=key, ca=pki.ca_file, server_name=SERVER_NAME),
        )
    )
    log = workdir / f"envoy-{client}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                *(stack["RIPPLE_ENVOY_BIN"], "-c", str(config), "--disable-hot-restart"),
                *("--concurrency", "1", "--base-id", str(free_port())),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, admin_port, log


def _clusters(admin_port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=2)
    try:
        conn.request("GET", "/clusters")
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


async def test_envoy_over_mtls_gets_its_gateways_tenants_and_a_foreign_one_nothing(
    stack: StackEnv,
    mtls: tuple[SnapshotCache, XdsServer],
    pki: Pki,
    tmp_path: Path,
) -> None:
    cache, server = mtls
    listen_port = free_port()
    cache.apply(
        upserts=[
            er.listener("ingress", port=listen_port),
            er.scope("h1", route_config="t1/routes"),
            er.route_config("t1/routes", host="h1", cluster=T1_CLUSTER),
        ]
    )
    good, good_admin, good_log = await asyncio.to_thread(
        _envoy, stack, pki=pki, xds_port=server.port, client="blue", workdir=tmp_path
    )
    foreign, foreign_admin, foreign_log = await asyncio.to_thread(
        _envoy, stack, pki=pki, xds_port=server.port, client="green", workdir=tmp_path
    )
    try:
        started = time.monotonic()

        async def served() -> bool:
            assert good.poll() is None, good_log.read_text()[-3000:]
            return await status(listen_port, host="h1") == 200

        await eventually(
            served,
            within_s=20,
            every_s=0.1,
            what="h1 served over mTLS",
            detail=lambda: good_log.read_text()[-3000:],
        )
        clusters = await asyncio.to_thread(_clusters, good_admin)
        assert f"{T1_CLUSTER}::" in clusters
        assert f"{T2_CLUSTER}::" not in clusters

        def refused() -> bool:
            assert foreign.poll() is None, foreign_log.read_text()[-3000:]
            return server.stats.nodes_rejected >= 1

        await eventually(
            refused,
            within_s=20 - (time.monotonic() - started),
            every_s=0.1,
            what="the foreign Envoy refused",
        )
        foreign_clusters = await asyncio.to_thread(_clusters, foreign_admin)
        assert "t1/" not in foreign_clusters
        assert "t2/" not in foreign_clusters
    finally:
        await asyncio.to_thread(_stop, good)
        await asyncio.to_thread(_stop, foreign)
