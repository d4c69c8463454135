"""Kafka adapter (aiokafka): a consumer-group member on the events topic with manual commits.

Offsets are committed only as the engine reports them durable (`Engine.checkpoint`): never
automatically. An assigned partition is paused while its tenants load in the background (the
assignment callback returns at once: aiokafka sends no heartbeat while it runs), none of its
records is handed out before (it seeks back to a re-list still in progress), and on
revocation the listener cancels a load still under way, lets the
partition's writes finish and commits their positions before the partition moves on, so a
revoked partition stops writing before its next owner starts (and the store fences a write
from an older position than the stored one: `store.PositionFencedError`).

A stable group (docs/deploy.md "The translators' consumer group"): static membership when
`GroupTuning.instance_id` is set (KIP-345: a member restarted with the same id within the
session timeout gets its partitions back with no rebalance of the others), the session,
heartbeat and poll intervals of `GroupTuning`, and the round-robin assignor, whose join
metadata never changes: a static member rejoining with the same metadata (as aiokafka does
whenever it sees the topic's metadata change) gets its assignment back without a rebalance.
The sticky assignor puts the member's last assignment in its join metadata, so every such
rejoin was "updated metadata" to the broker and rebalanced the whole group; two members doing
it in turn kept a fresh group rebalancing for minutes. aiokafka has no cooperative
(incremental) rebalance protocol: a rebalance revokes all partitions of every member and
assigns them again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka import TopicPartition as KafkaTopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.errors import CommitFailedError, KafkaError

from ripple_common.kafka_security import PLAINTEXT, KafkaSecurity, client_kwargs
from ripple_common.kafka_sizes import consumer_size_kwargs
from ripple_translator.engine import Record
from ripple_translator.ports import RebalanceHandler
from ripple_translator.slot import TopicPartition

log = structlog.get_logger("ripple_translator.consumer")


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupTuning:
    """How the member behaves in its consumer group (see the module docstring)."""

    instance_id: str | None = None  # static membership; None: dynamic
    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 1000
    max_poll_interval_ms: int = 30000
    rebalance_timeout_ms: int = 60_000

    def __post_init__(self) -> None:
        if self.instance_id is not None and not self.instance_id.strip():
            raise ValueError("a group instance id cannot be blank (unset it instead)")
        if self.heartbeat_interval_ms * 3 > self.session_timeout_ms:
            raise ValueError(
                f"heartbeat_interval_ms ({self.heartbeat_interval_ms}) must be at most a third "
                f"of session_timeout_ms ({self.session_timeout_ms})"
            )
        for name in ("max_poll_interval_ms", "rebalance_timeout_ms"):
            if getattr(self, name) < self.session_timeout_ms:
                raise ValueError(
                    f"{name} ({getattr(self, name)}) must not be below session_timeout_ms "
                    f"({self.session_timeout_ms})"
                )


class AssignmentLoadError(RuntimeError):
    """The assigned partitions' state or tenants could not be loaded."""


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, source: KafkaEventSource) -> None:
        self._source = source

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._source.on_revoked([(tp.topic, tp.partition) for tp in revoked])

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self._source.on_assigned([(tp.topic, tp.partition) for tp in assigned])


