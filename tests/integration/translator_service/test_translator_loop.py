"""The translator loop against the stack's Kafka and Redis: two tenants on a fresh topic are
translated into Redis, the covered offsets and the group's commits advance; after a restart the
translator rebuilds its tenants from Redis, rewrites nothing for events already covered, and
applies the new ones."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from ripple_common.envelope import CLUSTER_TENANT, Envelope, EventType
from ripple_common.lifecycle import Lifecycle
from ripple_translator.service import start_translator
from ripple_translator.settings import TranslatorSettings
from ripple_translator.store import Checkpoint, KeyLayout, RedisTenantStore
from tests.conftest import StackEnv
from tests.unit.translator_service.support import (
    deleted,
    event,
    ingress,
    ingress_class,
    service,
)

PARTITIONS = 2
# Tenants on different partitions of a 2-partition topic (murmur2 of the key).
A, B = "alpha", "tenant-a"


@pytest.fixture
async def redis_client(stack: StackEnv) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(stack["RIPPLE_REDIS_URL"], decode_responses=False)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def prefix(redis_client: aioredis.Redis) -> AsyncIterator[str]:
    prefix = f"it-tr-{uuid.uuid4().hex[:8]}"
    try:
        yield prefix
    finally:
        keys = [k async for k in redis_client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await redis_client.delete(*keys)


async def make_topic(bootstrap: str) -> str:
    topic = f"it-tr-{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name=topic, num_partitions=PARTITIONS, replication_factor=1)]
        )
    finally:
        await admin.close()
    return topic


async def produce(bootstrap: str, topic: str, envelopes: Sequence[Envelope]) -> None:
    """Tenant events keyed by tenant; cluster events copied to every partition (as the
    watcher's publisher does)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for env in envelopes:
            if env.tenant == CLUSTER_TENANT:
                for partition in range(PARTITIONS):
                    await producer.send_and_wait(
                        topic, value=env.to_bytes(), key=env.key, partition=partition
                    )
            else:
                await producer.send_and_wait(topic, value=env.to_bytes(), key=env.key)
    finally:
        await producer.stop()


async def committed(bootstrap: str, group: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items()}


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return {tp.partition: off for tp, off in ends.items()}


async def rewind_group(bootstrap: str, topic: str, group: str) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.commit(dict.fromkeys(tps, 0))
    finally:
        await consumer.stop()


async def eventually(check: Callable[[], Awaitable[bool]], *, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail("condition not met in time")
        await asyncio.sleep(0.1)


async def eventually_committed(bootstrap: str, topic: str, group: str) -> None:
    """The group's committed offsets reach the end of every partition."""
    ends = await end_offsets(bootstrap, topic)

    async def done() -> bool:
        return await committed(bootstrap, group) == ends

    await eventually(done)


def names(cp: Checkpoint) -> set[str]:
    return {name for _, name in cp.resource_versions}


async def run_translator(settings: TranslatorSettings) -> Lifecycle:
    lc = Lifecycle()
    await start_translator(lc, settings)
    return lc


async def test_translator_loop_writes_commits_and_resumes(
    stack: StackEnv, redis_client: aioredis.Redis, prefix: str
) -> None:
    bootstrap = stack["RIPPLE_KAFKA_BOOTSTRAP"]
    topic = await make_topic(bootstrap)
    group = f"it-tr-{uuid.uuid4().hex[:8]}"
    settings = TranslatorSettings(
        kafka_bootstrap=bootstrap,
        redis_url=stack["RIPPLE_REDIS_URL"],
        topic=topic,
        group_id=group,
        redis_prefix=prefix,
        poll_ms=50,
    )
    store = RedisTenantStore(redis_client, layout=KeyLayout(prefix=prefix))
    await produce(
        bootstrap,
        topic,
        [
            Envelope(
                type=EventType.ADDED,
                kind="IngressClass",
                tenant=CLUSTER_TENANT,
                namespace=None,
                name="ripple",
                uid="c1",
                resource_version="1",
                observed_at_ns=1,
                object=ingress_class(),
            ),
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
