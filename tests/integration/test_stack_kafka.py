"""Kafka from Python (aiokafka): keyed ordering and consumer-group offsets on the real broker."""

from __future__ import annotations

import uuid
from collections import defaultdict

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.conftest import StackEnv

TENANTS = ["tenant-a", "tenant-b", "tenant-c", "tenant-d"]
PER_TENANT = 25


async def _make_topic(bootstrap: str, partitions: int) -> str:
    topic = f"it-{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name=topic, num_partitions=partitions, replication_factor=1)]
        )
    finally:
        await admin.close()
    return topic


async def test_keyed_messages_stay_ordered_and_group_resumes(stack: StackEnv) -> None:
    bootstrap = stack["RIPPLE_KAFKA_BOOTSTRAP"]
    topic = await _make_topic(bootstrap, partitions=4)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for i in range(PER_TENANT):
            for tenant in TENANTS:
                await producer.send(topic, key=tenant.encode(), value=f"{tenant}:{i}".encode())
        await producer.flush()
    finally:
        await producer.stop()

    group = f"g-{uuid.uuid4().hex[:8]}"
    seen: dict[str, list[int]] = defaultdict(list)
    partition_of: dict[str, set[int]] = defaultdict(set)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        half = len(TENANTS) * PER_TENANT // 2
        consumed = 0
        while consumed < half:
            batch = await consumer.getmany(timeout_ms=5000, max_records=half - consumed)
            assert batch, "no records within 5 s"
            for tp, records in batch.items():
                for rec in records:
                    tenant, _, idx = rec.value.decode().partition(":")
                    assert rec.key == tenant.encode()
                    seen[tenant].append(int(idx))
                    partition_of[tenant].add(tp.partition)
                    consumed += 1
        await consumer.commit()
    finally:
        await consumer.stop()

    # A second member of the same group resumes exactly after the committed offsets.
    resumed = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await resumed.start()
    try:
        remaining = len(TENANTS) * PER_TENANT - consumed
        while remaining:
            batch = await resumed.getmany(timeout_ms=5000)
            assert batch, "no records within 5 s after resume"
            for tp, records in batch.items():
                for rec in records:
                    tenant, _, idx = rec.value.decode().partition(":")
                    seen[tenant].append(int(idx))
                    partition_of[tenant].add(tp.partition)
                    remaining -= 1
        await resumed.commit()
        parts = sorted(resumed.assignment())
        ends = await resumed.end_offsets(parts)
        for tp in parts:
            assert await resumed.committed(tp) == ends[tp]
    finally:
        await resumed.stop()

    for tenant in TENANTS:
        assert seen[tenant] == list(range(PER_TENANT)), f"{tenant} out of order or duplicated"
        assert len(partition_of[tenant]) == 1, f"{tenant} spread over partitions"
