"""The seams the translator's logic depends on, implemented by its adapters: the Kafka
member (`consumer.KafkaEventSource`) feeds the consume loop (`EventSource`) and tells the
engine of assignments (`RebalanceHandler`). The store's seams are `store.TenantStore`,
`store.PartitionStore` and `store.TenantLoader`; the host registry's is `hosts.HostRegistry`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from ripple_translator.engine import Record
from ripple_translator.slot import TopicPartition


class EventSource(Protocol):
    async def fetch(self, *, timeout_ms: int, max_records: int) -> Sequence[Record]: ...

    async def commit(self, positions: Mapping[TopicPartition, int]) -> None: ...


class RebalanceHandler(Protocol):
    async def assign(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]: ...

    async def revoke(
        self, tps: Sequence[TopicPartition], *, timeout_s: float
    ) -> dict[TopicPartition, int]: ...
