"""Bounded tenant writes and batched loads with fake stores: a burst of tenants never has more
writes in flight than the bound and all get written; tenants waiting for a write slot coalesce
and are served in order (a lone change during a burst is not starved); a tenant in retry
backoff holds no slot; assignment loads tenants in batches, partitions concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from ripple_common.resources import Resource
from ripple_translator.engine import LOAD_BATCH, LOAD_PIPELINES, Engine
from ripple_translator.store import KafkaOffset
from ripple_translator.store.inputs import InputChanges
from ripple_translator.store.loader import StoreTenantLoader, TenantLoad
from ripple_translator.store.model import ResourceKey
from ripple_translator.writer import WriterConfig
from tests.unit.translator_service.support import (
    TOPIC,
    FakePartitions,
    FakeStore,
    cluster,
    event,
    ingress,
    ingress_class,
    record,
    service,
)
from tests.waiting import eventually

TP = (TOPIC, 0)


class CountingStore(FakeStore):
    """Counts the writes in flight (each takes a little while, yielding to the loop)."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = 0
        self.peak = 0

    async def write_version(
        self,
        tenant: str,
        upserts: Sequence[Resource],
        removals: Sequence[ResourceKey],
        *,
        offset: KafkaOffset,
        expected_version: int,
        trace_fields: Mapping[str, str],
        inputs: InputChanges | None = None,
    ) -> int:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(0.001)
            return await super().write_version(
                tenant,
                upserts,
                removals,
                offset=offset,
                expected_version=expected_version,
                trace_fields=trace_fields,
                inputs=inputs,
            )
        finally:
            self.in_flight -= 1


def make(store: FakeStore, *, bound: int, partitions: FakePartitions | None = None) -> Engine:
    return Engine(
        store=store,
        partitions=partitions or FakePartitions(),
        config=WriterConfig(retry_initial_s=0.01, retry_max_s=0.02, max_concurrent_writes=bound),
    )


def tenant(i: int) -> str:
    return f"t{i:04d}"


async def test_a_burst_of_tenants_stays_within_the_bound_and_all_are_written() -> None:
    store = CountingStore()
    engine = make(store, bound=8)
    await engine.assign([TP])
    await engine.handle([record(0, cluster(ingress_class()))])
    n = 500
    records = [record(1 + i, event(tenant(i), service(tenant(i)))) for i in range(n)]
    peak_seen = waiting_seen = 0

    async def watch() -> None:
        nonlocal peak_seen, waiting_seen
        while True:
            peak_seen = max(peak_seen, engine.writer.in_flight)
            waiting_seen = max(waiting_seen, engine.writer.waiting)
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    store.gate.clear()  # the burst arrives while the first writes are held in flight
    await engine.handle(records)
    await eventually(
        lambda: (engine.writer.in_flight, engine.writer.waiting),
        until=lambda seen: seen == (8, n - 8),
        within_s=5,
        what="8 writes in flight, the others waiting",
    )
    store.gate.set()
    assert await engine.settle(timeout_s=10)
    watcher.cancel()
    assert store.peak == 8
    assert peak_seen == 8
    assert waiting_seen == n - 8
    assert engine.writer.in_flight == 0
    assert engine.writer.waiting == 0
    assert {w.tenant for w in store.writes} == {tenant(i) for i in range(n)}
    assert len(store.writes) == n, "one write per tenant"
    assert await engine.checkpoint() == {TP: n + 1}


async def test_a_lone_change_during_a_burst_is_not_starved() -> None:
    store = FakeStore()
    engine = make(store, bound=2)
    await engine.assign([TP])
    await engine.handle([record(0, cluster(ingress_class()))])
    store.gate.clear()  # hold the first writes in flight; the rest wait for a slot
    burst = [tenant(i) for i in range(20)]
    offset = 1
    for name in burst:
        await engine.handle([record(offset, event(name, service(name)))])
        offset += 1
    await eventually(lambda: engine.writer.in_flight == 2, within_s=5)
    await engine.handle([record(offset, event("lone", service("lone")))])
    offset += 1
    # The burst tenants keep changing: the two in flight come back dirty, the waiting ones
    # coalesce their new events into the write they wait for.
    for round_ in range(3):
        for name in burst:
            host = f"h{round_}.{name}.example.com"
            await engine.handle([record(offset, event(name, ingress(name, f"i{round_}", host)))])
            offset += 1
    store.gate.set()
    assert await engine.settle(timeout_s=10)

    order = [w.tenant for w in store.writes]
    lone_at = order.index("lone")
    seconds = [i for i, name in enumerate(order) if order[:i].count(name) == 1]
    assert seconds, "the two tenants written first come back for a second write"
    assert lone_at < min(seconds), "the lone change is served before any tenant's second write"
    assert lone_at <= len(burst), "FIFO: after the tenants that were waiting before it"
    # Waiting tenants coalesced: at most two writes each, all of their changes stored.
    assert all(order.count(name) <= 2 for name in burst)
    for name in burst:
        assert f"{name}/scope/h2.{name}.example.com" in store.names(name)
    assert "lone" in store.tenants


