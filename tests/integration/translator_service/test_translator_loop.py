"""The translator loop against the stack's Kafka and Redis: two tenants on a fresh topic are
translated into Redis, the covered offsets and the group's commits advance; after a restart the
translator rebuilds its tenants from Redis, rewrites nothing for events already covered, and
applies the new ones."""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis

from ripple_common.lifecycle import Lifecycle
from ripple_translator.app import start_translator
from ripple_translator.settings import TranslatorSettings
from ripple_translator.store import KeyLayout, RedisTenantStore
from tests.conftest import StackEnv
from tests.integration.translator_service.conftest import PARTITIONS
from tests.integration.translator_service.support import (
    A,
    B,
    class_envelope,
    end_offsets,
    eventually,
    eventually_committed,
    loop_settings,
    names,
    produce,
    rewind_group,
)
from tests.unit.translator_service.support import (
    deleted,
    event,
    ingress,
    service,
)


async def run_translator(settings: TranslatorSettings) -> Lifecycle:
    lc = Lifecycle()
    await start_translator(lc, settings)
    return lc


async def test_translator_loop_writes_commits_and_resumes(
    stack: StackEnv, redis_client: aioredis.Redis, prefix: str, topic: str
) -> None:
    bootstrap = stack["RIPPLE_KAFKA_BOOTSTRAP"]
    group = f"it-tr-{uuid.uuid4().hex[:8]}"
    settings = loop_settings(stack, topic=topic, prefix=prefix, group=group)
    store = RedisTenantStore(redis_client, layout=KeyLayout(prefix=prefix))
    await produce(
        bootstrap,
        topic,
        [
            class_envelope(),
            event("alpha", service("alpha")),
            event("alpha", ingress("alpha", "web", "alpha.example.com")),
            event(B, service(B)),
            event(B, ingress(B, "web", "beta.example.com")),
            event(B, ingress(B, "api", "api.beta.example.com")),
        ],
    )

    lc = await run_translator(settings)
    try:

        async def both_written() -> bool:
            a = await store.load_checkpoint("alpha")
            b = await store.load_checkpoint(B)
            return "alpha/scope/alpha.example.com" in names(a) and {
                "tenant-a/scope/beta.example.com",
                "tenant-a/scope/api.beta.example.com",
            } <= names(b)

        await eventually(both_written)
        await eventually_committed(bootstrap, topic, group)
    finally:
        await lc.aclose()

    ends = await end_offsets(bootstrap, topic)
    first = {t: await store.load_checkpoint(t) for t in (A, B)}
    a_offset, b_offset = first[A].offset, first[B].offset
    assert a_offset is not None
    assert b_offset is not None
    assert a_offset.partition != b_offset.partition
    for cp in first.values():
        assert cp.offset is not None
        assert cp.offset.topic == topic
        assert 0 < cp.offset.offset <= ends[cp.offset.partition]
        assert cp.version >= 1

    # While stopped: a new Ingress for alpha, beta's api Ingress deleted.
    await produce(
        bootstrap,
        topic,
        [
            event("alpha", ingress("alpha", "shop", "shop.alpha.example.com")),
            deleted(B, "Ingress", B, "api"),
        ],
    )
    # Rewind the group to the start: every covered event is seen again and must change nothing.
    await rewind_group(bootstrap, topic, group)

    lc = await run_translator(settings)
    try:

        async def resumed() -> bool:
            a = await store.load_checkpoint("alpha")
            b = await store.load_checkpoint(B)
            return "alpha/scope/shop.alpha.example.com" in names(
                a
            ) and "tenant-a/scope/api.beta.example.com" not in names(b)

        await eventually(resumed)
        await eventually_committed(bootstrap, topic, group)
    finally:
        await lc.aclose()

    ends = await end_offsets(bootstrap, topic)
    second = {t: await store.load_checkpoint(t) for t in (A, B)}
    # Exactly one new version each: the replayed events rewrote nothing.
    assert second["alpha"].version == first["alpha"].version + 1
    assert second[B].version == first[B].version + 1
    assert "alpha/scope/alpha.example.com" in names(second["alpha"])
    assert "tenant-a/scope/beta.example.com" in names(second[B])
    for cp in second.values():
        assert cp.offset is not None
        assert cp.offset.offset == ends[cp.offset.partition]


async def test_two_translators_share_partitions_and_one_takes_over(
    stack: StackEnv, redis_client: aioredis.Redis, prefix: str, topic: str
) -> None:
    bootstrap = stack["RIPPLE_KAFKA_BOOTSTRAP"]
    group = f"it-tr-{uuid.uuid4().hex[:8]}"
    settings = loop_settings(stack, topic=topic, prefix=prefix, group=group)
    store = RedisTenantStore(redis_client, layout=KeyLayout(prefix=prefix))
    klass = class_envelope()
    await produce(bootstrap, topic, [klass, event(A, service(A)), event(B, service(B))])

    async def served(tenant: str, host: str) -> bool:
        return f"{tenant}/scope/{host}" in names(await store.load_checkpoint(tenant))

    first = Lifecycle()
    loop1 = await start_translator(first, settings)
    second = Lifecycle()
    try:
        await produce(bootstrap, topic, [event(A, ingress(A, "one", "one.a.example.com"))])
        await eventually(lambda: served(A, "one.a.example.com"))
        loop2 = await start_translator(second, settings)

        async def split() -> bool:
            return len(loop1.engine.owned) == 1 and len(loop2.engine.owned) == 1

        await eventually(split)
        await produce(
            bootstrap,
            topic,
            [
                event(A, ingress(A, "two", "two.a.example.com")),
                event(B, ingress(B, "one", "one.b.example.com")),
            ],
        )
        await eventually(lambda: served(A, "two.a.example.com"))
        await eventually(lambda: served(B, "one.b.example.com"))

        await first.aclose()  # the first translator leaves; the second takes everything over

        async def all_owned() -> bool:
            return len(loop2.engine.owned) == PARTITIONS

        await eventually(all_owned)
        await produce(
            bootstrap,
            topic,
            [
                event(A, ingress(A, "three", "three.a.example.com")),
                deleted(B, "Ingress", B, "one"),
                event(B, ingress(B, "two", "two.b.example.com")),
            ],
        )
        await eventually(lambda: served(A, "three.a.example.com"))
        await eventually(lambda: served(B, "two.b.example.com"))
        await eventually_committed(bootstrap, topic, settings.group_id)
    finally:
        await first.aclose()
        await second.aclose()

    a = await store.load_checkpoint(A)
    b = await store.load_checkpoint(B)
    assert {f"{A}/scope/{h}.a.example.com" for h in ("one", "two", "three")} <= names(a)
    assert f"{B}/scope/one.b.example.com" not in names(b)
    assert f"{B}/scope/two.b.example.com" in names(b)
    # One version per change, whoever wrote it: no fencing conflict, no rewrite on takeover.
    assert a.version == 3
    assert b.version in (2, 3)  # the delete and the add may be coalesced into one version
