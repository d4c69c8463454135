"""`python -m ripple_translator` as a process: it translates what is on the topic, and on
SIGTERM stops intake, finishes its writes, commits and exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid

import redis.asyncio as aioredis

from ripple_translator.store import KeyLayout, RedisTenantStore
from tests.conftest import StackEnv
from tests.integration.translator_service.support import (
    A,
    B,
    class_envelope,
    committed,
    end_offsets,
    eventually,
    names,
    produce,
)
from tests.unit.translator_service.support import event, ingress, service


async def test_process_translates_and_exits_cleanly_on_sigterm(
    stack: StackEnv, redis_client: aioredis.Redis, prefix: str, topic: str
) -> None:
    bootstrap = stack["RIPPLE_KAFKA_BOOTSTRAP"]
    group = f"it-tr-{uuid.uuid4().hex[:8]}"
    klass = class_envelope()
    await produce(
        bootstrap,
        topic,
        [
            klass,
            event(A, service(A)),
            event(A, ingress(A, "web", "web.a.example.com")),
            event(B, service(B)),
            event(B, ingress(B, "web", "web.b.example.com")),
        ],
    )
    env = {
        **os.environ,
        "RIPPLE_TRANSLATOR_KAFKA_BOOTSTRAP": bootstrap,
        "RIPPLE_TRANSLATOR_REDIS_URL": stack["RIPPLE_REDIS_URL"],
        "RIPPLE_TRANSLATOR_TOPIC": topic,
        "RIPPLE_TRANSLATOR_GROUP_ID": group,
        "RIPPLE_TRANSLATOR_REDIS_PREFIX": prefix,
        "RIPPLE_TRANSLATOR_POLL_MS": "50",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ripple_translator",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    store = RedisTenantStore(redis_client, layout=KeyLayout(prefix=prefix))
    try:

        async def written() -> bool:
            a = names(await store.load_checkpoint(A))
            b = names(await store.load_checkpoint(B))
            return f"{A}/scope/web.a.example.com" in a and f"{B}/scope/web.b.example.com" in b

        await eventually(written)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    log = out.decode()
    assert proc.returncode == 0, log
    assert '"event": "tenant.write"' in log
    assert await committed(bootstrap, group) == await end_offsets(bootstrap, topic)
