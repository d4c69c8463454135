"""From a tenant's objects to one stored tenant version, with coalescing.

`plan_write` is the pure step: translate the tenant, diff the resources against the stored
content versions, and collect the changed input objects. `TenantWriter` runs it for each dirty
tenant with at most one write in flight per tenant: a lone change is written at once (no
debounce); events that arrive while a tenant's write is in flight only mark it dirty, and the
writer writes all of them as one version when the write in flight returns. A tenant's failure
(Redis error, fencing conflict, an unusable tenant name) is retried or logged for that tenant
alone; other tenants' writers run on.

Writes in flight across all tenants are bounded by `WriterConfig.max_concurrent_writes` (each
write holds one Redis connection at a time, so the bound keeps a burst of thousands of tenants
below the connection pool). A dirty tenant waits for a write slot in a FIFO queue (the
semaphore's waiters) and keeps coalescing its events meanwhile; each write attempt takes a
slot anew, so a tenant that keeps changing goes back to the end of the queue after each write
and a tenant that waits is never starved. Retry backoff sleeps without holding a slot.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace

from ripple_common.sealing import Sealer
from ripple_common.telemetry import context_to_fields
from ripple_translator.inputs import InputStore
from ripple_translator.store import (
    AnnounceError,
    Diff,
    KafkaOffset,
    TenantStore,
    VersionConflictError,
    apply_diff,
    diff_resources,
)
from ripple_translator.store.model import ResourceKey
from ripple_translator.tenants import JsonObject, ObjectKey, TenantObjects
from ripple_translator.translate import TranslateOptions, Translation, translate
from ripple_translator.translate.naming import NamingError
from ripple_translator.unseal import open_secret

log = structlog.get_logger("ripple_translator.pipeline")
tracer = trace.get_tracer("ripple_translator")

TopicPartition = tuple[str, int]
MAX_LOGGED_DIAGNOSTICS = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class WritePlan:
    """What one tenant write stores: the resource diff and the changed input objects."""

    translation: Translation
    diff: Diff
    input_upserts: Mapping[ObjectKey, JsonObject]
    input_removals: tuple[ObjectKey, ...]


def plan_write(
    objects: TenantObjects,
    *,
    changed: Iterable[ObjectKey],
    classes: tuple[JsonObject, ...],
    resource_versions: Mapping[ResourceKey, str],
    options: TranslateOptions,
    sealer: Sealer | None = None,
) -> WritePlan:
    """Translate `objects` (sealed keys opened with `sealer`) and diff against
    `resource_versions` (the stored content versions); `changed` are the object keys touched
    since the last stored inputs. No I/O."""
    state = objects.state(secret_view=lambda secret: open_secret(secret, sealer))
    translation = translate(state, ingress_classes=classes, options=options)
    keys = sorted(set(changed))
    return WritePlan(
        translation=translation,
        diff=diff_resources(resource_versions, translation.resources),
        input_upserts={k: objects.objects[k] for k in keys if k in objects.objects},
        input_removals=tuple(k for k in keys if k not in objects.objects),
    )


@dataclass(slots=True, kw_only=True)
class TenantSlot:
    """One owned tenant: its objects, the stored baseline and its write bookkeeping."""

    tenant: str
    tp: TopicPartition
    objects: TenantObjects
    version: int = 0
    resource_versions: dict[ResourceKey, str] = field(default_factory=dict)
    # Events at offsets below this are already in the stored inputs (skipped on replay).
    input_offset: int = 0
    registered: bool = False
    applied_through: int | None = None
    changed: set[ObjectKey] = field(default_factory=set)
    dirty: bool = False
    events: int = 0
    dirty_from: int | None = None
    in_flight_from: int | None = None
    trace_context: otel_context.Context | None = None
    task: asyncio.Task[None] | None = None

    def mark(self, offset: int, *, keys: Iterable[ObjectKey] = ()) -> None:
        """An event at `offset` changed the tenant (or its cluster inputs)."""
        self.applied_through = offset
        self.changed.update(keys)
        self.dirty = True
        self.events += 1
        if self.dirty_from is None:
            self.dirty_from = offset

    @property
    def pending_from(self) -> int | None:
        """The lowest offset applied here but not yet durable (None: all durable)."""
        pending = [o for o in (self.dirty_from, self.in_flight_from) if o is not None]
        return min(pending) if pending else None

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done()


@dataclass(frozen=True, slots=True, kw_only=True)
class WriterConfig:
    options: TranslateOptions = field(default_factory=TranslateOptions)
    sealer: Sealer | None = None
    retry_initial_s: float = 0.2
    retry_max_s: float = 5.0
    # Tenant writes in flight at once (each holds one Redis connection at a time).
    max_concurrent_writes: int = 32

    def __post_init__(self) -> None:
        if self.max_concurrent_writes < 1:
            raise ValueError("max_concurrent_writes must be at least 1")


class TenantWriter:
    """Writes dirty tenants, one write in flight per tenant (see the module docstring)."""

    def __init__(
        self,
        *,
        store: TenantStore,
        inputs: InputStore,
        classes_for: Callable[[TopicPartition], tuple[JsonObject, ...]],
        config: WriterConfig,
    ) -> None:
        self._store = store
        self._inputs = inputs
        self._classes_for = classes_for
        self._config = config
        # Write slots; waiters are served first in, first out.
        self._write_slots = asyncio.Semaphore(config.max_concurrent_writes)
        self._in_flight = 0
        self._waiting = 0

    @property
    def in_flight(self) -> int:
        """Tenant writes holding a write slot now."""
        return self._in_flight

    @property
    def waiting(self) -> int:
        """Dirty tenants waiting for a write slot."""
        return self._waiting

    def schedule(self, slot: TenantSlot) -> None:
        if slot.dirty and not slot.busy:
            slot.task = asyncio.create_task(self._run(slot), name=f"write {slot.tenant}")

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

    async def _run(self, slot: TenantSlot) -> None:
        delay = self._config.retry_initial_s
        conflicts = 0
        while slot.dirty:
            # One write slot per attempt (FIFO): events keep coalescing while this waits.
            self._waiting += 1
            try:
                await self._write_slots.acquire()
            finally:
                self._waiting -= 1
            self._in_flight += 1
            try:
                if conflicts:
                    # Another writer moved the tenant (a takeover race) or our baseline is
                    # stale: reload the stored versions and write our state on top of them.
                    checkpoint = await self._store.load_checkpoint(slot.tenant)
                    slot.version = checkpoint.version
                    slot.resource_versions = dict(checkpoint.resource_versions)
                await self._write_once(slot)
                delay, conflicts = self._config.retry_initial_s, 0
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
                self._write_slots.release()
            await asyncio.sleep(delay)  # back off without holding a write slot
            delay = min(delay * 2, self._config.retry_max_s)

    async def _write_once(self, slot: TenantSlot) -> None:
        started = time.perf_counter()
        assert slot.applied_through is not None
        offset = KafkaOffset(
            topic=slot.tp[0], partition=slot.tp[1], offset=slot.applied_through + 1
        )
        changed, events = set(slot.changed), slot.events
        slot.in_flight_from = _min(slot.in_flight_from, slot.dirty_from)
        slot.dirty, slot.dirty_from, slot.changed, slot.events = False, None, set(), 0
        try:
            with tracer.start_as_current_span(
                "translate tenant", context=slot.trace_context, attributes={"tenant": slot.tenant}
            ):
                trace_fields = context_to_fields()
                try:
                    plan = plan_write(
                        slot.objects,
                        changed=changed,
                        classes=self._classes_for(slot.tp),
                        resource_versions=slot.resource_versions,
                        options=self._config.options,
                        sealer=self._config.sealer,
                    )
                except NamingError as exc:
                    log.error("tenant.untranslatable", tenant=slot.tenant, error=str(exc))
                    slot.in_flight_from = None
                    return
                version = await self._store_plan(slot, plan, offset, trace_fields)
        except BaseException:
            # Not written: what this write held is pending again.
            slot.changed |= changed
            slot.events += events
            slot.dirty = True
            slot.dirty_from = _min(slot.in_flight_from, slot.dirty_from)
            slot.in_flight_from = None
            raise
        slot.in_flight_from = None
        diags = plan.translation.diagnostics
        log.info(
            "tenant.write",
            tenant=slot.tenant,
            partition=slot.tp[1],
            offset=offset.offset,
            version=version,
            events=events,
            upserts=len(plan.diff.upserts),
            removals=len(plan.diff.removals),
            inputs_changed=len(plan.input_upserts) + len(plan.input_removals),
            resources=len(plan.translation.resources),
            diagnostics=len(diags),
            diagnostic_list=[
                f"{d.severity} {d.object} {d.reason}: {d.message}"
                for d in diags[:MAX_LOGGED_DIAGNOSTICS]
            ],
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )

    async def _store_plan(
        self,
        slot: TenantSlot,
        plan: WritePlan,
        offset: KafkaOffset,
        trace_fields: Mapping[str, str],
    ) -> int:
        if not slot.registered:
            await self._inputs.add_tenant(slot.tp[0], slot.tp[1], slot.tenant)
            slot.registered = True
        try:
            version = await self._store.write_version(
                slot.tenant,
                plan.diff.upserts,
                plan.diff.removals,
                offset=offset,
                expected_version=slot.version,
                trace_fields=trace_fields,
            )
        except AnnounceError as exc:
            # Durable, only the change-stream entry is missing: announce it in full.
            log.warning("tenant.announce_failed", tenant=slot.tenant, error=str(exc))
            version = exc.version
            slot.version, slot.resource_versions = (
                version,
                apply_diff(slot.resource_versions, plan.diff),
            )
            await self._store.announce(slot.tenant, trace_fields=trace_fields)
        else:
            slot.version = version
            slot.resource_versions = apply_diff(slot.resource_versions, plan.diff)
        written = await self._inputs.write_inputs(
            slot.tenant, plan.input_upserts, plan.input_removals, offset=offset
        )
        if not written:
            log.warning("tenant.inputs_stale", tenant=slot.tenant, offset=offset.offset)
        slot.input_offset = max(slot.input_offset, offset.offset)
        return version


def _min(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)
