"""`python -m ripple_xds` as a process, with the stack's Redis and a real Envoy (Delta ADS):
it loads two tenants written by the translator's store, reports ready, Envoy routes each
tenant's host to the backend through the gateway's HTTP listener, a new version of one tenant
adding a host turns that host from 404 to 200 within a few seconds while the other tenant
keeps serving, and SIGTERM ends the process with exit code 0 (ADS server stopped first)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from ripple_translator.store import RedisTenantStore
from tests.integration.loopback import http_get, status
from tests.integration.xds_service.support import (
    HOST_A,
    HOST_B1,
    HOST_B2,
    PROPAGATION_S,
    A,
    B,
    Ports,
    XdsProcess,
    metric,
    tail,
    tenant_resources,
    until,
    write_tenant,
)

STOP_ORDER = ("ads server", "redis source", "health endpoint", "redis")


async def test_process_serves_tenants_follows_changes_and_exits_cleanly(
    *,
    xds: XdsProcess,
    envoy: subprocess.Popen[bytes],
    store: RedisTenantStore,
    backend_port: int,
    ports: Ports,
    tmp_path: Path,
) -> None:
    logs = (xds.log, tmp_path / "envoy.log")
    assert await status(ports.health, "/healthz") == 200

    def serves(host: str, code: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            xds.check_alive()
            if envoy.poll() is not None:
                pytest.fail(f"envoy exited with {envoy.returncode}:\n{tail(logs[1])}")
            return await status(ports.http, host=host) == code

        return check

    await until(f"{HOST_A} -> 200", serves(HOST_A, 200), logs=logs)
    assert await asyncio.to_thread(http_get, ports.http, "/", host=HOST_A) == (
        200,
        f"backend host={HOST_A}",
    )
    assert await status(ports.http, host=HOST_B1) == 200
    assert await status(ports.http, host=HOST_B2) == 404

    await write_tenant(store, B, tenant_resources(B, [HOST_B1, HOST_B2], backend_port=backend_port))
    took = await until(
        f"{HOST_B2} 404 -> 200", serves(HOST_B2, 200), logs=logs, within_s=PROPAGATION_S
    )
    print(f"new host served {took * 1000:.0f} ms after the write")
    assert await status(ports.http, host=HOST_A) == 200
    assert await status(ports.http, host=HOST_B1) == 200

    code, metrics = await asyncio.to_thread(http_get, ports.health, "/metrics")
    assert code == 200
    assert metric(metrics, "ripple_xds_ready") == 1
    assert metric(metrics, "ripple_xds_streams_open") == 1
    assert metric(metrics, "ripple_xds_tenants_loaded") == 2
    assert metric(metrics, "ripple_xds_source_fetched_total") >= 1
    assert metric(metrics, 'ripple_xds_acks_total{mode="delta",type="rds"}') >= 2

    assert await asyncio.to_thread(xds.terminate) == 0, tail(xds.log)
    log = xds.log.read_text()
    assert '"event": "ready"' in log
    stops = [log.index(f'"component": "{c}", "event": "stopping"') for c in STOP_ORDER]
    assert stops == sorted(stops), "ADS server first, then the source, health and redis"


async def test_envoy_keeps_serving_through_a_restart_and_follows_the_new_replica(
    *,
    xds: XdsProcess,
    envoy: subprocess.Popen[bytes],
    store: RedisTenantStore,
    backend_port: int,
    ports: Ports,
    tmp_path: Path,
) -> None:
    logs = [xds.log, tmp_path / "envoy.log"]

    async def host_status(host: str) -> int | None:
        if envoy.poll() is not None:
            pytest.fail(f"envoy exited with {envoy.returncode}:\n{tail(logs[1])}")
        return await status(ports.http, host=host)

    async def a_served() -> bool:
        return await host_status(HOST_A) == 200

    await until(f"{HOST_A} -> 200", a_served, logs=logs)
    assert await asyncio.to_thread(xds.terminate) == 0, tail(xds.log)
    assert await host_status(HOST_A) == 200  # Envoy keeps its last config without a server

    second = XdsProcess(xds.settings, log=tmp_path / "xds-2.log")
    logs.append(second.log)
    exit_code: int | None = None
    try:

        async def reconnected() -> bool:
            second.check_alive()
            if await status(ports.health, "/readyz") != 200:
                return False
            _, metrics = await asyncio.to_thread(http_get, ports.health, "/metrics")
            return metric(metrics, "ripple_xds_streams_open") == 1

        await until("envoy reconnects to the new replica", reconnected, logs=logs)
        await write_tenant(
            store, A, tenant_resources(A, [HOST_A, "a2.example.com"], backend_port=backend_port)
        )

        async def a2_served() -> bool:
            return await host_status("a2.example.com") == 200

        await until("a2.example.com -> 200", a2_served, logs=logs, within_s=PROPAGATION_S)
        assert await host_status(HOST_B1) == 200
    finally:
        exit_code = await asyncio.to_thread(second.terminate)
    assert exit_code == 0, tail(second.log)
