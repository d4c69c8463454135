"""Two xds replicas behind one Envoy (both in the bootstrap's ADS cluster, Delta ADS). The
replica serving Envoy's stream is SIGKILLed: Envoy reconnects to the other, keeps serving
traffic meanwhile, and is sent no resource on the new stream (its
initial_resource_versions match what the other replica holds: same content, same versions);
a change written afterwards reaches Envoy through the survivor, with only that change sent."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ripple_translator.store import RedisTenantStore
from tests.conftest import StackEnv
from tests.integration.loopback import free_port, http_get, status
from tests.integration.xds_service.support import (
    HOST_A,
    HOST_B1,
    PROPAGATION_S,
    A,
    B,
    Ports,
    XdsProcess,
    metric,
    running_envoy,
    tenant_resources,
    until,
    write_tenant,
    xds_settings,
)

REPLICAS = 2
TYPES = ("cds", "eds", "lds", "srds", "rds")


class Replica:
    def __init__(self, process: XdsProcess, ports: Ports) -> None:
        self.process = process
        self.ports = ports

    async def metrics(self) -> str:
        _, text = await asyncio.to_thread(http_get, self.ports.health, "/metrics")
        return text

    async def streams_open(self) -> float:
        return metric(await self.metrics(), "ripple_xds_streams_open")

    async def requests(self) -> dict[str, float]:
        """Delta requests handled, by type."""
        text = await self.metrics()
        return {
            t: metric(text, f'ripple_xds_requests_total{{mode="delta",type="{t}"}}')
            for t in TYPES
            if f'ripple_xds_requests_total{{mode="delta",type="{t}"}}' in text
        }

    async def resources_sent(self) -> float:
        text = await self.metrics()
        return sum(
            float(line.rpartition(" ")[2])
            for line in text.splitlines()
            if line.startswith("ripple_xds_resources_sent_total{")
        )


@pytest.fixture
async def replicas(
    *,
    stack: StackEnv,
    store: RedisTenantStore,
    prefix: str,
    backend_port: int,
    tmp_path: Path,
) -> AsyncIterator[list[Replica]]:
    """Tenants a and b in Redis, then two xds processes (same settings but their own ADS
    and health ports; the gateway's listener port is shared), until both are ready."""
    await write_tenant(store, A, tenant_resources(A, [HOST_A], backend_port=backend_port))
    await write_tenant(store, B, tenant_resources(B, [HOST_B1], backend_port=backend_port))
    http_port = free_port()
    # The operator's sealing key, shared by the replicas as in a deployment: with it they
    # serve one generated default certificate (stored sealed in Redis by the first).
    sealing_key = base64.b64encode(os.urandom(32)).decode()
    started: list[Replica] = []
    try:
        for i in range(REPLICAS):
            ports = Ports(xds=free_port(), http=http_port, health=free_port(), admin=0)
            process = XdsProcess(
                {
                    **xds_settings(redis_url=stack["RIPPLE_REDIS_URL"], prefix=prefix, ports=ports),
                    "sealing_key": sealing_key,
                },
                log=tmp_path / f"xds-{i}.log",
            )
            started.append(Replica(process, ports))
        for replica in started:
            await replica.process.wait_ready(replica.ports.health)
        yield started
    finally:
        for replica in started:
            await replica.process.stop()


@pytest.fixture
def gateway(
    stack: StackEnv, replicas: list[Replica], tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A real Envoy whose ADS cluster holds both replicas; yields it and its listener port."""
    first, *others = replicas
    with running_envoy(
        stack["RIPPLE_ENVOY_BIN"],
        xds_port=first.ports.xds,
        more_xds_ports=tuple(r.ports.xds for r in others),
        admin_port=free_port(),
        node_id="it-xds-replicas",
        workdir=tmp_path,
    ) as proc:
        yield proc, first.ports.http


async def test_envoy_moves_to_the_surviving_replica_without_a_resend(
    *,
    replicas: list[Replica],
    gateway: tuple[subprocess.Popen[bytes], int],
    store: RedisTenantStore,
    backend_port: int,
    tmp_path: Path,
) -> None:
    envoy, http_port = gateway
    logs = [r.process.log for r in replicas] + [tmp_path / "envoy.log"]

    async def code(host: str) -> int | None:
        assert envoy.poll() is None, "envoy exited"
        return await status(http_port, host=host)

    async def serving() -> bool:
        return await code(HOST_A) == 200 and await code(HOST_B1) == 200

    await until("both tenants served", serving, logs=logs)
    open_streams = [await r.streams_open() for r in replicas]
    assert sorted(open_streams) == [0, 1], open_streams
    serving_replica = replicas[open_streams.index(1)]
    survivor = replicas[open_streams.index(0)]
    assert await survivor.resources_sent() == 0

    # SIGKILL: no GOAWAY, no graceful close; the kernel resets the stream.
    serving_replica.process.proc.kill()
    serving_replica.process.proc.wait(5)
    statuses = []

    async def reconnected() -> bool:
        statuses.append(await code(HOST_A))
        survivor.process.check_alive()
        asked = await survivor.requests()
        return await survivor.streams_open() == 1 and all(asked.get(t, 0) > 0 for t in TYPES)

    took = await until("envoy reconnects to the survivor", reconnected, logs=logs)
    print(f"reconnected to the surviving replica in {took * 1000:.0f} ms")
    assert set(statuses) == {200}, "traffic kept flowing while the stream moved"
    assert await survivor.resources_sent() == 0, "versions match: nothing is sent again"

    # A change after the move flows through the survivor, and only that change is sent.
    await write_tenant(
        store, A, tenant_resources(A, [HOST_A, "a2.example.com"], backend_port=backend_port)
    )

    async def a2_ok() -> bool:
        return await code("a2.example.com") == 200

    await until("a2.example.com -> 200", a2_ok, logs=logs, within_s=PROPAGATION_S)
    assert await code(HOST_B1) == 200
    text = await survivor.metrics()
    assert metric(text, 'ripple_xds_resources_sent_total{mode="delta",type="srds"}') == 1
    assert metric(text, 'ripple_xds_resources_sent_total{mode="delta",type="rds"}') == 1
    assert await survivor.resources_sent() == 2
