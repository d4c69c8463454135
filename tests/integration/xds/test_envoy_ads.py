"""The xds server against a real Envoy (RIPPLE_ENVOY_BIN from the local stack), over SotW
(api_type GRPC) and Delta (DELTA_GRPC) ADS: scoped RDS routes hosts to a backend on
loopback, a new host turns from 404 to 200, and a rejected update is recorded as a NACK
with Envoy's error text while the last good config keeps serving."""

from __future__ import annotations

import asyncio
import http.client
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ripple_common.resources import TypeUrl
from ripple_xds.server import XdsServer
from ripple_xds.snapshot import SnapshotCache
from tests.conftest import StackEnv
from tests.integration.loopback import free_port, http_get, status
from tests.integration.xds import envoy_resources as er
from tests.waiting import eventually

DEADLINE_S = 20.0


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"


def _start_envoy(envoy_bin: str, *, config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("w") as out:
        return subprocess.Popen(
            [
                envoy_bin,
                "-c",
                str(config),
                "--disable-hot-restart",
                "--concurrency",
                "1",
                "--log-level",
                "info",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


class Gateway:
    """An Envoy fed by an xds server over one snapshot cache; the server can be replaced."""

    def __init__(
        self,
        *,
        mode: str,
        cache: SnapshotCache,
        server: XdsServer,
        listen_port: int,
        admin_port: int,
        log: Path,
    ) -> None:
        self.mode = mode  # "sotw" or "delta", as the server counts it
        self.proc: subprocess.Popen[bytes] | None = None
        self.admin_port = admin_port
        self.cache = cache
        self.server = server
        self.listen_port = listen_port
        self.log = log

    async def status(self, host: str) -> int | None:
        return await status(self.listen_port, host=host)

    def tail(self) -> str:
        """The end of Envoy's log (what a failed wait shows)."""
        return _tail(self.log)

    async def stat(self, name: str) -> int | None:
        """A counter or gauge from Envoy's admin /stats."""

        def fetch() -> str:
            conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=2)
            try:
                conn.request("GET", f"/stats?filter=^{name}$")
                return conn.getresponse().read().decode()
            finally:
                conn.close()

        for line in (await asyncio.to_thread(fetch)).splitlines():
            key, _, value = line.partition(": ")
            if key == name:
                return int(value)
        return None

    async def until_status(self, host: str, status: int) -> None:
        async def check() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(f"envoy exited with {self.proc.returncode}:\n{_tail(self.log)}")
            return await self.status(host) == status

        await eventually(check, within_s=DEADLINE_S, what=f"{host} -> {status}", detail=self.tail)

    async def replace_server(self) -> XdsServer:
        """Stop the server and start a fresh one (no stream state) on the same port."""
        old = self.server
        await old.stop()
        self.server = XdsServer(self.cache, host="127.0.0.1", port=old.port, grace_seconds=0.5)
        await self.server.start()
        return self.server


@pytest.fixture(params=["GRPC", "DELTA_GRPC"], ids=["sotw", "delta"])
async def gateway(
    request: pytest.FixtureRequest, stack: StackEnv, backend_port: int, tmp_path: Path
) -> AsyncIterator[Gateway]:
    """xds server + Envoy over ADS (SotW or Delta) with host h1 routed to the backend."""
    api_type: str = request.param
    envoy_bin = stack["RIPPLE_ENVOY_BIN"]
    cache = SnapshotCache()
    listen_port = free_port()
    cache.apply(
        upserts=[
            er.eds_cluster(er.BACKEND_CLUSTER),
            er.endpoints(er.BACKEND_CLUSTER, port=backend_port),
            er.listener("ingress", port=listen_port),
            er.scope("h1", route_config="rc-h1"),
            er.route_config("rc-h1", host="h1", cluster=er.BACKEND_CLUSTER),
        ]
    )
    server = XdsServer(cache, host="127.0.0.1", port=0, grace_seconds=0.5)
    await server.start()
    admin_port = free_port()
    config = tmp_path / "envoy.yaml"
    config.write_text(
        er.bootstrap(
            node_id=f"test-{api_type.lower()}",
            admin_port=admin_port,
            xds_port=server.port,
            api_type=api_type,
        )
    )
    log = tmp_path / "envoy.log"
    gw = Gateway(
        mode="delta" if api_type == "DELTA_GRPC" else "sotw",
        cache=cache,
        server=server,
        listen_port=listen_port,
        admin_port=admin_port,
        log=log,
    )
    proc: subprocess.Popen[bytes] | None = None
    try:
        proc = await asyncio.to_thread(_start_envoy, envoy_bin, config=config, log=log)
        gw.proc = proc
        await gw.until_status("h1", 200)
        yield gw
    finally:
        if proc is not None:
            proc.terminate()
            try:
                await asyncio.to_thread(proc.wait, 20)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait, 5)
        await gw.server.stop()


async def test_host_is_routed_to_the_backend(gateway: Gateway) -> None:
    answer = await asyncio.to_thread(http_get, gateway.listen_port, "/", host="h1:8080")
    assert answer == (200, "backend host=h1:8080")


async def test_added_host_turns_from_404_to_200(gateway: Gateway) -> None:
    assert await gateway.status("h2") == 404
    gateway.cache.apply(
        upserts=[
            er.scope("h2", route_config="rc-h2"),
            er.route_config("rc-h2", host="h2", cluster=er.BACKEND_CLUSTER),
        ]
    )
    await gateway.until_status("h2", 200)
    assert await gateway.status("h1") == 200


async def test_rejected_update_is_a_nack_and_last_good_config_serves(gateway: Gateway) -> None:
    gateway.cache.apply(
        upserts=[er.route_config("rc-h1", host="h1", cluster=er.BACKEND_CLUSTER, bad_regex=True)]
    )
    nacks = gateway.server.stats.nack_log
    await eventually(
        lambda: len(nacks) > 0,
        within_s=DEADLINE_S,
        what="a NACK",
        detail=gateway.tail,
    )
    nack = nacks[0]
    assert nack.type_url is TypeUrl.ROUTE
    assert nack.names == ("rc-h1",)
    assert nack.error == "missing ): (unclosed"
    assert await gateway.status("h1") == 200


async def test_removed_host_turns_from_200_to_404(gateway: Gateway) -> None:
    gateway.cache.apply(removals=[(TypeUrl.SCOPED_ROUTE, "scope-h1"), (TypeUrl.ROUTE, "rc-h1")])
    await gateway.until_status("h1", 404)


# Envoy gives up waiting for a warming resource after 15 s (initial_fetch_timeout) and then
# warms anyway: a warming test must expect far less to catch a server that never answers.
WARMING_S = 5.0


async def test_updated_cluster_finishes_warming_and_serves(gateway: Gateway) -> None:
    gateway.cache.apply(upserts=[er.eds_cluster(er.BACKEND_CLUSTER, connect_timeout_ms=2000)])

    async def warmed() -> bool:
        modified = await gateway.stat("cluster_manager.cluster_modified")
        warming = await gateway.stat("cluster_manager.warming_clusters")
        return modified == 1 and warming == 0

    await eventually(
        warmed, within_s=WARMING_S, what="the updated cluster warms", detail=gateway.tail
    )
    assert await gateway.status("h1") == 200


async def test_updated_listener_finishes_warming_and_serves(gateway: Gateway) -> None:
    gateway.cache.apply(
        upserts=[er.listener("ingress", port=gateway.listen_port, stat_prefix="ingress2")]
    )

    async def warmed() -> bool:
        modified = await gateway.stat("listener_manager.listener_modified")
        warming = await gateway.stat("listener_manager.total_listeners_warming")
        return modified == 1 and warming == 0

    await eventually(
        warmed, within_s=WARMING_S, what="the updated listener warms", detail=gateway.tail
    )
    assert await gateway.status("h1") == 200


RESUMED_TYPES = ("cds", "eds", "lds", "srds", "rds")


async def _reconnected(gateway: Gateway, server: XdsServer) -> None:
    """Envoy asked the new server for every type it follows (and got its answers)."""

    def asked_all() -> bool:
        return all(server.stats.requests[gateway.mode, t] > 0 for t in RESUMED_TYPES)

    await eventually(
        asked_all,
        within_s=DEADLINE_S,
        what="envoy asks the new server for every type",
        detail=gateway.tail,
    )


async def test_reconnect_to_a_fresh_server_resends_no_resource(gateway: Gateway) -> None:
    server = await gateway.replace_server()
    await _reconnected(gateway, server)
    assert sum(server.stats.resources_sent.values()) == 0
    assert server.stats.streams_total == 1
    assert await gateway.status("h1") == 200


async def test_change_after_reconnect_is_served(gateway: Gateway) -> None:
    server = await gateway.replace_server()
    await _reconnected(gateway, server)
    gateway.cache.apply(
        upserts=[
            er.scope("h2", route_config="rc-h2"),
            er.route_config("rc-h2", host="h2", cluster=er.BACKEND_CLUSTER),
        ]
    )
    await gateway.until_status("h2", 200)
