"""Per-tenant fairness of the translator's writer (issue #15 point 1), with fake stores:

- the scheduling policy (pure): start-time fair queueing puts a tenant whose writes are
  expensive behind tenants whose writes are cheap, a tenant that was idle starts at the
  virtual now (never behind another's backlog), ties are first come; pacing;
- the writer: with every write slot taken by flooding tenants, a neighbour's single change
  is written before the flooders' next writes (a FIFO queue put it behind all of them);
- a big tenant's translation runs off the event loop (the loop keeps running during it);
- host claims are incremental: a write claims only the hosts whose claim changed;
- a fenced write reloads the tenant and writes nothing older than the stored version.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence

import pytest

from ripple_common.resources import Resource
from ripple_translator.engine import Engine
from ripple_translator.hosts import ClaimOutcome, HostState
from ripple_translator.scheduling import FairQueue, WriteSlots, pace_after
from ripple_translator.store import KafkaOffset, PositionFencedError
from ripple_translator.store.inputs import InputChanges, InputCheckpoint
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

TP = (TOPIC, 0)

# -- the policy ------------------------------------------------------------------------------


def test_a_tenant_with_expensive_writes_waits_behind_cheap_ones() -> None:
    q = FairQueue()
    q.push("flood")
    assert q.pop() == "flood"
    q.charge("flood", 2.0)  # its write took 2 s
    q.push("flood")  # and it is dirty again at once
    for name in ("a", "b", "c"):
        q.push(name)
    order = [q.pop() for _ in range(4)]
    assert order == ["a", "b", "c", "flood"]


def test_an_idle_tenant_starts_at_the_virtual_now_not_behind_a_backlog() -> None:
    q = FairQueue()
    for round_ in range(50):  # two tenants write on and on
        for name in ("x", "y"):
            q.push(name)
        for _ in range(2):
            name = q.pop()
            q.charge(name, 0.5 if name == "x" else 0.1)
        assert len(q) == 0, round_
    q.push("x")
    q.push("y")
    q.push("newcomer")
    order = [q.pop() for _ in range(3)]
    assert order.index("newcomer") < order.index("x"), order


def test_equal_starts_are_first_come_first_served_and_a_tenant_is_queued_once() -> None:
    q = FairQueue()
    for name in ("b", "a", "c"):
        q.push(name)
    with pytest.raises(ValueError, match="already queued"):
        q.push("a")
    q.withdraw("a")
    assert "a" not in q
    assert [q.pop(), q.pop()] == ["b", "c"]
    with pytest.raises(IndexError):
        q.pop()
    with pytest.raises(ValueError, match="negative"):
        q.charge("b", -1)


def test_tenants_gone_idle_cost_no_memory() -> None:
    q = FairQueue()
    for i in range(10_000):  # tenants that wrote once
        q.push(f"t{i}")
        q.charge(q.pop(), 0.001)
    for _ in range(1100):  # one tenant writes on: the virtual time passes theirs
        q.push("x")
        q.charge(q.pop(), 0.1)
    assert len(q._finish) < 200  # the bound is the point


def test_pacing_after_an_expensive_write_only() -> None:
    assert pace_after(0.01, factor=1.0, min_cost_s=0.05) == 0.0
    assert pace_after(2.0, factor=1.0, min_cost_s=0.05) == 2.0
    assert pace_after(2.0, factor=0.5, min_cost_s=0.05) == 1.0
    assert pace_after(2.0, factor=0.0, min_cost_s=0.05) == 0.0
    with pytest.raises(ValueError, match="negative"):
        pace_after(1.0, factor=-1, min_cost_s=0)


async def test_write_slots_grant_in_fair_order_and_survive_a_cancelled_waiter() -> None:
    slots = WriteSlots(1)
    await slots.acquire("flood")
    order: list[str] = []

    async def take(name: str) -> None:
        await slots.acquire(name)
        order.append(name)
        slots.release(name, cost=0.001)

    cancelled = asyncio.create_task(take("gone"))
    waiters = [asyncio.create_task(take(n)) for n in ("a", "b")]
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    slots.release("flood", cost=5.0)
    flood_again = asyncio.create_task(take("flood"))
    await asyncio.gather(*waiters, flood_again)
    assert order == ["a", "b", "flood"]


# -- the writer ------------------------------------------------------------------------------


class SlowStore(FakeStore):
    """Writes of the tenants named `slow` take `delay_s` (an expensive re-translation)."""

    def __init__(self, slow: Iterable[str], delay_s: float) -> None:
        super().__init__()
        self.slow = set(slow)
        self.delay_s = delay_s

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
        if tenant in self.slow:
            await asyncio.sleep(self.delay_s)
        return await super().write_version(
            tenant,
            upserts,
            removals,
            offset=offset,
            expected_version=expected_version,
            trace_fields=trace_fields,
            inputs=inputs,
        )


async def test_a_neighbours_single_change_is_written_before_the_floods_next_writes() -> None:
    floods = [f"flood{i}" for i in range(4)]
    store = SlowStore(floods, delay_s=0.03)
    engine = Engine(
        store=store,
        partitions=FakePartitions(),
        config=WriterConfig(max_concurrent_writes=1, pace_factor=0, retry_initial_s=0.01),
    )
    await engine.assign([TP])
    offset = 0
    await engine.handle([record(offset, cluster(ingress_class()))])

    async def change(name: str, i: int) -> None:
        nonlocal offset
        offset += 1
        host = f"h{i}.{name}.example.com"
        await engine.handle([record(offset, event(name, ingress(name, f"i{i}", host)))])

    # The flooding tenants change again and again: each write of theirs takes 30 ms.
    for i in range(3):
        for name in floods:
            await change(name, i)
        await asyncio.sleep(0.04)
    for name in floods:  # all of them dirty again, waiting for the one slot
        await change(name, 99)
    await change("neighbour", 0)
    assert await engine.settle(timeout_s=10)

    order = [w.tenant for w in store.writes]
    after = order[order.index("neighbour") + 1 :]
    # Its write came before the flooders' queued writes (FIFO: after all four of them).
    assert sum(1 for t in after if t in floods) >= 3, order


async def test_a_big_tenants_translation_runs_off_the_event_loop() -> None:
    ticks = await _ticks_during_a_big_write(offload_objects=100)
    inline = await _ticks_during_a_big_write(offload_objects=1_000_000)
    assert inline <= 2, inline  # translated on the loop: nothing else ran meanwhile
    assert ticks >= 5, ticks


async def _ticks_during_a_big_write(*, offload_objects: int) -> int:
    store = FakeStore()
    engine = Engine(
        store=store,
        partitions=FakePartitions(),
        config=WriterConfig(offload_objects=offload_objects, pace_factor=0),
    )
    await engine.assign([TP])
    records = [record(0, cluster(ingress_class())), record(1, event("big", service("big")))]
    records += [
        record(2 + i, event("big", ingress("big", f"i{i}", f"h{i}.big.example.com")))
        for i in range(1500)
    ]
    ticks = 0
    writing = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        await writing.wait()
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    writing.set()
    await asyncio.sleep(0)
    started = time.perf_counter()
    await engine.handle(records)
    assert await engine.settle(timeout_s=60)
    task.cancel()
    assert store.writes, "nothing written"
    assert time.perf_counter() - started > 0.05, "the write was too quick to tell"
    return ticks


async def test_the_check_after_an_assignment_translates_a_big_tenant_off_the_event_loop() -> None:
    ticks = await _ticks_during_a_takeover(offload_objects=100)
    inline = await _ticks_during_a_takeover(offload_objects=1_000_000)
    assert inline <= 2, inline  # translated on the loop: nothing else ran meanwhile
    assert ticks >= 5, ticks


async def _ticks_during_a_takeover(*, offload_objects: int) -> int:
    """A big tenant written by one engine is taken over by another, which translates it again
    after the assignment (`retranslate_outdated`): the event loop's ticks meanwhile."""
    store, partitions = FakeStore(), FakePartitions()
    config = WriterConfig(offload_objects=offload_objects, pace_factor=0)
    first = Engine(store=store, partitions=partitions, config=config)
    await first.assign([TP])
    records = [record(0, cluster(ingress_class())), record(1, event("big", service("big")))]
    records += [
        record(2 + i, event("big", ingress("big", f"i{i}", f"h{i}.big.example.com")))
        for i in range(1500)
    ]
    await first.handle(records)
    assert await first.settle(timeout_s=60)
    await first.drain(timeout_s=5)
    second = Engine(store=store, partitions=partitions, config=config)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    started = time.perf_counter()
    await second.assign([TP])
    assert await second.settle(timeout_s=60)
    task.cancel()
    assert time.perf_counter() - started > 0.05, "the check was too quick to tell"
    return ticks