async def test_a_lone_change_with_a_free_slot_is_written_at_once() -> None:
    store = FakeStore()
    engine = make(store, bound=2)
    await engine.assign([TP])
    store.gate.clear()
    await engine.handle([record(0, event("a", service("a")))])
    await eventually(lambda: engine.writer.in_flight == 1, within_s=5)
    assert engine.writer.waiting == 0
    store.gate.set()
    assert await engine.settle(timeout_s=5)
    assert [w.tenant for w in store.writes] == ["a"]


async def test_a_tenant_in_retry_backoff_holds_no_write_slot() -> None:
    store = FakeStore()
    engine = Engine(
        store=store,
        partitions=FakePartitions(),
        config=WriterConfig(retry_initial_s=0.2, retry_max_s=0.2, max_concurrent_writes=1),
    )
    await engine.assign([TP])
    store.fail.append(ConnectionError("redis down"))
    await engine.handle([record(0, event("a", service("a")))])
    await engine.handle([record(1, event("b", service("b")))])
    # a failed and backs off (0.2 s); b takes the only slot meanwhile
    first = await eventually(lambda: [w.tenant for w in store.writes], within_s=5)
    assert first == ["b"]
    assert await engine.settle(timeout_s=5)
    assert [w.tenant for w in store.writes] == ["b", "a"]


def test_the_write_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_concurrent_writes"):
        WriterConfig(max_concurrent_writes=0)


class CountingLoader(StoreTenantLoader):
    """Records the batch sizes and the batches in flight at once."""

    def __init__(self, store: FakeStore) -> None:
        super().__init__(store)
        self.batches: list[int] = []
        self.in_flight = 0
        self.peak = 0

    async def load_tenants(self, tenants: Sequence[str]) -> list[TenantLoad]:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(0.001)
            self.batches.append(len(tenants))
            return await super().load_tenants(tenants)
        finally:
            self.in_flight -= 1


async def test_assignment_loads_tenants_in_batches_and_partitions_concurrently() -> None:
    store, partitions = FakeStore(), FakePartitions()
    per_partition = LOAD_BATCH * 2 + 7
    tps = [(TOPIC, p) for p in range(3)]
    for tp in tps:
        for i in range(per_partition):
            name = f"p{tp[1]}-{tenant(i)}"
            await partitions.add_tenant(tp[0], tp[1], name)
            await store.write_version(
                name,
                [],
                [],
                offset=KafkaOffset(topic=TOPIC, partition=tp[1], offset=i + 1),
                expected_version=0,
                trace_fields={},
                inputs=InputChanges(upserts={("Service", name, "web"): service(name)}),
            )
    loader = CountingLoader(store)
    engine = Engine(store=store, partitions=partitions, config=WriterConfig(), loader=loader)
    assert await engine.assign(tps) == dict.fromkeys(tps)
    assert engine.owned == frozenset(tps)
    assert sorted(loader.batches) == sorted([LOAD_BATCH, LOAD_BATCH, 7] * 3)
    assert 1 < loader.peak <= LOAD_PIPELINES
    slot = engine.slot(f"p2-{tenant(LOAD_BATCH + 3)}")
    assert slot is not None
    assert slot.tp == (TOPIC, 2)
    assert slot.registered
    assert slot.input_offset == LOAD_BATCH + 4
    # Assigning again loads nothing.
    loader.batches.clear()
    assert await engine.assign(tps[:1]) == {tps[0]: None}
    assert loader.batches == []


class FailingLoader(StoreTenantLoader):
    async def load_tenants(self, tenants: Sequence[str]) -> list[TenantLoad]:
        if any(t.startswith("p1-") for t in tenants):
            raise ConnectionError("redis down")
        return await super().load_tenants(tenants)


async def test_a_failed_partition_load_fails_the_assignment_and_keeps_nothing() -> None:
    store, partitions = FakeStore(), FakePartitions()
    for p in range(2):
        await partitions.add_tenant(TOPIC, p, f"p{p}-x")
    engine = Engine(
        store=store,
        partitions=partitions,
        config=WriterConfig(retry_initial_s=0.001, retry_max_s=0.001),
        loader=FailingLoader(store),
    )
    with pytest.raises(ConnectionError):
        await engine.assign([(TOPIC, 0), (TOPIC, 1)])
    assert engine.owned == frozenset()
    assert engine.slot("p0-x") is None