class KafkaEventSource:
    """Consumes `topic` in `group_id`; implements the service's `EventSource`."""

    def __init__(
        self,
        *,
        bootstrap: str,
        topic: str,
        group_id: str,
        handler: RebalanceHandler,
        revoke_timeout_s: float = 10.0,
        client_id: str = "ripple-translator",
        security: KafkaSecurity = PLAINTEXT,
        tuning: GroupTuning | None = None,
    ) -> None:
        tuning = tuning or GroupTuning()
        self._topic = topic
        self._handler = handler
        self._revoke_timeout_s = revoke_timeout_s
        # Partitions whose tenants are loaded: only their records are handed out.
        self._ready: set[TopicPartition] = set()
        # Set once the first assignment (possibly empty) is loaded: readiness.
        self.joined = False
        # Consumer lag (`lag()`): per assigned partition, the offset committed here, else
        # the one consumption started from (the group's committed offset at assignment).
        self._committed: dict[TopicPartition, int] = {}
        self._start: dict[TopicPartition, int] = {}
        # Assignments received (the first included) and revocations: a stable group has one
        # assignment per member start and no revocation while its membership does not change.
        self.assignments = 0
        self.revocations = 0
        # The assignment being loaded (`on_assigned`), if any.
        self._loading: asyncio.Task[None] | None = None
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group_id,
            group_instance_id=tuning.instance_id,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            partition_assignment_strategy=(RoundRobinPartitionAssignor,),
            session_timeout_ms=tuning.session_timeout_ms,
            heartbeat_interval_ms=tuning.heartbeat_interval_ms,
            max_poll_interval_ms=tuning.max_poll_interval_ms,
            # A member rejoins once its revocation callback (its writes finishing) returned;
            # aiokafka's default wait for it is the session timeout.
            rebalance_timeout_ms=tuning.rebalance_timeout_ms,
            **consumer_size_kwargs(),
            **client_kwargs(security),
        )

    async def start(self) -> None:
        self._consumer.subscribe([self._topic], listener=_Listener(self))
        await self._consumer.start()

    async def stop(self) -> None:
        if self._loading is not None:
            self._loading.cancel()
            await asyncio.gather(self._loading, return_exceptions=True)
        await self._consumer.stop()

    async def fetch(self, *, timeout_ms: int, max_records: int) -> list[Record]:
        self._loading_failed()
        batch = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        out: list[Record] = []
        for tp, messages in batch.items():
            if not messages:
                continue
            if (tp.topic, tp.partition) not in self._ready:
                # Fetched while the partition's assignment is still loading (the listener runs
                # beside getmany): hand nothing out and fetch it again once loaded.
                if tp in self._consumer.assignment():
                    self._consumer.seek(tp, messages[0].offset)
                continue
            for m in messages:
                out.append(
                    Record(
                        topic=tp.topic,
                        partition=tp.partition,
                        offset=m.offset,
                        value=m.value or b"",
                        headers=tuple(m.headers or ()),
                        timestamp_ms=m.timestamp if m.timestamp >= 0 else None,
                    )
                )
            self._start.setdefault((tp.topic, tp.partition), messages[0].offset)
        await self._positions()
        return out

    async def _positions(self) -> None:
        """Where consumption starts on each assigned partition not handed a record yet (its
        lag's base). Never waits: a partition without a valid position yet is left for the
        next fetch."""
        for tp in self._consumer.assignment():
            if (tp.topic, tp.partition) in self._start:
                continue
            try:
                position = await asyncio.wait_for(self._consumer.position(tp), timeout=0.01)
            except (TimeoutError, KafkaError):
                continue
            self._start[tp.topic, tp.partition] = position

    def lag(self) -> dict[TopicPartition, int]:
        """Records of each assigned partition not yet durable (the group's lag): the
        highwater mark of the last fetch minus the offset committed here, else the offset
        consumption started from; partitions whose ends are not known yet are left out."""
        out: dict[TopicPartition, int] = {}
        for tp in self._consumer.assignment():
            key = (tp.topic, tp.partition)
            high = self._consumer.highwater(tp)
            base = self._committed.get(key, self._start.get(key))
            if high is not None and base is not None:
                out[key] = max(high - base, 0)
        return out

    async def commit(self, positions: Mapping[TopicPartition, int]) -> None:
        if not positions:
            return
        offsets = {KafkaTopicPartition(t, p): o for (t, p), o in positions.items()}
        self._committed.update(positions)  # before the call: a failed commit is retried
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # The group moved on; the next owner replays from the last commit (idempotent).
            log.warning("kafka.commit_failed", error=repr(exc), positions=_show(positions))
            return
        log.debug("kafka.committed", positions=_show(positions))

    async def on_assigned(self, tps: Sequence[TopicPartition]) -> None:
        """Start loading the partitions and return: aiokafka sends no heartbeat while this
        callback runs, so a member loading tens of thousands of tenants in it outlived its
        session, was expelled, and the group handed every partition from member to member for
        ever. The partitions stay paused (and `fetch` hands out none of their records) until
        loaded."""
        self.assignments += 1
        log.info("kafka.assigned", partitions=sorted(p for _, p in tps))
        self._ready.difference_update(tps)
        self._forget_positions(tps)
        self._consumer.pause(*(KafkaTopicPartition(t, p) for t, p in tps))
        self._loading = asyncio.create_task(self._load(list(tps)), name="load assignment")

    async def _load(self, tps: list[TopicPartition]) -> None:
        rewind = await self._handler.assign(tps)
        for (topic, partition), offset in rewind.items():
            if offset is None:
                continue
            tp = KafkaTopicPartition(topic, partition)
            committed = await self._consumer.committed(tp)
            if committed is not None and offset < committed:
                log.info("kafka.rewind", partition=partition, committed=committed, to=offset)
                self._consumer.seek(tp, offset)
        self._ready.update(tps)
        self._consumer.resume(*(KafkaTopicPartition(t, p) for t, p in tps))
        self.joined = True
        log.info("kafka.loaded", partitions=sorted(p for _, p in tps))

    def _loading_failed(self) -> None:
        """Raise the assignment load's error (the service stops; a restart resumes from the
        last commit)."""
        task = self._loading
        if task is not None and task.done() and not task.cancelled() and task.exception():
            raise AssignmentLoadError("loading the assigned partitions failed") from (
                task.exception()
            )

    async def on_revoked(self, tps: Sequence[TopicPartition]) -> None:
        self.revocations += 1
        log.info("kafka.revoked", partitions=sorted(p for _, p in tps))
        loading, self._loading = self._loading, None
        if loading is not None and not loading.done():
            loading.cancel()  # the engine registers a partition only once all are loaded
            await asyncio.gather(loading, return_exceptions=True)
        self._ready.difference_update(tps)
        positions = await self._handler.revoke(tps, timeout_s=self._revoke_timeout_s)
        await self.commit(positions)
        self._forget_positions(tps)

    def _forget_positions(self, tps: Sequence[TopicPartition]) -> None:
        for tp in tps:
            self._committed.pop(tp, None)
            self._start.pop(tp, None)


def _show(positions: Mapping[TopicPartition, int]) -> dict[str, int]:
    return {f"{t}/{p}": o for (t, p), o in sorted(positions.items())}
