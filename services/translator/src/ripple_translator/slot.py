"""One owned tenant's write state, as three values the engine and the writer hand over whole.

- `Baseline` (immutable): what Redis holds for the tenant as far as this translator knows
  (tenant version, content versions, the Kafka position its stored inputs cover, whether it
  is registered with its partition, the position a fenced write learned). The writer replaces
  it after each write or reload; nothing changes it field by field.
- `Pending` (immutable): the events applied but not yet in a stored version (the keys they
  touched, their lowest offset, their trace contexts and propagation marks). Each event the
  engine applies is added to it (`TenantWriter.applied`); a write `take`s it as one value
  and, if the write fails, `put_back`s it (merged with what arrived meanwhile).
- `hosts.HostCache` (immutable): the last host arbitration, reused while nothing changed
  hands; only the arbiter computes a new one.

`TenantSlot` holds the three, the tenant's objects and its write task. The writer alone
changes it (its methods here, its fields); the engine creates slots (`loaded_slot`), hands
them to `ownership.Ownership` and reads their views (`dirty`, `busy`, `position`,
`pending_from`). The tenant's objects are changed in place by the event rules
(`partition_state.PartitionState.apply`) the engine runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from opentelemetry import context as otel_context
from opentelemetry import trace

from ripple_common.store_contract import Marks
from ripple_translator.hosts import HostCache
from ripple_translator.partition_state import ObjectKey, TenantObjects
from ripple_translator.store import Checkpoint, Diff, InputCheckpoint, apply_diff
from ripple_translator.store.model import ResourceKey
from ripple_translator.translate import Diagnostic

TopicPartition = tuple[str, int]
MAX_TRACE_CONTEXTS = 32  # per write: the parent and up to 31 span links


@dataclass(frozen=True, slots=True)
class EventTrace:
    """Where one event came from, for the write that stores it: its trace context (the
    write's span is a child of the first event's and links the others) and its propagation
    marks (`Marks`: observed, published, made in the API)."""

    context: otel_context.Context
    marks: Marks


@dataclass(frozen=True, slots=True, kw_only=True)
class Baseline:
    """The tenant as stored: the next write's expected version and the content versions it
    diffs against; `input_offset`: events below it are in the stored inputs (skipped on
    replay); `fenced_below`: the position a fenced write found stored (nothing is written
    from an earlier one); `registered`: the tenant is in its partition's tenant set."""

    version: int = 0
    resource_versions: Mapping[ResourceKey, str] = field(default_factory=dict)
    input_offset: int = 0
    fenced_below: int = 0
    registered: bool = False

    def written(self, version: int, diff: Diff) -> Baseline:
        """After `diff` was stored as `version`."""
        return replace(
            self, version=version, resource_versions=apply_diff(self.resource_versions, diff)
        )

    def stored(self, checkpoint: Checkpoint) -> Baseline:
        """The version and content versions read back from the store."""
        return replace(
            self,
            version=checkpoint.version,
            resource_versions=dict(checkpoint.resource_versions),
        )


@dataclass(frozen=True, slots=True)
class Pending:
    """Events applied to the tenant but not yet in a stored version (empty: nothing to
    write). `first`: the lowest offset among them."""

    first: int | None = None
    changed: frozenset[ObjectKey] = frozenset()
    events: int = 0
    # Trace contexts of the events (oldest first, at most MAX_TRACE_CONTEXTS): the write's
    # span is a child of the first and links the others.
    contexts: tuple[otel_context.Context, ...] = ()
    # Propagation marks of the oldest event, carried to the change entry (`Marks`).
    marks: Marks | None = None

    def __bool__(self) -> bool:
        return self.first is not None

    def marked(self, offset: int, keys: Iterable[ObjectKey]) -> Pending:
        return replace(
            self,
            first=offset if self.first is None else self.first,
            changed=self.changed | frozenset(keys),
            events=self.events + 1,
        )

    def traced(self, trace: EventTrace) -> Pending:
        contexts = self.contexts
        if len(contexts) < MAX_TRACE_CONTEXTS and span_context(trace.context).is_valid:
            contexts = (*contexts, trace.context)
        return replace(self, contexts=contexts, marks=self.marks or trace.marks)

    def merged(self, newer: Pending) -> Pending:
        """This batch (not written) followed by `newer` (arrived while it was in flight)."""
        firsts = [o for o in (self.first, newer.first) if o is not None]
        return Pending(
            first=min(firsts) if firsts else None,
            changed=self.changed | newer.changed,
            events=self.events + newer.events,
            contexts=(self.contexts + newer.contexts)[:MAX_TRACE_CONTEXTS],
            marks=self.marks if self.marks not in (None, Marks()) else newer.marks,
        )


