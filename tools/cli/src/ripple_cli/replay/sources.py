"""Where a replay reads records from: the events topic (`kafka.KafkaLog`) or an export file
(`FileLog`, held in memory). Both answer the same questions, so the command does not care."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Protocol

from ripple_cli.replay import export
from ripple_cli.replay.model import LogRecord


class EventLog(Protocol):
    topic: str

    async def partitions(self) -> list[int]: ...

    async def bounds(self, partition: int) -> tuple[int, int]:
        """(first offset held, end offset), end exclusive."""
        ...

    async def offset_after(self, partition: int, timestamp_ms: int) -> int | None: ...

    def truncated(self, begin: int) -> bool:
        """Whether a partition starting at `begin` lost older events to retention."""
        ...

    def read(self, partition: int, *, start: int, stop: int) -> AsyncIterator[LogRecord]: ...


class FileLog:
    """An export file as an event log."""

    def __init__(self, records: Iterable[LogRecord], *, name: str) -> None:
        self.name = name
        self._by_partition: dict[int, list[LogRecord]] = {}
        topics: set[str] = set()
        for record in records:
            self._by_partition.setdefault(record.partition, []).append(record)
            topics.add(record.topic)
        for held in self._by_partition.values():
            held.sort(key=lambda r: r.offset)
        self.topic = ",".join(sorted(topics))

    @classmethod
    def open(cls, path: Path) -> FileLog:
        return cls(export.read(path), name=str(path))

    async def partitions(self) -> list[int]:
        return sorted(self._by_partition)

    def partition_of(self, tenant: str) -> int | None:
        """The partition holding `tenant`'s records (None: the file has none)."""
        key = tenant.encode()
        for partition, held in sorted(self._by_partition.items()):
            if any(r.key == key for r in held):
                return partition
        return None

    def truncated(self, begin: int) -> bool:
        return False  # a file holds the records its export chose (other tenants' are left out)

    async def bounds(self, partition: int) -> tuple[int, int]:
        held = self._by_partition.get(partition, [])
        if not held:
            return 0, 0
        return held[0].offset, held[-1].offset + 1

    async def offset_after(self, partition: int, timestamp_ms: int) -> int | None:
        return next(
            (
                r.offset
                for r in self._by_partition.get(partition, [])
                if r.timestamp_ms >= timestamp_ms
            ),
            None,
        )

    async def read(self, partition: int, *, start: int, stop: int) -> AsyncIterator[LogRecord]:
        for record in self._records(partition):
            if start <= record.offset < stop:
                yield record

    def _records(self, partition: int) -> Sequence[LogRecord]:
        return self._by_partition.get(partition, [])
