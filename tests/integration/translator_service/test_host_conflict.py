"""A host conflict between two tenants owned by two translator instances (real Kafka and
Redis): the older Ingress wins even when it arrives second, the younger tenant stops serving
the host (a notice crosses the instances), the scope table never holds the host for both
tenants, and when the owner deletes its Ingress the waiting tenant gets the host."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import redis.asyncio as aioredis

from ripple_common.lifecycle import Lifecycle
from ripple_common.resources import TypeUrl
from ripple_translator.service import start_translator
from ripple_translator.store import KeyLayout, RedisTenantStore
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


async def test_older_ingress_wins_across_translators_and_the_host_is_never_doubled(
    stack: StackEnv, redis_client: aioredis.Redis, prefix: str, topic: str
) -> None:
    bootstrap = stack["RIPPLE_KAFKA_BOOTSTRAP"]
    group = f"it-tr-{uuid.uuid4().hex[:8]}"
    settings = loop_settings(stack, topic=topic, prefix=prefix, group=group, notice_block_ms=100)
    layout = KeyLayout(prefix=prefix)
    store = RedisTenantStore(redis_client, layout=layout)

    async def serving() -> set[str]:
        out = set()
        for tenant in (A, B):
            key = layout.resources(tenant, TypeUrl.SCOPED_ROUTE)
            if await redis_client.hexists(key, f"{tenant}/scope/{HOST}"):
                out.add(tenant)
        return out

    doubled: list[set[str]] = []

    async def watch() -> None:
        while True:
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
        await eventually(lambda: served_by({A}))
        assert (await store.owners([HOST]))[HOST] == A

        await produce(bootstrap, topic, [deleted(A, "Ingress", A, "old")])
        await eventually(lambda: served_by({B}))
        assert (await store.owners([HOST]))[HOST] == B
        stats = loop1.engine.stats.host_notices + loop2.engine.stats.host_notices
        assert stats >= 2  # "taken" woke B, "withdrawn"/"released" woke the other
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await first.aclose()
        await second.aclose()
    assert doubled == []