@dataclass(slots=True, kw_only=True)
class TenantSlot:
    """One owned tenant: its objects (`applied_through`: the last offset applied to them),
    its stored baseline, its pending and in-flight batches, its host cache, its write task."""

    tenant: str
    tp: TopicPartition
    objects: TenantObjects
    baseline: Baseline = field(default_factory=Baseline)
    applied_through: int | None = None
    pending: Pending = field(default_factory=Pending)
    in_flight: Pending | None = None
    hosts: HostCache = field(default_factory=HostCache)
    # The diagnostics of the last write: each new one is logged once, and its resolution.
    diagnostics: frozenset[Diagnostic] = frozenset()
    task: asyncio.Task[None] | None = None

    # -- changes (the writer's alone) -------------------------------------------------------

    def applied(
        self, offset: int, *, keys: Iterable[ObjectKey] = (), trace: EventTrace | None = None
    ) -> None:
        """The event at `offset` changed the tenant's objects (`keys`) or its cluster inputs
        (no keys); `trace`: where the event came from, if it was the tenant's own."""
        self.applied_through = offset
        pending = self.pending.marked(offset, keys)
        self.pending = pending.traced(trace) if trace is not None else pending

    def retranslate(self, *, hosts_stale: bool) -> bool:
        """Mark the tenant for a write at its stored position (nothing new applied: the write
        translates what it holds again); `hosts_stale`: claim every host again. False when
        it was never written (its first event claims its hosts anyway)."""
        offset = self.applied_through
        if offset is None:
            offset = self.baseline.input_offset - 1  # keep covering the stored position
        if offset < 0:
            return False
        if hosts_stale:
            self.hosts = self.hosts.made_stale()
        self.applied(offset)
        return True

    def take(self) -> Pending:
        """The pending batch, now in flight (the slot's pending starts empty)."""
        batch, self.pending = self.pending, Pending()
        self.in_flight = batch
        return batch

    def put_back(self, batch: Pending) -> None:
        """`batch` was not written: it is pending again, before what arrived meanwhile."""
        self.pending = batch.merged(self.pending)
        self.in_flight = None

    def landed(self) -> None:
        """The batch in flight is written (or given up: untranslatable)."""
        self.in_flight = None

    def covered(self) -> None:
        """Everything pending is in the stored version already: nothing to write."""
        self.pending = Pending()

    def reload(self, checkpoint: Checkpoint, inputs: InputCheckpoint, *, fenced_below: int) -> bool:
        """Take the stored version (and the stored inputs, if they cover more than this slot
        applied) as the baseline after a fenced write. Returns whether the inputs replaced
        the objects."""
        baseline = replace(
            self.baseline.stored(checkpoint),
            fenced_below=max(self.baseline.fenced_below, fenced_below),
        )
        self.baseline, self.hosts = baseline, self.hosts.reloaded()
        stored = inputs.offset
        if stored is None or (stored.topic, stored.partition) != self.tp:
            return False
        if stored.offset <= self.position:
            return False
        self.objects = TenantObjects(self.tenant, dict(inputs.objects))
        self.baseline = replace(baseline, input_offset=stored.offset)
        self.applied_through = stored.offset - 1
        return True

    # -- views -----------------------------------------------------------------------------

    @property
    def dirty(self) -> bool:
        return bool(self.pending)

    @property
    def version(self) -> int:
        return self.baseline.version

    @property
    def input_offset(self) -> int:
        return self.baseline.input_offset

    @property
    def registered(self) -> bool:
        return self.baseline.registered

    @property
    def pending_from(self) -> int | None:
        """The lowest offset applied here but not yet durable (None: all durable)."""
        firsts = [b.first for b in (self.pending, self.in_flight) if b and b.first is not None]
        return min(firsts) if firsts else None

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done()

    @property
    def position(self) -> int:
        """The Kafka position (next offset) the tenant's objects cover."""
        if self.applied_through is not None:
            return max(self.applied_through + 1, self.baseline.input_offset)
        return self.baseline.input_offset


def loaded_slot(
    checkpoint: Checkpoint, inputs: InputCheckpoint, tp: TopicPartition, *, registered: bool
) -> TenantSlot:
    """A loaded tenant's slot; its inputs count only if they cover this partition;
    `registered`: the tenant is in the partition's stored tenant set already."""
    input_offset = 0
    if inputs.offset is not None and (inputs.offset.topic, inputs.offset.partition) == tp:
        input_offset = inputs.offset.offset
    return TenantSlot(
        tenant=checkpoint.tenant,
        tp=tp,
        objects=TenantObjects(checkpoint.tenant, dict(inputs.objects)),
        baseline=Baseline(
            version=checkpoint.version,
            resource_versions=dict(checkpoint.resource_versions),
            input_offset=input_offset,
            registered=registered,
        ),
    )


def span_context(ctx: otel_context.Context) -> trace.SpanContext:
    """The span context `ctx` carries (invalid: none)."""
    return trace.get_current_span(ctx).get_span_context()
