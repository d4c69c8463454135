"""Helpers of the xds service tests: tenants translated by the translator's pure core and
written with its Redis store, HTTP probes, and a real Envoy doing Delta ADS."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ripple_common.resources import Resource
from ripple_translator.store import KafkaOffset, RedisTenantStore, diff_resources
from tests.integration.loopback import http_get, status
from tests.integration.xds import envoy_resources as er
from tests.unit.translator import k8s
from tests.waiting import eventually

DEADLINE_S = 20.0
PROPAGATION_S = 5.0
A, B = "tenant-a", "tenant-b"
HOST_A, HOST_B1, HOST_B2 = "a.example.com", "b1.example.com", "b2.example.com"


@dataclass(frozen=True, slots=True)
class Ports:
    xds: int
    http: int
    health: int
    admin: int


def xds_settings(*, redis_url: str, prefix: str, ports: Ports) -> dict[str, str]:
    """The RIPPLE_XDS_ settings of a test xds process (see `XdsProcess`)."""
    return {
        "redis_url": redis_url,
        "redis_prefix": prefix,
        "listen": f"127.0.0.1:{ports.xds}",
        "gateway_http_address": "127.0.0.1",
        "gateway_http_port": str(ports.http),
        "health_port": str(ports.health),
        "shutdown_grace_s": "1",
        "block_ms": "500",
        # Plaintext ADS to the test Envoy: secrets (SDS) only with the development flag.
        "insecure_dev_secrets": "true",
    }


def metric(text: str, name: str) -> float:
    """One sample of a Prometheus text page, by its name with labels."""
    for line in text.splitlines():
        key, _, value = line.rpartition(" ")
        if key == name:
            return float(value)
    raise AssertionError(f"metric {name} missing:\n{text}")


def tenant_resources(tenant: str, hosts: Sequence[str], *, backend_port: int) -> list[Resource]:
    """The translator's output for a tenant whose Ingress sends `hosts` to Service `web`,
    whose EndpointSlice points at the backend on loopback."""
    translation = k8s.run(
        k8s.ingress(rules=[k8s.rule(h) for h in hosts], namespace=tenant),
        services=[k8s.service(namespace=tenant)],
        slices=[
            k8s.endpoint_slice(
                endpoints=[k8s.endpoint("127.0.0.1")],
                ports=[{"name": "http", "port": backend_port, "protocol": "TCP"}],
                namespace=tenant,
            )
        ],
        tenant=tenant,
    )
    assert not translation.diagnostics, translation.diagnostics
    assert translation.hosts == tuple(sorted(hosts))
    return list(translation.resources)


async def write_tenant(store: RedisTenantStore, tenant: str, desired: Sequence[Resource]) -> int:
    """Write the tenant's next version (only what changed), as the translator does."""
    checkpoint = await store.load_checkpoint(tenant)
    diff = diff_resources(checkpoint.resource_versions, desired)
    return await store.write_version(
        tenant,
        diff.upserts,
        diff.removals,
        offset=KafkaOffset(topic="it-xds", partition=0, offset=checkpoint.version + 1),
        expected_version=checkpoint.version,
        trace_fields={},
    )


async def until(
    what: str,
    check: Callable[[], Awaitable[bool]],
    *,
    logs: Sequence[Path] = (),
    within_s: float = DEADLINE_S,
) -> float:
    """`eventually(check)` that fails with the logs' tails; returns the seconds it took."""
    started = time.monotonic()
    await eventually(
        check,
        within_s=within_s,
        what=what,
        detail=lambda: "\n".join(f"--- {p.name}\n{tail(p)}" for p in logs),
    )
    return time.monotonic() - started


def tail(path: Path) -> str:
    return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"


def start_envoy(
    envoy_bin: str,
    *,
    xds_port: int,
    admin_port: int,
    node_id: str,
    workdir: Path,
    more_xds_ports: tuple[int, ...] = (),
) -> tuple[subprocess.Popen[bytes], Path]:
    """A real Envoy doing Delta ADS to 127.0.0.1:`xds_port` (and `more_xds_ports`: replicas).
    Call from the main thread: Envoy dies with the thread that started it (PR_SET_PDEATHSIG)."""
    config = workdir / "envoy.yaml"
    config.write_text(
        er.bootstrap(
            node_id=node_id,
            admin_port=admin_port,
            xds_port=xds_port,
            api_type="DELTA_GRPC",
            more_xds_ports=more_xds_ports,
        )
    )
    log = workdir / "envoy.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
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
    return proc, log


@asynccontextmanager
async def running_xds(
    settings: Mapping[str, str], *, log: Path, health_port: int
) -> AsyncIterator[XdsProcess]:
    """An xds process with `settings`, ready (its /readyz on `health_port` answers 200);
    stopped on exit."""
    process = XdsProcess(settings, log=log)
    try:
        await process.wait_ready(health_port)
        yield process
    finally:
        await process.stop()


@contextmanager
def running_envoy(envoy_bin: str, **options: Any) -> Iterator[subprocess.Popen[bytes]]:
    """`start_envoy` (same options), stopped on exit."""
    proc, _ = start_envoy(envoy_bin, **options)
    try:
        yield proc
    finally:
        stop_process(proc)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class XdsProcess:
    """`python -m ripple_xds` with the given RIPPLE_XDS_ settings, logging to `log`."""

    def __init__(self, settings: Mapping[str, str], *, log: Path) -> None:
        self.log = log
        self.settings = dict(settings)
        env = {**os.environ, **{f"RIPPLE_XDS_{k.upper()}": v for k, v in settings.items()}}
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ripple_xds"], env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(
                f"ripple-xds exited with {self.proc.returncode}:\n{tail(self.log)}"
            )

    async def wait_ready(self, health_port: int) -> None:
        """Until its /readyz answers 200 (fails with its log if it exits or takes too long)."""

        async def ready() -> bool:
            self.check_alive()
            return await status(health_port, "/readyz") == 200

        await until("xds /readyz 200", ready, logs=[self.log])

    async def stop(self) -> None:
        """Terminate it unless it has exited already."""
        if self.proc.poll() is None:
            await asyncio.to_thread(self.terminate)

    def terminate(self, *, within_s: float = 30) -> int:
        """SIGTERM and wait; kill on timeout. Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(within_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise


async def envoy_stats(admin_port: int, matching: str) -> dict[str, int]:
    """Envoy's counters and gauges whose name contains `matching` (admin /stats)."""
    code, text = await asyncio.to_thread(http_get, admin_port, f"/stats?filter={matching}")
    assert code == 200, text
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(": ")
        if sep and value.strip().isdigit():
            values[name] = int(value)
    return values
