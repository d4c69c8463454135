"""Fencing by Kafka position against the stack's Redis and Kafka (issue #15 point 3).

- The write script refuses a version from an older offset of the same partition than the
  stored one (an equal offset passes: a re-translation), and reports it as fenced.
- A rebalance during a flood, as the one reported: translator A writes the flooding tenant
  and cannot commit (its group moved on); its last write is still in flight when it is
  expelled and B takes the partition over, replaying from the old committed position with the
  tenant loaded from A's previous write. A's write lands first (a later offset), then B's
  from an older offset: B must be fenced and reload the tenant, never write its older state
  on top (which removed, then re-added, 646 hosts in the report). Read from the change
  stream: no version ever goes back in offset, nothing is ever removed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio as aioredis

from ripple_common.resources import Resource
from ripple_translator.consumer import KafkaEventSource
from ripple_translator.engine import Engine, Record
from ripple_translator.partition_state import TenantObjects
from ripple_translator.service import consume
from ripple_translator.slot import TopicPartition
from ripple_translator.store import (
    ChangeEntry,
    KafkaOffset,
    KeyLayout,
    PositionFencedError,
    RedisHostRegistry,
    RedisTenantStore,
    VersionConflictError,
)
from ripple_translator.store.inputs import InputChanges, RedisPartitionStore
from ripple_translator.store.loader import RedisTenantLoader
from ripple_translator.store.model import ResourceKey
from ripple_translator.translate import TranslateOptions
from ripple_translator.writer import WriterConfig, plan_write
from tests.conftest import StackEnv
from tests.integration.translator_service.support import (
    A,
    class_envelope,
    eventually,
    names,
    produce,
)
from tests.unit.translator_service.support import event, ingress, ingress_class, service

FLOOD = 200
TOPIC = "ripple.events"


async def test_the_write_script_refuses_an_older_offset_of_the_same_partition(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    store = RedisTenantStore(redis_client, layout=KeyLayout(prefix=prefix))
    up = await _any_resources()
    at = KafkaOffset(topic=TOPIC, partition=3, offset=100)
    assert await store.write_version("t", up[:1], (), offset=at, expected_version=0, **_T) == 1

    older = KafkaOffset(topic=TOPIC, partition=3, offset=99)
    with pytest.raises(PositionFencedError) as fenced:
        await store.write_version("t", up[1:2], (), offset=older, expected_version=1, **_T)
    assert (fenced.value.offset, fenced.value.stored_offset, fenced.value.actual) == (99, 100, 1)
    assert isinstance(fenced.value, VersionConflictError)  # callers of the old contract
    # An empty diff from an older position is fenced too (the writer must reload).
    with pytest.raises(PositionFencedError):
        await store.write_version("t", (), (), offset=older, expected_version=1, **_T)

    # Nothing was written; the same offset (a re-translation) and later ones pass; another
    # partition (the topic re-partitioned) is not compared.
    checkpoint = await store.load_checkpoint("t")
    assert (checkpoint.version, checkpoint.offset) == (1, at)
    assert await store.write_version("t", up[1:2], (), offset=at, expected_version=1, **_T) == 2
    other = KafkaOffset(topic=TOPIC, partition=4, offset=1)
    assert await store.write_version("t", up[2:3], (), offset=other, expected_version=2, **_T) == 3


_T: dict[str, Any] = {"trace_fields": {}}


async def _any_resources() -> list[Resource]:
    """Three scope resources of tenant t (translated, so they are real ones)."""
    objects = TenantObjects("t")
    for env in [event("t", service("t"))] + [
        event("t", ingress("t", f"w{i}", f"h{i}.example.com")) for i in range(3)
    ]:
        objects.apply(env)
    plan = plan_write(
        objects,
        changed=(),
        classes=(ingress_class(),),
        resource_versions={},
        options=TranslateOptions(),
    )
    scopes = [r for r in plan.translation.resources if "/scope/" in r.name]
    assert len(scopes) >= 3
    return scopes


@dataclass
class Written:
    """Every version written, in order: (source, tenant, version, offset)."""

    log: list[tuple[str, str, int, int]] = field(default_factory=list)


class GatedStore(RedisTenantStore):
    """A translator's store: records each version written and can hold one write before it
    reaches Redis (`hold`: a predicate of the offset and the offsets written before)."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        layout: KeyLayout,
        name: str,
        written: Written,
    ) -> None:
        super().__init__(client, layout=layout)
        self.name = name
        self.written = written
        self.hold_from: int | None = None  # hold the first write of A from past this offset
        self.hold_first = False  # hold the first write that changes something (B)
        self.waiting = asyncio.Event()
        self.release = asyncio.Event()
        self.done = asyncio.Event()
        self.held: int | None = None
        self._ours: list[int] = []

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
        hold = self.held is None and (
            (self.hold_first and bool(upserts or removals))
            or (
                self.hold_from is not None
                and bool(self._ours)
                and offset.offset > self._ours[-1] + self.hold_from
            )
        )
        if hold:
            self.held = offset.offset
            self.waiting.set()
            await self.release.wait()
        try:
            version = await super().write_version(
                tenant,
                upserts,
                removals,
                offset=offset,
                expected_version=expected_version,
                trace_fields=trace_fields,
                inputs=inputs,
            )
        finally:
            if hold:
                self.done.set()
        self._ours.append(offset.offset)
        if upserts or removals:
            self.written.log.append((self.name, tenant, version, offset.offset))
        return version


