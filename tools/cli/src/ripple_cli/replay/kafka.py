"""Reading `ripple.events` for a replay (the only module of the replay importing aiokafka).

A plain consumer with NO group: partitions are assigned by hand and positions set with seek,
so the replay never joins the translators' consumer group, never commits and never writes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from types import TracebackType

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner

from ripple_cli.replay.model import LogRecord, ReplayError
from ripple_common.kafka_security import PLAINTEXT, KafkaSecurity, client_kwargs
from ripple_common.kafka_sizes import consumer_size_kwargs

FETCH_MAX_RECORDS = 5000
FETCH_TIMEOUT_MS = 1000


def partition_for(tenant: str, partitions: Sequence[int]) -> int:
    """The partition the watcher's producer puts `tenant`'s events on (Kafka's default
    partitioner: murmur2 of the key)."""
    ordered = sorted(partitions)
    return int(DefaultPartitioner()(tenant.encode(), ordered, ordered))


class KafkaLog:
    """The events topic, read-only."""

    def __init__(self, *, bootstrap: str, topic: str, security: KafkaSecurity = PLAINTEXT) -> None:
        self.topic = topic
        self._bootstrap = bootstrap
        self._security = security
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="ripple-replay",
            **consumer_size_kwargs(),
            **client_kwargs(security),
        )

    async def __aenter__(self) -> KafkaLog:
        try:
            await self._consumer.start()
        except Exception as exc:
            await self._consumer.stop()
            raise ReplayError(f"cannot reach Kafka at {self._bootstrap}: {exc}") from None
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._consumer.stop()

    async def partitions(self) -> list[int]:
        # The consumer's own cluster view holds only assigned topics: ask the cluster (a
        # metadata request, read-only) through an admin client.
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self._bootstrap,
            client_id="ripple-replay",
            **client_kwargs(self._security),
        )
        await admin.start()
        try:
            described = await admin.describe_topics([self.topic])
        finally:
            await admin.close()
        found = [
            int(p["partition"])
            for t in described
            if t.get("topic") == self.topic and not t.get("error_code")
            for p in t.get("partitions", [])
        ]
        if not found:
            raise ReplayError(f"topic {self.topic!r} does not exist at {self._bootstrap}")
        return sorted(found)

    async def bounds(self, partition: int) -> tuple[int, int]:
        """(log start offset, end offset): what retention kept, end exclusive."""
        tp = TopicPartition(self.topic, partition)
        begin = (await self._consumer.beginning_offsets([tp]))[tp]
        end = (await self._consumer.end_offsets([tp]))[tp]
        return int(begin), int(end)

    def truncated(self, begin: int) -> bool:
        return begin > 0

    async def offset_after(self, partition: int, timestamp_ms: int) -> int | None:
        """The first offset whose timestamp is at or after `timestamp_ms` (None: none)."""
        tp = TopicPartition(self.topic, partition)
        found = (await self._consumer.offsets_for_times({tp: timestamp_ms}))[tp]
        return None if found is None else int(found.offset)

    async def read(self, partition: int, *, start: int, stop: int) -> AsyncIterator[LogRecord]:
        """The records at offsets [start, stop), in order."""
        if start >= stop:
            return
        tp = TopicPartition(self.topic, partition)
        self._consumer.assign([tp])
        self._consumer.seek(tp, start)
        position = start
        while position < stop:
            batch = await self._consumer.getmany(
                tp, timeout_ms=FETCH_TIMEOUT_MS, max_records=FETCH_MAX_RECORDS
            )
            for message in batch.get(tp, []):
                if message.offset >= stop:
                    return
                position = message.offset + 1
                yield LogRecord(
                    topic=self.topic,
                    partition=partition,
                    offset=message.offset,
                    timestamp_ms=message.timestamp,
                    key=message.key,
                    value=message.value or b"",
                )
            if not batch:
                # Nothing fetched in time: offset gaps (transaction markers), or the end.
                position = max(position, await self._consumer.position(tp))
                begin, end = await self.bounds(partition)
                if position < begin:
                    raise ReplayError(
                        f"{self.topic}/{partition}: offsets {position}..{begin - 1} were deleted "
                        "by retention while replaying"
                    )
                if position >= min(stop, end):
                    return
