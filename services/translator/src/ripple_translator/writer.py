"""The writer: from a tenant's objects to one stored tenant version, with coalescing.

`plan_write` is the pure step: translate the tenant, diff the resources against the stored
content versions, and collect the changed input objects. `TenantWriter` runs it for each dirty
tenant with at most one write in flight per tenant: a lone change is written at once (no
debounce); events that arrive while a tenant's write is in flight only mark it dirty, and the
writer writes all of them as one version when the write in flight returns. A tenant's failure
(Redis error, fencing conflict, an unusable tenant name) is retried or logged for that tenant
alone; other tenants' writers run on.

Writes in flight across all tenants are bounded by `WriterConfig.max_concurrent_writes` (each
write holds one Redis connection at a time, so the bound keeps a burst of thousands of tenants
below the connection pool). A dirty tenant waits for a write slot in a fair queue
(`scheduling.FairQueue`: the tenant whose writes cost least recently goes first, so a flooding
tenant's expensive re-translations never hold a neighbour's single change back) and keeps
coalescing its events meanwhile; each write attempt takes a slot anew. Retry backoff sleeps
without holding a slot.

Fairness in time as well as in order: a tenant whose write was expensive waits for a while
proportional to that cost before its next write (`scheduling.pace_after`: its batches grow,
its share of the CPU stays bounded), and the translation of a big tenant (at least
`WriterConfig.offload_objects` objects) runs in a worker thread, one at a time, on a snapshot
of its objects, so the event loop (the Kafka consumer's polls and heartbeats, the other
tenants' writes) keeps running during it. Host claims are incremental: a write claims only
the hosts whose claim changed since the tenant's last arbitration (all of them again after a
notice), so a flood does not re-claim thousands of hosts per write.

The writer is the one module that changes a tenant's slot (`slot.TenantSlot`): the engine
hands it each event it applied (`TenantWriter.applied`: pending, then scheduled) and reads the
slot's views. A write takes the slot's pending batch as one value (`slot.TenantSlot.take`),
writes it, then replaces the slot's stored baseline with the new one; a write that fails puts
the batch back whole (`put_back`: merged with what arrived meanwhile). The host arbitration
(`hosts.HostArbiter`) returns the tenant's new host cache as a value too.

Fencing: a write from a Kafka position older than the one the tenant's stored version covers
is refused by the store (`PositionFencedError`). The writer then reloads the tenant from Redis
(its stored inputs replace the memory when they cover more than this writer applied) and
writes nothing until its position passes the stored one: it never writes an older state on
top of a newer one (which would remove, then re-add, what the newer version serves).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from ripple_common.backoff import Backoff
from ripple_common.sealing import Sealer
from ripple_common.store_contract import Marks
from ripple_common.telemetry import context_to_fields
from ripple_translator.hosts import HostArbiter, HostOutcome, HostPolicy, host_options
from ripple_translator.metrics import TranslatorStats
from ripple_translator.ownership import Ownership
from ripple_translator.partition_state import JsonObject, ObjectKey, TenantObjects, encode_key
from ripple_translator.scheduling import WriteSlots, pace_after
from ripple_translator.seal import seal_secrets
from ripple_translator.slot import EventTrace, Pending, TenantSlot, TopicPartition, span_context
from ripple_translator.store import (
    AnnounceError,
    Diff,
    InputChanges,
    KafkaOffset,
    PartitionStore,
    PositionFencedError,
    TenantStore,
    VersionConflictError,
    diff_resources,
)
from ripple_translator.store.model import ResourceKey
from ripple_translator.translate import Diagnostic, TranslateOptions, Translation, translate
from ripple_translator.translate.naming import NamingError
from ripple_translator.unseal import open_secret

# Called with (tenant, version) once a version is durable, before its offset is committed.
AfterWrite = Callable[[str, int], None]
log = structlog.get_logger("ripple_translator.writer")
tracer = trace.get_tracer("ripple_translator")

# Receives each written tenant's diagnostics (e.g. the Kubernetes Event reporter); must not block.
DiagnosticSink = Callable[[str, Sequence[Diagnostic]], None]
MAX_LOGGED_DIAGNOSTICS = 20
MAX_TRACED_OBJECTS = 20  # object keys named on a write span
HOLD_RECHECK_MARGIN_S = 0.05  # claim again this long after a lost host's hold ends
GIL_SWITCH_S = 0.0005  # the interpreter's switch interval once translations run in a thread


@dataclass(frozen=True, slots=True, kw_only=True)
class WritePlan:
    """What one tenant write stores: the resource diff and the changed input objects."""

    translation: Translation
    diff: Diff
    inputs: InputChanges


def plan_write(
    objects: TenantObjects,
    *,
    changed: Iterable[ObjectKey],
    classes: tuple[JsonObject, ...],
    resource_versions: Mapping[ResourceKey, str],
    options: TranslateOptions,
    sealer: Sealer | None = None,
) -> WritePlan:
    """Translate `objects` (sealed keys opened with `sealer`, and the Secret resources' keys
    sealed again with it: `seal`) and diff against `resource_versions` (the stored content
    versions); `changed` are the object keys touched since the last stored inputs. No I/O."""
    state = objects.state(secret_view=lambda secret: open_secret(secret, sealer))
    translation = translate(state, ingress_classes=classes, options=options)
    if sealer is not None:
        translation = replace(translation, resources=seal_secrets(translation.resources, sealer))
    keys = sorted(set(changed))
    return WritePlan(
        translation=translation,
        diff=diff_resources(resource_versions, translation.resources),
        inputs=InputChanges(
            upserts={k: objects.objects[k] for k in keys if k in objects.objects},
            removals=tuple(k for k in keys if k not in objects.objects),
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class WriterConfig:
    options: TranslateOptions = field(default_factory=TranslateOptions)
    sealer: Sealer | None = None
    retry_initial_s: float = 0.2
    retry_max_s: float = 5.0
    # Tenant writes in flight at once (each holds one Redis connection at a time).
    max_concurrent_writes: int = 32
    host_policy: HostPolicy = field(default_factory=HostPolicy)
    # An owner that stops asking for a host keeps it this long (re-creating its Ingress
    # within it keeps the host); then the first standing claim of it gets it.
    host_release_grace_s: float = 60.0
    # Test hook (crash-safety tests only): after a version is written and before its Kafka
    # offset can be committed, call this (e.g. to abort the process). None in production.
    after_write: AfterWrite | None = None
    # After a write that took c seconds (c >= pace_min_s), the tenant's next write waits
    # pace_factor * c (`scheduling.pace_after`; 0: no pacing).
    pace_factor: float = 1.0
    pace_min_s: float = 0.05
    # Tenants with at least this many objects are translated in a worker thread (one at a
    # time); smaller ones on the event loop (0: always in the thread).
    offload_objects: int = 500

    def __post_init__(self) -> None:
        if self.max_concurrent_writes < 1:
            raise ValueError("max_concurrent_writes must be at least 1")
        if self.pace_factor < 0 or self.pace_min_s < 0:
            raise ValueError("pace_factor and pace_min_s must not be negative")
        if self.offload_objects < 0:
            raise ValueError("offload_objects must not be negative")
        if self.host_release_grace_s < 0:
            raise ValueError("host_release_grace_s must not be negative")


class TenantWriter:
    """Writes dirty tenants, one write in flight per tenant (see the module docstring)."""

    def __init__(
        self,
        *,
        store: TenantStore,
        partitions: PartitionStore,
        ownership: Ownership,
        config: WriterConfig,
        arbiter: HostArbiter | None = None,
        on_diagnostics: DiagnosticSink | None = None,
        stats: TranslatorStats | None = None,
    ) -> None:
        self._store = store
        self._partitions = partitions
        # Whether a slot is still ours, and its partition's IngressClasses.
        self._ownership = ownership
        self._config = config
        # Host ownership across tenants (None: no arbitration, only the policy applies).
        self._arbiter = arbiter
        self._on_diagnostics = on_diagnostics
        self.stats = stats or TranslatorStats()
        # Write slots, granted in fair order (`scheduling.FairQueue`).
        self._write_slots = WriteSlots(config.max_concurrent_writes)
        self._in_flight = 0
        self._waiting = 0
        # Translations of big tenants, one at a time, off the event loop.
        self._translations: ThreadPoolExecutor | None = None
        # Per tenant: a wake-up when a host it lost is no longer held for its releasing owner.
        self._hold_timers: dict[str, asyncio.TimerHandle] = {}
        # The slots given events since they were last seen with nothing unwritten (a superset
        # of those with events not yet stored): `unwritten` looks at these only, not at every
        # owned tenant on each poll (tens of thousands at scale).
        self._unwritten: dict[str, TenantSlot] = {}

    @property
    def in_flight(self) -> int:
        """Tenant writes holding a write slot now."""
        return self._in_flight

    @property
    def waiting(self) -> int:
        """Dirty tenants waiting for a write slot."""
        return self._waiting

    def applied(
        self,
        slot: TenantSlot,
        offset: int,
        *,
        keys: Iterable[ObjectKey] = (),
        trace: EventTrace | None = None,
    ) -> None:
        """The engine applied the event at `offset` to the slot's tenant (its objects `keys`,
        or its cluster inputs: no keys; `trace`: where the tenant's own event came from):
        record it as pending and schedule the tenant's write."""
        slot.applied(offset, keys=keys, trace=trace)
        self._schedule(slot)

    def _schedule(self, slot: TenantSlot) -> None:
        """The slot was given events: count them as unwritten, start its write if none runs."""
        self._unwritten[slot.tenant] = slot
        if slot.dirty and not slot.busy:
            slot.task = asyncio.create_task(self._run(slot), name=f"write {slot.tenant}")

    def retranslate(self, tenants: Sequence[str], *, hosts_stale: bool) -> int:
        """Schedule a write of each owned tenant at its stored position (nothing new
        applied: the write translates what it holds again). Returns how many; tenants owned
        elsewhere or being handed over are the next owner's."""
        scheduled = 0
        for tenant in tenants:
            slot = self._ownership.writable(tenant)
            if slot is not None and slot.retranslate(hosts_stale=hosts_stale):
                self._schedule(slot)
                scheduled += 1
        return scheduled

    async def wait(self, slots: Iterable[TenantSlot], *, timeout_s: float) -> bool:
        """Wait until the slots' writers are idle; cancel them after `timeout_s`. True if all
        finished in time."""
        tasks = [s.task for s in slots if s.task is not None and not s.task.done()]
        if not tasks:
            return True
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        return not pending

    def unwritten(self) -> dict[TopicPartition, list[int]]:
        """Per partition, the lowest offset of each tenant's events not yet stored (the
        positions to commit stay below them)."""
        out: dict[TopicPartition, list[int]] = {}
        for tenant, slot in list(self._unwritten.items()):
            first = slot.pending_from
            if first is None:
                del self._unwritten[tenant]
            else:
                out.setdefault(slot.tp, []).append(first)
        return out

    def forget(self, tenants: Iterable[str]) -> None:
        """The tenants are no longer ours (their positions are committed): their hold timers
        are cancelled and their unwritten events no longer count."""
        tenants = list(tenants)
        self.stop_timers(tenants)
        for tenant in tenants:
            self._unwritten.pop(tenant, None)

    def stop_timers(self, tenants: Iterable[str]) -> None:
        """No hold timer wakes these tenants any more (shutdown: before their last writes)."""
        for tenant in tenants:
            timer = self._hold_timers.pop(tenant, None)
            if timer is not None:
                timer.cancel()

    def close(self) -> None:
        """Stop the hold timers and the translation thread (after the writes are done)."""
        self.stop_timers(list(self._hold_timers))
        if self._translations is not None:
            self._translations.shutdown(wait=False, cancel_futures=True)
            self._translations = None

    async def _run(self, slot: TenantSlot) -> None:
        backoff = Backoff(initial=self._config.retry_initial_s, maximum=self._config.retry_max_s)
        conflicts = 0
        pause = 0.0
        while slot.dirty:
            if pause:
                # Paced after an expensive write: keep coalescing meanwhile.
                await asyncio.sleep(pause)
                pause = 0.0
            # One write slot per attempt (fair order): events keep coalescing while this waits.
            self._waiting += 1
            try:
                await self._write_slots.acquire(slot.tenant)
            finally:
                self._waiting -= 1
            self._in_flight += 1
            started = time.perf_counter()
            try:
                if not self._ownership.owns(slot):
                    log.info("tenant.write_dropped", tenant=slot.tenant, partition=slot.tp[1])
                    slot.covered()  # the next owner re-applies it
                    return
                if slot.position < slot.baseline.fenced_below:
                    # The stored version covers a later position: what is pending is in it.
                    slot.covered()
                    return
                if conflicts:
                    # Another writer moved the tenant (a takeover race) or our baseline is
                    # stale: reload the stored versions and write our state on top of them
                    # (ours covers a later position: the store fences an earlier one).
                    checkpoint = await self._store.load_checkpoint(slot.tenant)
                    slot.baseline = slot.baseline.stored(checkpoint)
                await self._write_once(slot)
                backoff.reset()
                conflicts = 0
                pause = pace_after(
                    time.perf_counter() - started,
                    factor=self._config.pace_factor,
                    min_cost_s=self._config.pace_min_s,
                )
                continue
            except PositionFencedError as exc:
                self.stats.fenced += 1
                await self._reload(slot, exc)
                continue
            except VersionConflictError as exc:
                conflicts += 1
                log.warning("tenant.conflict", tenant=slot.tenant, error=str(exc))
                if conflicts == 1:
                    continue  # reload and retry at once; back off if it happens again
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("tenant.write_failed", tenant=slot.tenant, error=repr(exc))
            finally:
                self._in_flight -= 1
                self._write_slots.release(slot.tenant, cost=time.perf_counter() - started)
            await asyncio.sleep(backoff.next())  # back off without holding a write slot

    async def _reload(self, slot: TenantSlot, fenced: PositionFencedError) -> None:
        """After a fenced write: the stored version and inputs become the baseline."""
        checkpoint, inputs = await asyncio.gather(
            self._store.load_checkpoint(slot.tenant), self._store.load_inputs(slot.tenant)
        )
        position = slot.position
        replaced = slot.reload(checkpoint, inputs, fenced_below=fenced.stored_offset)
        if replaced:
            slot.covered()
        log.warning(
            "tenant.fenced",
            tenant=slot.tenant,
            partition=slot.tp[1],
            offset=fenced.offset,
            stored_offset=fenced.stored_offset,
            stored_version=checkpoint.version,
            position=position,
            inputs_reloaded=replaced,
        )

    async def _write_once(self, slot: TenantSlot) -> None:
        started = time.perf_counter()
        assert slot.applied_through is not None
        offset = KafkaOffset(
            topic=slot.tp[0], partition=slot.tp[1], offset=slot.applied_through + 1
        )
        batch = slot.take()
        try:
            with tracer.start_as_current_span(
                "translator.write",
                # A child of the first pending event's span (a fresh trace without one); the
                # events coalesced into the same write are links.
                context=batch.contexts[0] if batch.contexts else otel_context.Context(),
                links=[trace.Link(span_context(ctx)) for ctx in batch.contexts[1:]],
                attributes=_write_attributes(slot, batch, offset=offset),
            ) as span:
                trace_fields = context_to_fields()
                try:
                    # Notices that came for the tenant so far: the arbitration covers them.
                    seen = slot.hosts.notices
                    plan, hosts = await self._arbitrated_plan(slot, batch.changed, seen)
                except NamingError as exc:
                    log.error("tenant.untranslatable", tenant=slot.tenant, error=str(exc))
                    span.set_status(trace.StatusCode.ERROR, str(exc))
                    slot.landed()
                    return
                written = replace(batch.marks or Marks(), written_ns=time.time_ns())
                version = await self._store_plan(
                    slot, plan, offset, {**trace_fields, **written.fields()}
                )
                if self._config.after_write is not None:
                    self._config.after_write(slot.tenant, version)
                if hosts is not None:
                    await self._settle(slot, hosts, seen)
                span.set_attributes(
                    {
                        "ripple.version": version,
                        "ripple.upserts": len(plan.diff.upserts),
                        "ripple.removals": len(plan.diff.removals),
                    }
                )
        except BaseException:
            slot.put_back(batch)  # not written: what this write held is pending again
            raise
        slot.landed()
        self._report(slot, batch, plan, hosts, version=version, offset=offset, started=started)

    async def _arbitrated_plan(
        self, slot: TenantSlot, changed: Iterable[ObjectKey], seen: int
    ) -> tuple[WritePlan, HostOutcome | None]:
        """Translate the tenant, claim the hosts it asks for, and translate it again if the
        arbitration withheld other hosts than the translation assumed."""
        plan = await self._plan_off_loop(slot, changed)
        if self._arbiter is None:
            return plan, None
        hosts, cache = await self._arbiter.arbitrate(
            slot.tenant, slot.hosts, plan.translation.claims
        )
        slot.hosts = cache.noticed_since(seen, slot.hosts.notices)
        if hosts.withheld != slot.hosts.withheld:
            slot.hosts = replace(slot.hosts, withheld=hosts.withheld)
            plan = await self._plan_off_loop(slot, changed)
        return plan, hosts

    async def _settle(self, slot: TenantSlot, hosts: HostOutcome, seen: int) -> None:
        assert self._arbiter is not None
        settled = await self._arbiter.settle(slot.tenant, slot.hosts, hosts)
        slot.hosts = settled.noticed_since(seen, slot.hosts.notices)
        if hosts.recheck_after_s is not None:
            # A lost host is held for the owner that released it: claim again when the
            # hold ends (a little after, so Redis has expired it).
            self._wake_later(slot.tenant, hosts.recheck_after_s + HOLD_RECHECK_MARGIN_S)

    def _report(
        self,
        slot: TenantSlot,
        batch: Pending,
        plan: WritePlan,
        hosts: HostOutcome | None,
        *,
        version: int,
        offset: KafkaOffset,
        started: float,
    ) -> None:
        """Stats, the diagnostics sink and the logs of a written version."""
        diags = plan.translation.diagnostics + (hosts.diagnostics if hosts else ())
        duration = time.perf_counter() - started
        self.stats.written(
            events=batch.events, changed=bool(plan.diff), diagnostics=len(diags), seconds=duration
        )
        if diags and self._on_diagnostics is not None:
            self._on_diagnostics(slot.tenant, diags)
        slot.diagnostics = _log_diagnostic_changes(slot.tenant, slot.diagnostics, diags)
        log.info(
            "tenant.write",
            tenant=slot.tenant,
            partition=slot.tp[1],
            offset=offset.offset,
            version=version,
            events=batch.events,
            upserts=len(plan.diff.upserts),
            removals=len(plan.diff.removals),
            inputs_changed=len(plan.inputs.upserts) + len(plan.inputs.removals),
            resources=len(plan.translation.resources),
            diagnostics=len(diags),
            diagnostic_list=[
                f"{d.severity} {d.object} {d.reason}: {d.message}"
                for d in diags[:MAX_LOGGED_DIAGNOSTICS]
            ],
            withheld_hosts=sorted(slot.hosts.withheld)[:MAX_LOGGED_DIAGNOSTICS],
            duration_ms=round(duration * 1000, 2),
        )

    def _wake_later(self, tenant: str, delay_s: float) -> None:
        """Re-translate `tenant` after `delay_s` (a host it lost is held for the owner that
        released it until then; its claim after that may get it). One timer per tenant, the
        earliest. A translator that dies loses its timers; the next owner's host check
        (`Engine.check_hosts`) re-translates a tenant that lost a held host, which arms the
        timer again."""
        loop = asyncio.get_running_loop()
        when = loop.time() + delay_s
        timer = self._hold_timers.get(tenant)
        if timer is not None:
            if timer.when() <= when:
                return
            timer.cancel()
        self._hold_timers[tenant] = loop.call_at(when, self._hold_over, tenant)

    def _hold_over(self, tenant: str) -> None:
        self._hold_timers.pop(tenant, None)
        self.stats.host_notices += self.retranslate([tenant], hosts_stale=True)

    async def outdated(self, slot: TenantSlot) -> bool:
        """Whether translating what `slot` holds now gives other resources than it stored
        (an untranslatable tenant is left to its next write, which reports it). A big tenant
        is translated in the translation thread (an assignment checks every tenant it loads:
        on the event loop, a big one held the consume loop and every write after a
        takeover)."""
        if not self._ownership.owns(slot):
            return False
        try:
            return bool((await self._plan_off_loop(slot, ())).diff)
        except NamingError:
            return False

    def _plan(
        self,
        tenant: str,
        objects: TenantObjects,
        changed: Iterable[ObjectKey],
        *,
        resource_versions: Mapping[ResourceKey, str],
        classes: tuple[JsonObject, ...],
        withheld: frozenset[str],
    ) -> WritePlan:
        options = host_options(
            self._config.options,
            tenant,
            self._config.host_policy,
            withheld,
            arbitrated=self._arbiter is not None,
        )
        return plan_write(
            objects,
            changed=changed,
            classes=classes,
            resource_versions=resource_versions,
            options=options,
            sealer=self._config.sealer,
        )

    async def _plan_off_loop(self, slot: TenantSlot, changed: Iterable[ObjectKey]) -> WritePlan:
        """`_plan`, in the translation thread for a big tenant: on a snapshot of its objects
        (the engine keeps applying events to the slot meanwhile; the baseline and host
        cache are immutable values)."""
        classes = self._ownership.classes(slot.tp)
        versions, withheld = slot.baseline.resource_versions, slot.hosts.withheld
        if len(slot.objects.objects) < self._config.offload_objects:
            return self._plan(
                slot.tenant,
                slot.objects,
                changed,
                resource_versions=versions,
                classes=classes,
                withheld=withheld,
            )
        objects = TenantObjects(slot.tenant, dict(slot.objects.objects))
        if self._translations is None:
            self._translations = ThreadPoolExecutor(max_workers=1, thread_name_prefix="translate")
            # The event loop waits for the GIL at every I/O while the thread translates:
            # hand it over more often than every 5 ms (Python's default).
            sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_S))
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._translations,
            partial(
                self._plan,
                slot.tenant,
                objects,
                tuple(changed),
                resource_versions=versions,
                classes=classes,
                withheld=withheld,
            ),
        )

    async def _store_plan(
        self,
        slot: TenantSlot,
        plan: WritePlan,
        offset: KafkaOffset,
        trace_fields: Mapping[str, str],
    ) -> int:
        if not slot.registered:
            await self._partitions.add_tenant(slot.tp[0], slot.tp[1], slot.tenant)
            slot.baseline = replace(slot.baseline, registered=True)
        try:
            version = await self._store.write_version(
                slot.tenant,
                plan.diff.upserts,
                plan.diff.removals,
                offset=offset,
                expected_version=slot.version,
                trace_fields=trace_fields,
                inputs=plan.inputs,
            )
        except AnnounceError as exc:
            # Durable, only the change-stream entry is missing: announce it in full.
            log.warning("tenant.announce_failed", tenant=slot.tenant, error=str(exc))
            slot.baseline = slot.baseline.written(exc.version, plan.diff)
            await self._store.announce(slot.tenant, trace_fields=trace_fields)
            version = exc.version
        else:
            slot.baseline = slot.baseline.written(version, plan.diff)
        slot.baseline = replace(
            slot.baseline, input_offset=max(slot.baseline.input_offset, offset.offset)
        )
        return version


