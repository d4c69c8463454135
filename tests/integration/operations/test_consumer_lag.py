"""The translator's consumer lag per partition against the stack's Kafka: records produced to
an own 2-partition topic count as lag on their partition until their offsets are committed
(durable in Redis), handed out or not; new records raise it again as the next fetch sees the
new highwater mark; the /metrics page renders it as ripple_translator_consumer_lag."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from ripple_translator.consumer import KafkaEventSource
from ripple_translator.metrics import MetricsView, TranslatorStats, render_metrics
from ripple_translator.slot import TopicPartition
from scripts.pipeline import ensure_topic
from tests.conftest import StackEnv
from tests.integration.watcher.support import delete_topic
from tests.waiting import eventually


class _Handler:
    async def assign(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        return {}

    async def revoke(
        self, tps: Sequence[TopicPartition], *, timeout_s: float
    ) -> dict[TopicPartition, int]:
        return {}


async def _produce(bootstrap: str, topic: str, counts: dict[int, int]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for partition, count in counts.items():
            for i in range(count):
                await producer.send_and_wait(topic, value=b"%d" % i, partition=partition)
    finally:
        await producer.stop()


async def test_lag_per_partition_counts_records_until_committed(stack: StackEnv) -> None:
    bootstrap = stack["RIPPLE_KAFKA_BOOTSTRAP"]
    topic = f"it-lag-{uuid.uuid4().hex[:8]}"
    await ensure_topic(bootstrap, topic, 2)
    await _produce(bootstrap, topic, {0: 5, 1: 2})
    source = KafkaEventSource(
        bootstrap=bootstrap,
        topic=topic,
        group_id=f"it-lag-{uuid.uuid4().hex[:8]}",
        handler=_Handler(),
    )
    await source.start()
    try:
        handed = 0

        async def fetched() -> int:
            nonlocal handed
            handed += len(await source.fetch(timeout_ms=500, max_records=10))
            return handed

        # fetch itself waits up to 500 ms: no pause of our own between fetches.
        await eventually(fetched, until=lambda n: n >= 7, within_s=30, every_s=0.001)
        # Handed out, nothing committed: all of it is lag.
        assert source.lag() == {(topic, 0): 5, (topic, 1): 2}
        await source.commit({(topic, 0): 5, (topic, 1): 1})
        assert source.lag() == {(topic, 0): 0, (topic, 1): 1}

        await _produce(bootstrap, topic, {0: 3})

        async def lag_fetching() -> dict[tuple[str, int], int]:
            lag = source.lag()
            if lag[topic, 0] != 3:
                await source.fetch(timeout_ms=500, max_records=10)
            return lag

        await eventually(
            lag_fetching, until=lambda lag: lag[topic, 0] == 3, within_s=30, every_s=0.001
        )
        assert source.lag() == {(topic, 0): 3, (topic, 1): 1}

        _, text = render_metrics(
            MetricsView(
                stats=TranslatorStats(),
                partitions=2,
                tenants=0,
                in_flight=0,
                waiting=0,
                ready=True,
                lag=source.lag(),
            )
        )
        assert f'ripple_translator_consumer_lag{{topic="{topic}",partition="0"}} 3' in text
        assert f'ripple_translator_consumer_lag{{topic="{topic}",partition="1"}} 1' in text
        assert "# TYPE ripple_translator_consumer_lag gauge" in text
    finally:
        await source.stop()
        await delete_topic(bootstrap, topic)
