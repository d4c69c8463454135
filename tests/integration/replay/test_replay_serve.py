"""`ripple replay --serve`: the replayed config (from an export file) served by a local xds
server to a real Envoy, which then routes a real request to the backend the history names."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from ripple_cli.replay import export
from ripple_cli.replay.model import LogRecord
from ripple_common.envelope import Envelope
from tests.conftest import StackEnv
from tests.integration.loopback import free_port, http_get, status
from tests.unit.translator_service.support import cluster, event, ingress, ingress_class, service
from tests.waiting import eventually

TENANT = "serve-t"
HOST = "serve.replay.test"


def endpoint_slice(port: int) -> dict[str, Any]:
    return {
        "kind": "EndpointSlice",
        "metadata": {
            "name": "web-1",
            "namespace": TENANT,
            "labels": {"kubernetes.io/service-name": "web"},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
    }


def write_history(path: Path, backend_port: int) -> None:
    envelopes: list[Envelope] = [
        cluster(ingress_class()),
        event(TENANT, service(TENANT)),
        event(TENANT, endpoint_slice(backend_port)),
        event(TENANT, ingress(TENANT, "web", HOST)),
    ]
    records = [
        LogRecord(
            topic="ripple.events",
            partition=0,
            offset=i,
            timestamp_ms=1_764_000_000_000 + i,
            key=env.key,
            value=env.to_bytes(),
        )
        for i, env in enumerate(envelopes)
    ]
    with path.open("w") as out:
        export.write(records, out)


async def test_serve_routes_real_requests(
    stack: StackEnv, backend_port: int, tmp_path: Path
) -> None:
    envoy_bin = stack["RIPPLE_ENVOY_BIN"]
    history = tmp_path / "h.ndjson"
    write_history(history, backend_port)
    listen, admin = free_port(), free_port()
    bootstrap = tmp_path / "envoy.json"
    replay = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ripple_cli",
        "replay",
        TENANT,
        "--from-file",
        str(history),
        "--serve",
        "--listen-port",
        str(listen),
        "--admin-port",
        str(admin),
        "--envoy-bootstrap",
        str(bootstrap),
        env={k: v for k, v in os.environ.items() if not k.startswith("RIPPLE_TRANSLATOR_")},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    envoy: asyncio.subprocess.Process | None = None
    log = tmp_path / "envoy.log"
    try:
        assert replay.stdout is not None
        first = await asyncio.wait_for(replay.stdout.readline(), 60)
        assert first.startswith(b"# serving 4 resources"), first
        with log.open("w") as out:
            envoy = await asyncio.create_subprocess_exec(
                *(envoy_bin, "-c", str(bootstrap), "--disable-hot-restart", "--concurrency", "1"),
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )

        async def routed() -> bool:
            assert envoy is not None
            if envoy.returncode is not None:
                pytest.fail(f"envoy exited: {log.read_text()[-2000:]}")
            return await status(listen, host=HOST) == 200

        await eventually(
            routed,
            within_s=30,
            every_s=0.1,
            what=f"{HOST} routed by Envoy",
            detail=lambda: f"Envoy's log:\n{log.read_text()[-2000:]}",
        )
        code, body = await asyncio.to_thread(http_get, listen, "/", host=HOST)
        assert code == 200
        assert body == f"backend host={HOST}"
        assert await status(listen, host="unknown.replay.test") == 404
    finally:
        if envoy is not None:
            envoy.terminate()
            await asyncio.wait_for(envoy.wait(), 10)
        if replay.returncode is None:
            replay.send_signal(signal.SIGTERM)
        await asyncio.wait_for(replay.wait(), 30)
    assert replay.returncode == 0
