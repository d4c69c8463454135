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

from ripple_common.sealing import Sealer
from ripple_common.store_contract import Marks
from ripple_common.telemetry import context_to_fields
from ripple_translator.hosts import HostOutcome, HostPolicy, decide, wanted_hosts
from ripple_translator.inputs import InputCheckpoint, InputStore
from ripple_translator.metrics import TranslatorStats
from ripple_translator.scheduling import FairQueue, pace_after
from ripple_translator.seal import seal_secrets
from ripple_translator.store import (
    AnnounceError,
    Checkpoint,
    Diff,
    HostClaim,
    HostRegistry,
    HostState,
    KafkaOffset,
    PositionFencedError,
    TenantStore,
    VersionConflictError,
    apply_diff,
    diff_resources,
)
from ripple_translator.store.model import ResourceKey
from ripple_translator.tenants import JsonObject, ObjectKey, TenantObjects, encode_key
from ripple_translator.translate import Diagnostic, TranslateOptions, Translation, translate
from ripple_translator.translate.naming import NamingError
from ripple_translator.unseal import open_secret

log = structlog.get_logger("ripple_translator.pipeline")
tracer = trace.get_tracer("ripple_translator")

TopicPartition = tuple[str, int]
# Receives each written tenant's diagnostics (e.g. the Kubernetes Event reporter); must not block.
DiagnosticSink = Callable[[str, Sequence[Diagnostic]], None]
# Re-translates a tenant after a delay (s): a host it lost is held for its releasing owner.
WakeLater = Callable[[str, float], None]
MAX_LOGGED_DIAGNOSTICS = 20
MAX_TRACE_CONTEXTS = 32  # per write: the parent and up to 31 span links
MAX_TRACED_OBJECTS = 20  # object keys named on a write span
HOLD_RECHECK_MARGIN_S = 0.05  # claim again this long after a lost host's hold ends
GIL_SWITCH_S = 0.0005  # the interpreter's switch interval once translations run in a thread


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
    # Trace contexts of the events pending a write (oldest first, at most MAX_TRACE_CONTEXTS):
    # the write's span is a child of the first and links the others.
    trace_contexts: list[otel_context.Context] = field(default_factory=list)
    # Propagation marks of the oldest event pending a write (observed, published, the API's
    # time of its change), carried to the change entry (`Marks`).
    marks: Marks | None = None
    task: asyncio.Task[None] | None = None
    # Host ownership: what was recorded last (None: not loaded yet) and the hosts withheld by
    # the last arbitration (the first guess of the next translation).
    host_states: dict[str, HostState] | None = None
    withheld: frozenset[str] = frozenset()
    # The diagnostics of the last write: each new one is logged once, and its resolution.
    diagnostics: frozenset[Diagnostic] = frozenset()
    # The last arbitration and what it claimed: reused while the tenant asks for the same
    # hosts and no notice says a host changed hands (`hosts_stale`).
    last_claims: tuple[tuple[str, object, object], ...] | None = None
    last_hosts: HostOutcome | None = None
    hosts_stale: bool = True
    # The outcome of the last claim of each host (reused for the hosts whose claim did not
    # change while no notice says a host changed hands).
    claimed: dict[str, HostClaim] = field(default_factory=dict)
    # The Kafka position (next offset) the tenant's stored version covers when a write was
    # fenced: nothing is written from an earlier position (its events are in that version).
    fenced_below: int = 0

    def traced(
        self,
        ctx: otel_context.Context,
        *,
        observed_ns: int | None = None,
        published_ms: int | None = None,
        api_ns: int | None = None,
    ) -> None:
        """An event carrying the trace context `ctx` (observed and published at those times,
        its change made in the API at `api_ns`) is pending this tenant's next write."""
        if len(self.trace_contexts) < MAX_TRACE_CONTEXTS and _span_context(ctx).is_valid:
            self.trace_contexts.append(ctx)
        if self.marks is None:
            published_ns = published_ms * 1_000_000 if published_ms is not None else None
            self.marks = Marks(observed_ns=observed_ns, published_ns=published_ns, api_ns=api_ns)

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

    @property
    def position(self) -> int:
        """The Kafka position (next offset) the tenant's objects cover."""
        if self.applied_through is not None:
            return max(self.applied_through + 1, self.input_offset)
        return self.input_offset

    def covered(self) -> None:
        """Everything pending is in the stored version already: nothing to write."""
        self.dirty, self.dirty_from, self.changed, self.events = False, None, set(), 0
        self.trace_contexts, self.marks = [], None

    def reload(self, checkpoint: Checkpoint, inputs: InputCheckpoint, *, fenced_below: int) -> bool:
        """Take the stored version (and the stored inputs, if they cover more than this slot
        applied) as the baseline after a fenced write. Returns whether the inputs replaced
        the objects."""
        self.version = checkpoint.version
        self.resource_versions = dict(checkpoint.resource_versions)
        self.fenced_below = max(self.fenced_below, fenced_below)
        self.host_states, self.claimed, self.hosts_stale = None, {}, True
        stored = inputs.offset
        if stored is None or (stored.topic, stored.partition) != self.tp:
            return False
        if stored.offset <= self.position:
            return False
        self.objects = TenantObjects(self.tenant, dict(inputs.objects))
        self.input_offset = stored.offset
        self.applied_through = stored.offset - 1
        return True


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
    after_write: Callable[[str, int], None] | None = None
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
        inputs: InputStore,
        classes_for: Callable[[TopicPartition], tuple[JsonObject, ...]],
        config: WriterConfig,
        hosts: HostRegistry | None = None,
        on_diagnostics: DiagnosticSink | None = None,
        stats: TranslatorStats | None = None,
        owns: Callable[[TenantSlot], bool] = lambda _: True,
        wake_later: WakeLater | None = None,
    ) -> None:
        self._store = store
        self._inputs = inputs
        self._classes_for = classes_for
        # Whether the slot's partition is still ours: a write scheduled after its revocation
        # began must not run (the partition's state may be gone, and another instance owns
        # the tenant next; it re-applies what was not written).
        self._owns = owns
        self._config = config
        self._hosts = hosts
        self._wake_later = wake_later
        self._on_diagnostics = on_diagnostics
        self.stats = stats or TranslatorStats()
        # Write slots, granted in fair order (`scheduling.FairQueue`).
        self._write_slots = WriteSlots(config.max_concurrent_writes)
        self._in_flight = 0
        self._waiting = 0
        # Translations of big tenants, one at a time, off the event loop.
        self._translations: ThreadPoolExecutor | None = None

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

    def close(self) -> None:
        """Stop the translation thread (after the writes are done)."""
        if self._translations is not None:
            self._translations.shutdown(wait=False, cancel_futures=True)
            self._translations = None

    async def _run(self, slot: TenantSlot) -> None:
        delay = self._config.retry_initial_s
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
                if not self._owns(slot):
                    log.info("tenant.write_dropped", tenant=slot.tenant, partition=slot.tp[1])
                    slot.dirty = False
                    return
                if slot.position < slot.fenced_below:
                    # The stored version covers a later position: what is pending is in it.
                    slot.covered()
                    return
                if conflicts:
                    # Another writer moved the tenant (a takeover race) or our baseline is
                    # stale: reload the stored versions and write our state on top of them
                    # (ours covers a later position: the store fences an earlier one).
                    checkpoint = await self._store.load_checkpoint(slot.tenant)
                    slot.version = checkpoint.version
                    slot.resource_versions = dict(checkpoint.resource_versions)
                await self._write_once(slot)
                delay, conflicts = self._config.retry_initial_s, 0
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
            await asyncio.sleep(delay)  # back off without holding a write slot
            delay = min(delay * 2, self._config.retry_max_s)

    async def _reload(self, slot: TenantSlot, fenced: PositionFencedError) -> None:
        """After a fenced write: the stored version and inputs become the baseline."""
        checkpoint, inputs = await asyncio.gather(
            self._store.load_checkpoint(slot.tenant), self._inputs.load_inputs(slot.tenant)
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
        changed, events = set(slot.changed), slot.events
        contexts, slot.trace_contexts = slot.trace_contexts, []
        marks, slot.marks = slot.marks or Marks(), None
        slot.in_flight_from = _min(slot.in_flight_from, slot.dirty_from)
        slot.dirty, slot.dirty_from, slot.changed, slot.events = False, None, set(), 0
        try:
            with tracer.start_as_current_span(
                "translator.write",
                # A child of the first pending event's span (a fresh trace without one); the
                # events coalesced into the same write are links.
                context=contexts[0] if contexts else otel_context.Context(),
                links=[trace.Link(_span_context(ctx)) for ctx in contexts[1:]],
                attributes=_write_attributes(slot, changed, events=events, offset=offset),
            ) as span:
                trace_fields = context_to_fields()
                try:
                    plan = await self._plan_off_loop(slot, changed)
                except NamingError as exc:
                    log.error("tenant.untranslatable", tenant=slot.tenant, error=str(exc))
                    span.set_status(trace.StatusCode.ERROR, str(exc))
                    slot.in_flight_from = None
                    return
                hosts: HostOutcome | None = None
                if self._hosts is not None:
                    hosts = await self._arbitrate(self._hosts, slot, plan)
                    if hosts.withheld != slot.withheld:
                        slot.withheld = hosts.withheld
                        plan = await self._plan_off_loop(slot, changed)
                written = replace(marks, written_ns=time.time_ns())
                version = await self._store_plan(
                    slot, plan, offset, {**trace_fields, **written.fields()}
                )
                if self._config.after_write is not None:
                    self._config.after_write(slot.tenant, version)
                if hosts is not None and self._hosts is not None:
                    await self._settle_hosts(self._hosts, slot, hosts)
                span.set_attributes(
                    {
                        "ripple.version": version,
                        "ripple.upserts": len(plan.diff.upserts),
                        "ripple.removals": len(plan.diff.removals),
                    }
                )
        except BaseException:
            # Not written: what this write held is pending again.
            slot.changed |= changed
            slot.events += events
            slot.trace_contexts = (contexts + slot.trace_contexts)[:MAX_TRACE_CONTEXTS]
            slot.marks = marks if marks != Marks() else slot.marks
            slot.dirty = True
            slot.dirty_from = _min(slot.in_flight_from, slot.dirty_from)
            slot.in_flight_from = None
            raise
        slot.in_flight_from = None
        diags = plan.translation.diagnostics + (hosts.diagnostics if hosts else ())
        duration = time.perf_counter() - started
        self.stats.written(
            events=events, changed=bool(plan.diff), diagnostics=len(diags), seconds=duration
        )
        if diags and self._on_diagnostics is not None:
            self._on_diagnostics(slot.tenant, diags)
        _log_diagnostic_changes(slot, diags)
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
            withheld_hosts=sorted(slot.withheld)[:MAX_LOGGED_DIAGNOSTICS],
            duration_ms=round(duration * 1000, 2),
        )

    async def outdated(self, slot: TenantSlot) -> bool:
        """Whether translating what `slot` holds now gives other resources than it stored
        (an untranslatable tenant is left to its next write, which reports it). A big tenant
        is translated in the translation thread (an assignment checks every tenant it loads:
        on the event loop, a big one held the consume loop and every write after a
        takeover)."""
        if not self._owns(slot):
            return False
        try:
            return bool((await self._plan_off_loop(slot, ())).diff)
        except NamingError:
            return False

    def _plan(
        self,
        slot: TenantSlot,
        changed: Iterable[ObjectKey],
        *,
        objects: TenantObjects | None = None,
        resource_versions: Mapping[ResourceKey, str] | None = None,
        classes: tuple[JsonObject, ...] | None = None,
    ) -> WritePlan:
        options = self._config.options
        if self._hosts is not None or self._config.host_policy.tenant_domain:
            allowed = _HostFilter(slot.tenant, self._config.host_policy, slot.withheld)
            options = replace(options, host_allowed=allowed)
        return plan_write(
            slot.objects if objects is None else objects,
            changed=changed,
            classes=self._classes_for(slot.tp) if classes is None else classes,
            resource_versions=slot.resource_versions
            if resource_versions is None
            else resource_versions,
            options=options,
            sealer=self._config.sealer,
        )

    async def _plan_off_loop(self, slot: TenantSlot, changed: Iterable[ObjectKey]) -> WritePlan:
        """`_plan`, in the translation thread for a big tenant: on a snapshot of its objects
        and stored versions (the engine keeps applying events to the slot meanwhile)."""
        if len(slot.objects.objects) < self._config.offload_objects:
            return self._plan(slot, changed)
        objects = TenantObjects(slot.tenant, dict(slot.objects.objects))
        versions = dict(slot.resource_versions)
        classes = self._classes_for(slot.tp)
        keys = tuple(changed)
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
                slot,
                keys,
                objects=objects,
                resource_versions=versions,
                classes=classes,
            ),
        )

    async def _arbitrate(
        self, hosts: HostRegistry, slot: TenantSlot, plan: WritePlan
    ) -> HostOutcome:
        """Claim the hosts the translation asks for (one pipelined round trip)."""
        asked = plan.translation.claims
        wanted = wanted_hosts(slot.tenant, asked, self._config.host_policy)
        allowed = set(wanted)
        key = tuple((a.host, a.created, a.ingress) for a in asked if a.host in allowed)
        previous_key, stale = slot.last_claims, slot.hosts_stale
        if not stale and slot.last_hosts is not None and key == slot.last_claims:
            # Nothing to claim anew: ownership only changes hands with a notice to us.
            return HostOutcome(
                withheld=slot.last_hosts.withheld,
                diagnostics=slot.last_hosts.diagnostics,
                stop_serving=frozenset(),
                release=frozenset(),
                notices=(),
                states=slot.last_hosts.states,
            )
        slot.hosts_stale = True
        slot.last_claims = key
        if slot.host_states is None:
            loaded = await hosts.load_host_states([slot.tenant])
            slot.host_states = dict(loaded.get(slot.tenant, {}))
        new = [h for h in wanted if h not in slot.host_states]
        pending: dict[str, HostState] | None = None
        if new:
            # Record new hosts before claiming them (as lost until decided; same round
            # trip), so a crash after the claim cannot leak a claim nobody releases.
            pending = {**slot.host_states, **dict.fromkeys(new, HostState.LOST)}
        # Only the hosts whose claim changed are claimed again, unless a notice (or a
        # reload) made every outcome stale: ownership only changes hands with a notice. A
        # host the tenant does not serve (lost, held for its owner, or still served by
        # another) is claimed again at every write, so its diagnostic says who has it now
        # (an owner taking back a held host sends no notice): losers are few, a flooding
        # tenant's served hosts are not claimed again.
        unchanged = set(key) & set(previous_key or ()) if not stale else set()
        reuse = {k[0] for k in unchanged if k[0] in slot.claimed and slot.claimed[k[0]].servable}
        to_claim = [h for h in wanted if h not in reuse]
        claimed = await hosts.claim(slot.tenant, to_claim, record=pending)
        if pending is not None:
            slot.host_states = pending
        outcomes = {h: replace(slot.claimed[h], promoted=None) for h in reuse}
        outcomes.update(claimed)
        slot.claimed = outcomes
        return decide(slot.tenant, asked=asked, outcomes=outcomes, previous=slot.host_states)

    async def _settle_hosts(
        self, hosts: HostRegistry, slot: TenantSlot, outcome: HostOutcome
    ) -> None:
        """After the version is written: withdraw and release hosts, record the states,
        notify the tenants whose hosts changed hands."""
        notices = await hosts.withdraw(
            slot.tenant,
            stop_serving=outcome.stop_serving,
            release=outcome.release,
            hold_s=self._config.host_release_grace_s,
        )
        if outcome.states != slot.host_states:
            await hosts.save_host_states(slot.tenant, outcome.states)
        slot.host_states = dict(outcome.states)
        slot.last_hosts, slot.hosts_stale = outcome, False
        if outcome.recheck_after_s is not None and self._wake_later is not None:
            # A lost host is held for the owner that released it: claim again when the
            # hold ends (a little after, so Redis has expired it).
            self._wake_later(slot.tenant, outcome.recheck_after_s + HOLD_RECHECK_MARGIN_S)
        notices = [*outcome.notices, *notices]
        if notices:
            await hosts.notify(notices)
            log.info(
                "hosts.notified",
                tenant=slot.tenant,
                notices=[f"{n.tenant} {n.why} {n.host}" for n in notices[:MAX_LOGGED_DIAGNOSTICS]],
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


class WriteSlots:
    """`capacity` write slots, granted to waiting tenants in `FairQueue` order; each tenant
    releases its slot with the cost (seconds) of what it did with it."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a writer needs at least one write slot")
        self._free = capacity
        self._queue = FairQueue()
        self._waiters: dict[str, asyncio.Future[None]] = {}

    async def acquire(self, tenant: str) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[tenant] = waiter
        self._queue.push(tenant)
        self._grant()
        try:
            await waiter
        except asyncio.CancelledError:
            if self._waiters.get(tenant) is waiter:
                del self._waiters[tenant]
                self._queue.withdraw(tenant)
            elif waiter.done() and not waiter.cancelled():
                self.release(tenant, cost=0.0)  # granted as it was cancelled
            raise

    def release(self, tenant: str, *, cost: float) -> None:
        self._queue.charge(tenant, max(cost, 0.0))
        self._free += 1
        self._grant()

    def _grant(self) -> None:
        while self._free and len(self._queue):
            tenant = self._queue.pop()
            waiter = self._waiters.pop(tenant)
            self._free -= 1
            waiter.set_result(None)


def _log_diagnostic_changes(slot: TenantSlot, diags: Iterable[Diagnostic]) -> None:
    """One log line per diagnostic when it first appears (not on every version) and one when
    it is gone; the `tenant.write` line lists the current ones."""
    current = frozenset(diags)
    for d in sorted(current - slot.diagnostics):
        log.warning(
            "diagnostic",
            tenant=slot.tenant,
            kind=d.object.kind,
            namespace=d.object.namespace,
            name=d.object.name,
            severity=str(d.severity),
            reason=str(d.reason),
            message=d.message,
        )
    for d in sorted(slot.diagnostics - current):
        log.info(
            "diagnostic.resolved",
            tenant=slot.tenant,
            kind=d.object.kind,
            namespace=d.object.namespace,
            name=d.object.name,
            reason=str(d.reason),
        )
    slot.diagnostics = current


@dataclass(frozen=True, slots=True)
class _HostFilter:
    """The translation's `host_allowed`: the policy allows it and arbitration did not
    withhold it."""

    tenant: str
    policy: HostPolicy
    withheld: frozenset[str]

    def __call__(self, host: str) -> bool:
        return host not in self.withheld and self.policy.allows(self.tenant, host)


def _span_context(ctx: otel_context.Context) -> trace.SpanContext:
    return trace.get_current_span(ctx).get_span_context()


def _write_attributes(
    slot: TenantSlot, changed: Iterable[ObjectKey], *, events: int, offset: KafkaOffset
) -> dict[str, AttributeValue]:
    """The write span's attributes: tenant, the changed objects (kind/namespace/name), and
    where in Kafka the write stands."""
    keys = sorted(changed)
    attributes: dict[str, AttributeValue] = {
        "ripple.tenant": slot.tenant,
        "ripple.events": events,
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


def _min(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)
