"""The translator's event engine: owned partitions, event routing, durable positions.

No Kafka or Redis here: records come in as `Record`s, storage goes through the `TenantStore`
and `PartitionStore` Protocols, and the consumer adapter commits what `checkpoint` returns.

Rebuilding memory on restart or reassignment
--------------------------------------------
Kafka offsets are per partition and `ripple.events` is not compacted per object, so an offset
alone cannot rebuild a tenant: an Ingress created months ago sits before the retention horizon.
Replaying the partition from the start of retention is therefore unsound (and its cost grows
with retention, not with the change). Instead the translator stores its INPUTS:

- each tenant's sanitized objects go to `P:{t}:input` together with the Kafka position
  (next offset) they cover, written by the same script as each tenant version
  (`store.inputs`);
- each partition's cluster state (IngressClasses, the re-lists whose effect is not yet durable,
  the tenants ever written from it) goes to `P:{_p.<topic>.<n>}:...`.

On assignment of a partition the engine loads that state and every tenant of the partition
(objects, stored resource versions, tenant version; in batches of LOAD_BATCH tenants, one
pipelined round trip each, partitions concurrently) before it applies any event, then resumes
at the group's committed offset (or earlier: at the start of a re-list still in progress, see
below). Each event is applied to a tenant only if its offset is at or past the tenant's stored
input offset; older ones are already in the stored inputs and are skipped, so reprocessing
changes nothing (a rewrite of identical state is an empty diff and writes no version).

Commits: the committed offset of a partition is the lowest offset applied to some tenant but
not yet durable (or, with nothing pending, the offset after the last record handled). So every
event below the committed offset is in Redis, and resuming there loses nothing.

Re-lists: RELIST_STARTED/FINISHED of a kind arrive on every partition. The "seen" set between
them is memory only, so the start offset of a re-list is stored until the re-list's effect is
durable (committed offset past RELIST_FINISHED). A translator that takes over mid-re-list seeks
back to that start offset and replays the window: events below a tenant's input offset then
only count as seen, and FINISHED drops unseen objects only from tenants whose inputs do not
already cover it. A FINISHED without a known start drops nothing (logged).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import structlog

from ripple_common.backoff import Backoff
from ripple_common.envelope import Envelope, EnvelopeError, EventType
from ripple_common.store_contract import Marks
from ripple_common.telemetry import context_from_headers
from ripple_translator.hosts import HostArbiter, HostNotice, HostRegistry
from ripple_translator.metrics import TranslatorStats
from ripple_translator.oversized import too_large_diagnostic
from ripple_translator.ownership import Ownership, PartitionRun
from ripple_translator.partition_state import (
    CLUSTER_KINDS,
    PartitionObjects,
    PartitionState,
    is_cluster_event,
)
from ripple_translator.slot import EventTrace, TenantSlot, TopicPartition, loaded_slot
from ripple_translator.store import (
    PartitionCheckpoint,
    PartitionStore,
    StoreTenantLoader,
    TenantLoader,
    TenantStore,
)
from ripple_translator.writer import DiagnosticSink, TenantWriter, WriterConfig

log = structlog.get_logger("ripple_translator.engine")
# Tenants loaded in one round trip (one `TenantLoader.load_tenants` call) on assignment.
LOAD_BATCH = 200
# Load batches in flight at once, across the partitions being assigned.
LOAD_PIPELINES = 4
# Redis connections the engine may hold besides the tenant writes: the load batches, a tenant
# loaded on its first event, the partition state, the host-notice follower (a blocking read)
# and the host check after an assignment. The connection pool must leave them room.
RESERVED_CONNECTIONS = LOAD_PIPELINES + 6
# Tries of one Redis call of the engine (loads, partition state) before the service stops.
IO_ATTEMPTS = 5
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """One consumed Kafka message."""

    topic: str
    partition: int
    offset: int
    value: bytes
    headers: Sequence[tuple[str, bytes]] = ()
    timestamp_ms: int | None = None  # the record's Kafka timestamp (the watcher's send time)

    @property
    def tp(self) -> TopicPartition:
        return (self.topic, self.partition)


class Engine:
    """Applies records to owned tenants and schedules their writes."""

    def __init__(
        self,
        *,
        store: TenantStore,
        partitions: PartitionStore,
        config: WriterConfig | None = None,
        loader: TenantLoader | None = None,
        hosts: HostRegistry | None = None,
        on_diagnostics: DiagnosticSink | None = None,
        stats: TranslatorStats | None = None,
    ) -> None:
        self._store = store
        self._partitions = partitions
        self.stats = stats or TranslatorStats()
        self._after_assign_tasks: set[asyncio.Task[None]] = set()
        self._loader = loader or StoreTenantLoader(store)
        self._load_slots = asyncio.Semaphore(LOAD_PIPELINES)
        self._owned = Ownership()
        self._config = config or WriterConfig()
        self._on_diagnostics = on_diagnostics
        self._arbiter = (
            HostArbiter(
                hosts,
                policy=self._config.host_policy,
                grace_s=self._config.host_release_grace_s,
            )
            if hosts is not None
            else None
        )
        self._writer = TenantWriter(
            store=store,
            partitions=partitions,
            ownership=self._owned,
            config=self._config,
            arbiter=self._arbiter,
            on_diagnostics=on_diagnostics,
            stats=self.stats,
        )

    # -- ownership ----------------------------------------------------------------------------

    @property
    def owned(self) -> frozenset[TopicPartition]:
        return self._owned.partitions

    def slot(self, tenant: str) -> TenantSlot | None:
        return self._owned.slot(tenant)

    @property
    def writer(self) -> TenantWriter:
        return self._writer

    @property
    def tenants(self) -> int:
        return len(self._owned)

    # -- host ownership ------------------------------------------------------------------------

    def wake(self, notices: Sequence[HostNotice]) -> int:
        """Re-translate the owned tenants the notices name (a host of theirs changed hands).
        Returns how many were woken; tenants owned elsewhere are another translator's."""
        woken = self._writer.retranslate(sorted({n.tenant for n in notices}), hosts_stale=True)
        self.stats.host_notices += woken
        return woken

    async def retranslate_outdated(self, tenants: Sequence[str]) -> list[str]:
        """Translate each loaded tenant with this release's code and rewrite those whose
        stored resources differ: the output of an older release (an upgrade must not leave
        old translations in Redis until each tenant happens to change), or a stored entry
        changed by hand. CPU only (a big tenant in the translation thread), one tenant at a
        time between other work; a tenant with a write pending or in flight is skipped (that
        write translates it anyway). Returns the rewritten tenants."""
        outdated: list[str] = []
        for tenant in tenants:
            slot = self._owned.slot(tenant)
            if slot is None or slot.dirty or slot.busy:
                continue
            if await self._writer.outdated(slot):
                outdated.append(tenant)
            await asyncio.sleep(0)  # one tenant's translation at a time between other work
        if outdated:
            log.info("translation.outdated", tenants=outdated[:20], count=len(outdated))
            self._writer.retranslate(outdated, hosts_stale=False)
        return outdated

    async def check_hosts(self, tenants: Sequence[str]) -> list[str]:
        """Re-translate the tenants whose recorded host states no longer match Redis (a
        notice sent while no translator held them); returns them. Runs after an assignment,
        once the tenants are registered (a notice sent later reaches the follower)."""
        if self._arbiter is None or not tenants:
            return []
        stale: list[str] = []
        for i in range(0, len(tenants), LOAD_BATCH):
            batch = tenants[i : i + LOAD_BATCH]
            stale += await self._io(partial(self._arbiter.stale, batch))
        if stale:
            log.info("hosts.stale", tenants=stale[:20], count=len(stale))
            self.wake([HostNotice(tenant=t, host="", why="stale") for t in stale])
        return stale

    def _after_assign(self, tenants: Sequence[str]) -> None:
        """In the background, once the tenants are registered: their host states against
        Redis, then their stored resources against this release's translation."""
        if not tenants:
            return
        task = asyncio.create_task(self._after_assign_logged(list(tenants)), name="after assign")
        self._after_assign_tasks.add(task)
        task.add_done_callback(self._after_assign_tasks.discard)

    async def _after_assign_logged(self, tenants: list[str]) -> None:
        try:
            await self.check_hosts(tenants)
        except Exception as exc:
            log.warning("hosts.check_failed", error=repr(exc), tenants=len(tenants))
        try:
            await self.retranslate_outdated(tenants)
        except Exception as exc:
            log.warning("translation.check_failed", error=repr(exc), tenants=len(tenants))

    async def assign(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        """Load the partitions' state and tenants (partitions concurrently). Returns, per
        partition, an offset to seek back to if it is earlier than the committed one (a re-list
        in progress), else None."""
        rewind: dict[TopicPartition, int | None] = {}
        new = [tp for tp in dict.fromkeys(tps) if tp not in self._owned.partitions]
        loaded = dict(zip(new, await _all([self._load_partition(tp) for tp in new]), strict=True))
        for tp in dict.fromkeys(tps):
            if tp not in loaded:
                rewind[tp] = None
                continue
            run, saved, slots = loaded[tp]
            self._owned.add_partition(run, slots)
            self._after_assign(sorted(s.tenant for s in slots))
            rewind[tp] = min((o for _, o in saved.relists), default=None)
            log.info(
                "partition.assigned",
                topic=tp[0],
                partition=tp[1],
                tenants=len(slots),
                classes=len(saved.classes),
                rewind_to=rewind[tp],
            )
        return rewind

    async def _load_partition(
        self, tp: TopicPartition
    ) -> tuple[PartitionRun, PartitionCheckpoint, list[TenantSlot]]:
        saved = await self._io(partial(self._partitions.load_partition, tp[0], tp[1]))
        run = PartitionRun(
            tp=tp,
            state=PartitionState(
                objects=PartitionObjects(classes=dict(saved.classes)),
                classes_offset=saved.classes_offset,
            ),
            relists=list(saved.relists),
        )
        for kind, started in saved.relists:
            run.state.objects.start_relist(kind, offset=started)
        names = sorted(saved.tenants)
        batches = [names[i : i + LOAD_BATCH] for i in range(0, len(names), LOAD_BATCH)]
        loaded = await _all([self._load_batch(batch, tp) for batch in batches])
        return run, saved, [slot for batch in loaded for slot in batch]

    async def _load_batch(self, tenants: Sequence[str], tp: TopicPartition) -> list[TenantSlot]:
        async with self._load_slots:
            loaded = await self._io(partial(self._loader.load_tenants, tenants))
        return [loaded_slot(c, inputs, tp, registered=True) for c, inputs in loaded]

    async def revoke(
        self, tps: Sequence[TopicPartition], *, timeout_s: float
    ) -> dict[TopicPartition, int]:
        """Stop intake of the partitions, let their writes finish, and return the final
        positions to commit; then forget them."""
        runs = [run for tp in tps if (run := self._owned.run(tp)) is not None]
        for run in runs:
            run.revoking = True
        slots = [slot for run in runs for slot in self._owned.slots_of(run)]
        finished = await self._writer.wait(slots, timeout_s=timeout_s)
        if not finished:
            log.warning("partition.revoke_timeout", partitions=[tp[1] for tp in tps])
        positions = await self._positions(runs)
        for run in runs:
            self._writer.forget(run.tenants)
            self._owned.remove_partition(run)
            log.info("partition.revoked", topic=run.tp[0], partition=run.tp[1])
        return positions

    async def drain(self, *, timeout_s: float) -> dict[TopicPartition, int]:
        """Shutdown: finish every write and return the positions to commit."""
        for task in list(self._after_assign_tasks):
            task.cancel()
        self._writer.stop_timers([s.tenant for s in self._owned.slots()])
        positions = await self.revoke(list(self._owned.partitions), timeout_s=timeout_s)
        self._writer.close()
        return positions

    async def settle(self, *, timeout_s: float) -> bool:
        """Wait until the checks after an assignment are done and no tenant has a write in
        flight or pending (tests, benchmarks)."""
        if self._after_assign_tasks:
            _, pending = await asyncio.wait(self._after_assign_tasks, timeout=timeout_s)
            if pending:
                return False
        return await self._writer.wait(self._owned.slots(), timeout_s=timeout_s)

    async def checkpoint(self) -> dict[TopicPartition, int]:
        """Positions that advanced since the last call (to commit now)."""
        return await self._positions(self._owned.runs())

    async def _positions(self, runs: Sequence[PartitionRun]) -> dict[TopicPartition, int]:
        out: dict[TopicPartition, int] = {}
        unwritten = self._writer.unwritten()
        for run in runs:
            if run.high is None:
                continue
            position = min([*unwritten.get(run.tp, ()), run.high])
            done = [f for f in run.finishing if f[2] < position]
            if done:
                for kind, started, _ in done:
                    if (kind, started) in run.relists:
                        run.relists.remove((kind, started))
                run.finishing = [f for f in run.finishing if f not in done]
                await self._save(run)
            if run.committed is None or position > run.committed:
                run.committed = position
                out[run.tp] = position
        return out

    # -- events -------------------------------------------------------------------------------

    async def handle(self, records: Sequence[Record]) -> None:
        self.stats.records += len(records)
        for record in records:
            run = self._owned.run(record.tp)
            if run is None:
                continue  # revoked meanwhile
            try:
                envelope = Envelope.from_bytes(record.value)
            except EnvelopeError as exc:
                log.error(
                    "event.invalid",
                    partition=record.partition,
                    offset=record.offset,
                    error=str(exc),
                )
            else:
                if envelope.type is EventType.TOO_LARGE:
                    self._report_too_large(envelope)
                await self._apply(run, envelope, record)
            if self._owned.run(record.tp) is run:
                run.high = record.offset + 1

    def _report_too_large(self, env: Envelope) -> None:
        """The object is not served (the event rules treat it as deleted): say why."""
        diag = too_large_diagnostic(env)
        log.warning(
            "event.too_large", tenant=env.tenant, object=str(diag.object), note=diag.message
        )
        if self._on_diagnostics is not None and not is_cluster_event(env):
            self._on_diagnostics(env.tenant, [diag])

    async def _apply(self, run: PartitionRun, env: Envelope, record: Record) -> None:
        """Apply the envelope with the partition-state rules (`PartitionState.apply`), then
        do what they ask: load a tenant first, store the partition state, schedule writes."""
        tenant = run.state.tenant_of(env)
        if tenant is not None and self._owned.slot(tenant) is None:
            slot = await self._load(tenant, run.tp)
            if self._owned.run(run.tp) is not run:
                return
            self._owned.add_tenant(run, slot)
        offset = record.offset
        applied = run.state.apply(env, offset=offset, tenants=self._owned.table(run))
        if applied.unexpected_marker:
            log.warning("event.unexpected_marker", tenant=env.tenant, type=str(env.type))
        elif applied.unmatched_relist:
            log.warning("relist.unmatched", kind=env.kind, partition=run.tp[1], offset=offset)
        if applied.relist_started is not None and applied.relist_started not in run.relists:
            run.relists.append(applied.relist_started)
            await self._save(run)
        end = applied.relist_finished
        if end is not None:
            run.finishing.append((end.kind, end.started_at, offset))
        if applied.classes_changed:
            await self._save(run)
        for name, keys in applied.changed.items():
            changed = self._owned.slot(name)
            if changed is None:
                continue
            # The tenant's own event (not a cluster one): its write carries the event's trace.
            own = name == applied.tenant
            self.stats.events += own
            trace = event_trace(record, env) if own else None
            self._writer.applied(changed, offset, keys=keys, trace=trace)
        if end is not None and end.kind not in CLUSTER_KINDS:
            log.info(
                "relist.finished",
                kind=end.kind,
                partition=run.tp[1],
                seen=len(end.seen),
                dropped=sum(len(keys) for keys in applied.changed.values()),
            )

    async def _save(self, run: PartitionRun) -> None:
        checkpoint = run.checkpoint()
        await self._io(partial(self._partitions.save_partition, checkpoint))

    async def _io(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """Run a store call, retrying failures a few times before giving up (the service
        then stops, and a restart resumes from the last commit)."""
        backoff = Backoff(initial=self._config.retry_initial_s, maximum=self._config.retry_max_s)
        for attempt in range(1, IO_ATTEMPTS + 1):
            try:
                return await call()
            except Exception as exc:
                if attempt == IO_ATTEMPTS:
                    raise
                delay = backoff.next()
                log.warning("redis.retry", error=repr(exc), attempt=attempt, retry_in_s=delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _load(self, tenant: str, tp: TopicPartition) -> TenantSlot:
        """One tenant (on its first event): both reads concurrently."""
        checkpoint, inputs = await asyncio.gather(
            self._io(partial(self._store.load_checkpoint, tenant)),
            self._io(partial(self._store.load_inputs, tenant)),
        )
        return loaded_slot(checkpoint, inputs, tp, registered=False)


def event_trace(record: Record, env: Envelope) -> EventTrace:
    """Where a tenant's event came from: the trace context in the record's headers and the
    times it was observed (watcher), published (the record's Kafka timestamp) and made in
    the API."""
    published_ns = record.timestamp_ms * 1_000_000 if record.timestamp_ms is not None else None
    return EventTrace(
        context=context_from_headers(record.headers),
        marks=Marks(
            observed_ns=env.observed_at_ns, published_ns=published_ns, api_ns=env.api_at_ns
        ),
    )


async def _all(calls: Sequence[Coroutine[Any, Any, _T]]) -> list[_T]:
    """Run the calls concurrently and return their results in order; if one fails, cancel
    the others and raise its error (unwrapped)."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