class Expelled:
    """A's rebalance handler: A was expelled from the group (a missed poll interval, say) and
    learns of it late, so its revocation neither waits for its writes nor commits (the commit
    would fail: the group moved on)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def assign(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        return await self._engine.assign(tps)

    async def revoke(
        self, tps: Sequence[TopicPartition], *, timeout_s: float
    ) -> dict[TopicPartition, int]:
        return {}


def translator(client: aioredis.Redis, layout: KeyLayout, store: RedisTenantStore) -> Engine:
    return Engine(
        store=store,
        partitions=RedisPartitionStore(client, layout=layout),
        config=WriterConfig(retry_initial_s=0.05, retry_max_s=0.2, pace_factor=0),
        loader=RedisTenantLoader(client, layout=layout),
        hosts=RedisHostRegistry(client, layout=layout),
    )


class ExpelledA:
    """Translator A: takes 50 records per poll and never commits (its commits fail); its
    write from 20 or more records past its previous one is held (`store.release`)."""

    def __init__(self, client: aioredis.Redis, layout: KeyLayout, written: Written) -> None:
        self.store = GatedStore(client, layout=layout, name="A", written=written)
        self.store.hold_from = 20
        self.engine = translator(client, layout, self.store)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._source: KafkaEventSource | None = None

    async def start(self, bootstrap: str, topic: str, group: str) -> None:
        self._source = KafkaEventSource(
            bootstrap=bootstrap, topic=topic, group_id=group, handler=Expelled(self.engine)
        )
        await self._source.start()
        self._task = asyncio.create_task(self._run(self._source))

    async def _run(self, source: KafkaEventSource) -> None:
        while not self._stop.is_set():
            records = await source.fetch(timeout_ms=50, max_records=50)
            if records:
                await self.engine.handle(records)
                await asyncio.sleep(0.02)  # the flood arrives over time: writes run between

    async def leave(self) -> None:
        """Expelled with its write in flight: it leaves the group, its write runs on."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._source is not None:
            await self._source.stop()
            self._source = None

    async def close(self) -> None:
        self.store.release.set()
        await self.leave()
        await self.engine.drain(timeout_s=5)


class Slow:
    """B's Kafka source: 10 records per 0.1 s (B replays behind A's position)."""

    def __init__(self, source: KafkaEventSource) -> None:
        self._source = source

    async def fetch(self, *, timeout_ms: int, max_records: int) -> list[Record]:
        records = await self._source.fetch(timeout_ms=timeout_ms, max_records=max_records)
        if records:
            await asyncio.sleep(0.1)
        return records

    async def commit(self, positions: Mapping[TopicPartition, int]) -> None:
        await self._source.commit(positions)


