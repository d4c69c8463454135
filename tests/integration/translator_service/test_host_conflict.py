"""A host conflict between two tenants owned by two translator instances (real Kafka and
Redis): the first claim of the host wins, also against an older Ingress arriving second; the
owner deletes its Ingress: the host is held for it for the grace, then the waiting tenant is
woken (across the instances) and gets it; the scope table never holds the host for both
tenants."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import redis.asyncio as aioredis

from ripple_common.lifecycle import Lifecycle
from ripple_common.resources import TypeUrl
from ripple_translator.app import start_translator
from ripple_translator.service import ConsumeLoop
from ripple_translator.store import KeyLayout, RedisHostRegistry
from tests.conftest import StackEnv
from tests.integration.translator_service.support import (
    A,
    B,
    class_envelope,
    eventually,
    loop_settings,
    produce,
)
from tests.unit.translator_service.support import deleted, event, ingress, service

HOST = "shared.example.com"


def aged(ns: str, name: str, created: str) -> dict[str, Any]:
    obj = ingress(ns, name, HOST)
    obj["metadata"]["creationTimestamp"] = created
    return obj


async def test_first_claim_wins_across_translators_and_the_host_is_never_doubled(
    stack: StackEnv, redis_client: aioredis.Redis, prefix: str, topic: str
) -> None:
    bootstrap = stack["RIPPLE_KAFKA_BOOTSTRAP"]
    group = f"it-tr-{uuid.uuid4().hex[:8]}"
    settings = loop_settings(
        stack,
        topic=topic,
        prefix=prefix,
        group=group,
        notice_block_ms=100,
        host_release_grace_s=1.0,
    )
    layout = KeyLayout(prefix=prefix)
    registry = RedisHostRegistry(redis_client, layout=layout)

    async def serving() -> set[str]:
        out = set()
        for tenant in (A, B):
            key = layout.resources(tenant, TypeUrl.SCOPED_ROUTE)
            if await redis_client.hexists(key, f"{tenant}/scope/{HOST}"):
                out.add(tenant)
        return out

    doubled: list[set[str]] = []
    # Stopped by an event, not cancelled: redis-py may swallow a cancellation that lands
    # inside a command, and the watcher then ran (and the test waited for it) forever.
    watching = asyncio.Event()

    async def watch() -> None:
        while not watching.is_set():
            now = await serving()
            if len(now) > 1:
                doubled.append(now)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    first, second = Lifecycle(), Lifecycle()
    try:
        loop1 = await start_translator(first, settings)
        loop2 = await start_translator(second, settings)

        async def split() -> bool:
            return len(loop1.engine.owned) == 1 and len(loop2.engine.owned) == 1

        await eventually(split)
        await produce(
            bootstrap,
            topic,
            [
                class_envelope(),
                event(B, service(B)),
                event(B, aged(B, "young", "2025-06-01T00:00:00Z")),
            ],
        )

        async def served_by(tenants: set[str]) -> bool:
            return await serving() == tenants

        await eventually(lambda: served_by({B}))
        await produce(
            bootstrap,
            topic,
            [event(A, service(A)), event(A, aged(A, "old", "2024-01-01T00:00:00Z"))],
        )
        await eventually(lambda: _lost(loop1, loop2, A))
        assert await serving() == {B}  # the older Ingress came second: it does not take it
        assert (await registry.owners([HOST]))[HOST] == B

        await produce(bootstrap, topic, [deleted(B, "Ingress", B, "young")])
        await eventually(lambda: served_by(set()))
        assert (await registry.owners([HOST]))[HOST] == B  # held for B for the grace
        await eventually(lambda: served_by({A}))
        assert (await registry.owners([HOST]))[HOST] == A
        stats = loop1.engine.stats.host_notices + loop2.engine.stats.host_notices
        assert stats >= 2  # "released" woke A; the end of the hold woke it again
    finally:
        watching.set()
        await watcher
        await first.aclose()
        await second.aclose()
    assert doubled == []


async def _lost(loop1: ConsumeLoop, loop2: ConsumeLoop, tenant: str) -> bool:
    """The tenant's last write reported the host as another's."""
    for loop in (loop1, loop2):
        slot = loop.engine.slot(tenant)
        if slot is not None and any(
            HOST in d.message and "belongs to tenant" in d.message for d in slot.diagnostics
        ):
            return True
    return False
