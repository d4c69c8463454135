"""`ripple-watcher` as a process: publishes, and exits 0 on SIGTERM with everything flushed."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import sys

from tests.conftest import StackEnv
from tests.integration.watcher.support import (
    CORE_KINDS,
    Kube,
    envelope_log,
    unique,
)


async def test_sigterm_flushes_and_exits_zero(stack: StackEnv, topic: str, kube: Kube) -> None:
    ns = await kube.namespace(unique("rw-p"))
    await kube.ingress(ns, "web", host="p.example.test")
    env = {
        **os.environ,
        "RIPPLE_WATCHER_KUBECONFIG": stack["KUBECONFIG"],
        "RIPPLE_WATCHER_KAFKA_BOOTSTRAP": stack["RIPPLE_KAFKA_BOOTSTRAP"],
        "RIPPLE_WATCHER_TOPIC": topic,
        "RIPPLE_WATCHER_KINDS": json.dumps(CORE_KINDS),
        "RIPPLE_WATCHER_SEALING_KEY": base64.b64encode(os.urandom(32)).decode(),
        "RIPPLE_WATCHER_LOG_LEVEL": "INFO",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ripple_watcher",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with envelope_log(stack["RIPPLE_KAFKA_BOOTSTRAP"], topic) as log:
            await log.wait_for(lambda: len(log.of_tenant(ns)) == 1, within=30)
        proc.send_signal(signal.SIGTERM)
        stdout, _stderr = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    assert proc.returncode == 0
    lines = [json.loads(line) for line in stdout.decode().splitlines() if line.startswith("{")]
    assert any(line["event"] == "relist" and line["kind"] == "Ingress" for line in lines)
    assert lines[-1]["event"] == "stopping"


async def test_secrets_without_a_sealing_key_refuse_to_start() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIPPLE_WATCHER_")}
    env["RIPPLE_WATCHER_KINDS"] = json.dumps(["Secret"])
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ripple_watcher",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _stdout, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert b"RIPPLE_WATCHER_SEALING_KEY" in stderr