class CountingClaims(FakeStore):
    """Counts the hosts each claim asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.claimed: list[list[str]] = []

    async def claim(
        self,
        tenant: str,
        hosts: Iterable[str],
        *,
        record: Mapping[str, HostState] | None = None,
    ) -> dict[str, ClaimOutcome]:
        wanted = sorted(set(hosts))
        self.claimed.append(wanted)
        return await super().claim(tenant, wanted, record=record)


async def test_a_write_claims_only_the_hosts_whose_claim_changed() -> None:
    store = CountingClaims()
    engine = Engine(store=store, partitions=FakePartitions(), hosts=store)
    await engine.assign([TP])
    await engine.handle([record(0, cluster(ingress_class())), record(1, event("t", service("t")))])
    for i in range(5):
        await engine.handle([record(2 + i, event("t", ingress("t", f"i{i}", f"h{i}.t.io")))])
        assert await engine.settle(timeout_s=5)
    # Each write claimed its new host only (the first write: the first host).
    assert [len(c) for c in store.claimed if c] == [1, 1, 1, 1, 1], store.claimed
    checkpoint = await store.load_checkpoint("t")
    assert {n for _, n in checkpoint.resource_versions} >= {f"t/scope/h{i}.t.io" for i in range(5)}
    # A notice makes every outcome stale: all are claimed again.
    assert engine.wake([]) == 0
    slot = engine.slot("t")
    assert slot is not None
    slot.hosts = slot.hosts.made_stale()
    await engine.handle([record(7, event("t", ingress("t", "i9", "h9.t.io")))])
    assert await engine.settle(timeout_s=5)
    assert len(store.claimed[-1]) == 6


class FencingStore(FakeStore):
    """A store whose tenant `t` was written by another translator at a later offset."""

    def __init__(self, stored_offset: int) -> None:
        super().__init__()
        self.stored_offset = stored_offset
        self.fenced = 0

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
        if offset.offset < self.stored_offset:
            self.fenced += 1
            raise PositionFencedError(
                tenant,
                offset=offset.offset,
                stored_offset=self.stored_offset,
                expected=expected_version,
                actual=expected_version + 1,
            )
        return await super().write_version(
            tenant,
            upserts,
            removals,
            offset=offset,
            expected_version=expected_version,
            trace_fields=trace_fields,
            inputs=inputs,
        )


class NewerInputs(FencingStore):
    """Once `written` is set, the stored inputs of `t` cover offset 50 (another translator
    wrote them)."""

    def __init__(self, objects: Mapping[tuple[str, str, str], object]) -> None:
        super().__init__(stored_offset=50)
        self.newer = dict(objects)
        self.written = False

    async def load_inputs(self, tenant: str) -> InputCheckpoint:
        if tenant != "t" or not self.written:
            return await super().load_inputs(tenant)
        return InputCheckpoint(
            tenant=tenant,
            offset=KafkaOffset(topic=TOPIC, partition=0, offset=50),
            objects=self.newer,  # type: ignore[arg-type]
        )


async def test_a_fenced_write_reloads_the_tenant_and_writes_nothing_older() -> None:
    newer = {
        ("Service", "t", "web"): service("t"),
        ("Ingress", "t", "late"): ingress("t", "late", "late.t.io"),
    }
    store = NewerInputs(newer)
    engine = Engine(
        store=store, partitions=FakePartitions(), config=WriterConfig(retry_initial_s=0.01)
    )
    await engine.assign([TP])
    await engine.handle([record(0, cluster(ingress_class()))])
    await engine.handle([record(10, event("t", ingress("t", "mine", "mine.t.io")))])
    store.written = True  # before the write runs
    assert await engine.settle(timeout_s=5)
    assert store.fenced == 1, "fenced once, not retried blindly"
    slot = engine.slot("t")
    assert slot is not None
    assert slot.input_offset == 50
    assert set(slot.objects.objects) == set(newer), "the stored inputs replaced the memory"
    assert not slot.dirty
    assert store.writes == []
    # Events below the stored position are in the stored inputs: skipped; later ones apply.
    await engine.handle([record(20, event("t", ingress("t", "old", "old.t.io")))])
    assert await engine.settle(timeout_s=5)
    assert store.writes == []
    await engine.handle([record(60, event("t", ingress("t", "new", "new.t.io")))])
    assert await engine.settle(timeout_s=5)
    assert [w.offset.offset for w in store.writes] == [61]
    assert await engine.checkpoint() == {TP: 61}
