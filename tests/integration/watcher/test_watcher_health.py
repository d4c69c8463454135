"""Health, readiness and metrics endpoints of a running watcher."""

from __future__ import annotations

import asyncio

from tests.conftest import StackEnv
from tests.integration.loopback import free_port
from tests.integration.watcher.support import running_watcher, watcher_settings


async def _get(port: int, path: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    await writer.wait_closed()
    head, _, body = raw.decode().partition("\r\n\r\n")
    return int(head.split(" ")[1]), body


async def test_synced_watcher_is_ready_and_exposes_metrics(stack: StackEnv, topic: str) -> None:
    port = free_port()
    settings = watcher_settings(stack, topic, health_port=port, health_host="127.0.0.1")
    async with running_watcher(settings):
        ready = await _get(port, "/readyz")
        metrics = await _get(port, "/metrics")
        missing = await _get(port, "/nope")

    assert ready == (200, "ok\n")
    assert metrics[0] == 200
    assert 'ripple_watcher_relists_total{kind="Ingress"} 1' in metrics[1]
    assert missing[0] == 404