def _log_diagnostic_changes(
    tenant: str, previous: frozenset[Diagnostic], diags: Iterable[Diagnostic]
) -> frozenset[Diagnostic]:
    """One log line per diagnostic when it first appears (not on every version) and one when
    it is gone; the `tenant.write` line lists the current ones. Returns the current ones."""
    current = frozenset(diags)
    for d in sorted(current - previous):
        log.warning("diagnostic", severity=str(d.severity), message=d.message, **_named(tenant, d))
    for d in sorted(previous - current):
        log.info("diagnostic.resolved", **_named(tenant, d))
    return current


def _named(tenant: str, d: Diagnostic) -> dict[str, str]:
    """The log fields that name a diagnostic: its tenant, object and reason."""
    return {
        "tenant": tenant,
        "kind": d.object.kind,
        "namespace": d.object.namespace,
        "name": d.object.name,
        "reason": str(d.reason),
    }


def _write_attributes(
    slot: TenantSlot, batch: Pending, *, offset: KafkaOffset
) -> dict[str, AttributeValue]:
    """The write span's attributes: tenant, the changed objects (kind/namespace/name), and
    where in Kafka the write stands."""
    keys = sorted(batch.changed)
    attributes: dict[str, AttributeValue] = {
        "ripple.tenant": slot.tenant,
        "ripple.events": batch.events,
        "ripple.objects": [encode_key(k) for k in keys[:MAX_TRACED_OBJECTS]],
        "ripple.objects_changed": len(keys),
        "messaging.kafka.partition": slot.tp[1],
        "messaging.kafka.offset": offset.offset - 1,
    }
    kinds = sorted({k[0] for k in keys})
    if kinds:
        attributes["ripple.kind"] = kinds[0] if len(kinds) == 1 else ",".join(kinds)
    if len(keys) == 1:
        attributes["ripple.name"] = keys[0][2]
    return attributes