class TakingOverB:
    """Translator B: takes the partitions over, replaying from the start (nothing was
    committed) slowly; its first write that changes something is held (`store.release`)."""

    def __init__(self, client: aioredis.Redis, layout: KeyLayout, written: Written) -> None:
        self.store = GatedStore(client, layout=layout, name="B", written=written)
        self.store.hold_first = True
        self.engine = translator(client, layout, self.store)
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._source: KafkaEventSource | None = None

    async def start(self, bootstrap: str, topic: str, group: str) -> None:
        self._source = KafkaEventSource(
            bootstrap=bootstrap, topic=topic, group_id=group, handler=self.engine
        )
        await self._source.start()
        self._task = asyncio.create_task(
            consume(
                self.engine,
                Slow(self._source),
                stopping=self._stopping,
                poll_ms=50,
                max_records=10,
                drain_timeout_s=10,
            )
        )

    async def close(self) -> None:
        self.store.release.set()
        self._stopping.set()
        if self._task is not None:
            await self._task
        if self._source is not None:
            await self._source.stop()


async def changes_of(client: aioredis.Redis, layout: KeyLayout, tenant: str) -> list[ChangeEntry]:
    raw = await client.xrange(layout.changes)
    entries = [ChangeEntry.decode(fields) for _, fields in raw or [] if fields is not None]
    return [e for e in entries if e.tenant == tenant]


async def test_a_rebalance_during_a_flood_never_writes_an_older_position(
    stack: StackEnv, redis_client: aioredis.Redis, prefix: str, topic: str
) -> None:
    bootstrap = stack["RIPPLE_KAFKA_BOOTSTRAP"]
    group = f"it-fence-{uuid.uuid4().hex[:8]}"
    layout = KeyLayout(prefix=prefix)
    written = Written()
    hosts = {f"h{i:04d}.flood.example.com" for i in range(FLOOD)}
    await produce(
        bootstrap,
        topic,
        [class_envelope(), event(A, service(A))]
        + [event(A, ingress(A, f"w{i:04d}", f"h{i:04d}.flood.example.com")) for i in range(FLOOD)],
    )
    a = ExpelledA(redis_client, layout, written)
    b = TakingOverB(redis_client, layout, written)
    try:
        await a.start(bootstrap, topic, group)
        await asyncio.wait_for(a.store.waiting.wait(), timeout=60)
        await a.leave()
        await b.start(bootstrap, topic, group)
        await asyncio.wait_for(b.store.waiting.wait(), timeout=60)
        assert a.store.held is not None
        assert b.store.held is not None
        assert b.store.held < a.store.held, "the scenario needs B to be behind A"
        # A's write lands first, then B's from the older position.
        a.store.release.set()
        await asyncio.wait_for(a.store.done.wait(), timeout=30)
        b.store.release.set()

        async def all_served() -> bool:
            served = names(await b.store.load_checkpoint(A))
            return {f"{A}/scope/{h}" for h in hosts} <= served

        await eventually(all_served, timeout_s=60)
        assert await b.engine.settle(timeout_s=30)
    finally:
        await a.close()
        await b.close()

    ours = sorted((v, o, who) for who, t, v, o in written.log if t == A)
    assert ours, "nothing written"
    offsets = [o for _, o, _ in ours]
    assert offsets == sorted(offsets), f"a version went back in offset: {ours}"
    assert b.engine.stats.fenced >= 1, "B's write from the older position was not fenced"
    entries = await changes_of(redis_client, layout, A)
    removed = [n for e in entries for ns in e.removals.values() for n in ns]
    assert removed == [], f"{len(removed)} resources removed (and re-added) during the flood"
    registry = RedisHostRegistry(redis_client, layout=layout)
    assert set((await registry.owners(hosts)).values()) == {A}
