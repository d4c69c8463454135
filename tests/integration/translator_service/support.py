"""Helpers of the translator service's integration tests: producing envelopes as the watcher
does, reading the group's commits and the topic's end offsets, polling for a condition."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from ripple_common.envelope import CLUSTER_TENANT, Envelope, EventType
from ripple_translator.settings import TranslatorSettings
from ripple_translator.store import Checkpoint
from tests import waiting
from tests.conftest import StackEnv
from tests.integration.translator_service.conftest import PARTITIONS
from tests.unit.translator_service.support import ingress_class

# Tenants on different partitions of a 2-partition topic (murmur2 of the key).
A, B = "alpha", "tenant-a"


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
    """`tests.waiting.eventually` with this suite's default patience."""
    await waiting.eventually(check, within_s=timeout_s)


async def eventually_committed(bootstrap: str, topic: str, group: str) -> None:
    """The group's committed offsets reach the end of every partition."""
    ends = await end_offsets(bootstrap, topic)

    async def done() -> bool:
        return await committed(bootstrap, group) == ends

    await eventually(done)


def names(cp: Checkpoint) -> set[str]:
    return {name for _, name in cp.resource_versions}


def class_envelope() -> Envelope:
    """The IngressClass the tests' Ingresses name, as a cluster-scoped event."""
    return Envelope(
        type=EventType.ADDED,
        kind="IngressClass",
        tenant=CLUSTER_TENANT,
        namespace=None,
        name="ripple",
        uid="c1",
        resource_version="1",
        observed_at_ns=1,
        object=ingress_class(),
    )


def loop_settings(
    stack: StackEnv, *, topic: str, prefix: str, group: str, **overrides: Any
) -> TranslatorSettings:
    """Settings of an in-process translator on the stack, polling fast."""
    return TranslatorSettings(
        kafka_bootstrap=stack["RIPPLE_KAFKA_BOOTSTRAP"],
        redis_url=stack["RIPPLE_REDIS_URL"],
        topic=topic,
        group_id=group,
        redis_prefix=prefix,
        poll_ms=50,
        **overrides,
    )
