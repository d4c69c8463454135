"""End of propagation: which applied changes each ADS stream has pushed and which of those
its Envoy has ACKed, the propagation histogram, SLA breaches, and the per-push / per-ACK spans.

Bookkeeping (pure, no I/O):
- `Propagation` holds the changes the Redis follower applied (tenant, version, trace fields,
  marks, apply time) for `ttl_s`, indexed by the (type, name) of every resource they touched.
- `StreamPropagation` is one stream's view. `pushed(response)`: every tracked change touching
  a resource of the response (upserted or removed), applied after the stream opened, becomes
  pending on this stream with the response's nonce. `answered(step)`: an ACK settles its nonce,
  a NACK fails the changes it carried. A change completes on the stream once every response
  that carried it was ACKed and the stream has no response in flight (make before break sends
  a change's routes only after its clusters were ACKed, so "nothing in flight" is what tells
  the last ACK). Limit: a resource the client subscribes to only after an ACK (a new
  RouteConfiguration named by a new scope) can end the measure one round trip early.

Reporting (`Reporter`; `TraceReporter` in production): one `xds.push` span per response that
carries changes (a child of the first change's trace, linked to the others; from the write
to the ACK/NACK), one `xds.ack` span per change and node (a child of the change's trace, from
the first push to the ACK, with the node id and the stage durations), the histogram of
`PropagationMetrics` and an `sla breach` log line with the trace id when the total exceeds the
SLA.

Stages (seconds, from the marks; each mark is clamped to be no earlier than the one before,
so the stages add up to the total exactly): observe_publish (watcher saw the event -> its
Kafka record timestamp), publish_write (-> the translator hands the version to Redis),
write_apply (-> xds applied it), apply_ack (-> Envoy ACKed), total (observed -> ACK). Marks
come from different hosts' clocks in production; here all run on one machine.

API time: api_ack (the API server's own time of the change -> ACK) starts from the entry's
`api_ns` mark (the object's creationTimestamp / newest managedFields time / deletionTimestamp,
whole seconds, so it may over-count by up to 1 s), else from the observation (a deletion
without deletionTimestamp, an older watcher); it counts time the change waited while the
watcher or anything after it was down, which `total` does not. An API time later than the ACK
(clock skew between the API server and xds) reads as 0 and is counted
(`ripple_xds_propagation_api_clock_skew_total`). Both `total` and `api_ack` are held against
the SLA: a breach of either is logged (`sla breach`, naming which) and counted."""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from opentelemetry import trace

from ripple_common.health import Histogram, PromText
from ripple_common.resources import TypeUrl
from ripple_common.store_contract import ChangeEntry, Marks
from ripple_common.telemetry import context_from_fields
from ripple_xds.ports import Response, StreamCallbacks
from ripple_xds.protocol import Ack, Nack, Step
from ripple_xds.snapshot import CacheChange, Entry

log = structlog.get_logger(__name__)

STAGES: tuple[str, ...] = ("observe_publish", "publish_write", "write_apply", "apply_ack", "total")
# API time -> ACK (see the module doc): a stage label of the same histogram, not part of `total`.
API_STAGE = "api_ack"
# Histogram bucket upper bounds, seconds (+Inf implied).
BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
HISTOGRAM = "propagation_seconds"  # ripple_xds_propagation_seconds

Key = tuple[TypeUrl, str]
Clock = Callable[[], int]


def tenant_bucket(tenant: str, buckets: int) -> int:
    """A stable small number for `tenant` (the same on every replica and process), so the
    histogram's labels stay bounded whatever the number of tenants."""
    digest = hashlib.blake2b(tenant.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % max(buckets, 1)


def trace_id_of(fields: Mapping[str, str]) -> str | None:
    """The trace id of a W3C `traceparent` field (None when absent or malformed)."""
    parts = fields.get("traceparent", "").split("-")
    if len(parts) == 4 and len(parts[1]) == 32:
        return parts[1]
    return None


@dataclass(frozen=True, slots=True)
class Change:
    """One applied change entry, tracked until its pushes were ACKed (or it expired)."""

    seq: int
    tenant: str
    version: int
    trace: Mapping[str, str]
    marks: Marks
    applied_ns: int

    @property
    def trace_id(self) -> str | None:
        return trace_id_of(self.trace)


@dataclass(frozen=True, slots=True)
class Completed:
    """A change the node `node` ACKed: when it was first pushed and when ACKed."""

    change: Change
    node: str
    first_push_ns: int
    acked_ns: int

    def stages(self) -> dict[str, float]:
        """Seconds per stage (see the module doc); stages whose marks are missing are left
        out, and `total` needs the observation mark."""
        marks = self.change.marks
        points: list[tuple[str, int | None]] = [
            ("observed", marks.observed_ns),
            ("published", marks.published_ns),
            ("written", marks.written_ns),
            ("applied", self.change.applied_ns),
            ("acked", self.acked_ns),
        ]
        # Clamp each present mark to be no earlier than the previous present one.
        clamped: list[tuple[str, int | None]] = []
        floor: int | None = None
        for name, mark in points:
            value = mark if mark is None or floor is None else max(mark, floor)
            floor = value if value is not None else floor
            clamped.append((name, value))
        out: dict[str, float] = {}
        for stage, (_, start), (_, end) in zip(STAGES[:4], clamped[:-1], clamped[1:], strict=True):
            if start is not None and end is not None:
                out[stage] = (end - start) / 1e9
        observed, acked = clamped[0][1], clamped[-1][1]
        if observed is not None and acked is not None:
            out["total"] = (acked - observed) / 1e9
        return out

    def api_stage(self) -> dict[str, float]:
        """{API_STAGE: seconds from the API's time of the change (else the observation) to
        the ACK, as clamped in `stages`; 0 when the API time is later (`api_skewed`)}; empty
        without either mark."""
        marks = self.change.marks
        start = marks.api_ns if marks.api_ns is not None else marks.observed_ns
        if start is None:
            return {}
        return {API_STAGE: max(self._acked_clamped() - start, 0) / 1e9}

    @property
    def api_skewed(self) -> bool:
        """The API time is later than the ACK: the clocks disagree (api_ack reads 0)."""
        api = self.change.marks.api_ns
        return api is not None and api > self._acked_clamped()

    def _acked_clamped(self) -> int:
        """The ACK mark as `stages` clamps it (no earlier than any earlier mark)."""
        marks = self.change.marks
        points = (marks.observed_ns, marks.published_ns, marks.written_ns, self.change.applied_ns)
        return max([self.acked_ns, *(p for p in points if p is not None)])


@dataclass(slots=True)
class Push:
    """A response written on a stream, awaiting its ACK/NACK; `handle` is the reporter's
    (its span)."""

    nonce: str
    type_url: TypeUrl
    at_ns: int
    resources: int
    changes: list[Change]
    handle: object = None


class Reporter(Protocol):
    """What becomes of the bookkeeping: spans, metrics, logs."""

    def push_started(self, push: Push, *, node: str) -> None: ...

    def push_ended(self, push: Push, *, node: str, outcome: str, at_ns: int) -> None: ...

    def completed(self, done: Completed, *, last_push: Push) -> None: ...

    def failed(self, change: Change, *, node: str, error: str) -> None: ...


class NullReporter:
    def push_started(self, push: Push, *, node: str) -> None:
        pass

    def push_ended(self, push: Push, *, node: str, outcome: str, at_ns: int) -> None:
        pass

    def completed(self, done: Completed, *, last_push: Push) -> None:
        pass

    def failed(self, change: Change, *, node: str, error: str) -> None:
        pass


class Propagation:
    """The changes applied in the last `ttl_s`, by the resources they touched (shared by the
    streams of one server; not thread-safe: the event loop's)."""

    def __init__(
        self,
        *,
        reporter: Reporter | None = None,
        ttl_s: float = 300.0,
        per_name: int = 8,
        clock: Clock = time.time_ns,
    ) -> None:
        self.reporter: Reporter = reporter if reporter is not None else NullReporter()
        # Called with every NACK of every stream (e.g. `https.HttpsFeed.nacked`, which finds
        # the tenant at fault when Envoy rejects the shared HTTPS listener).
        self.nack_listeners: list[Callable[[Nack], object]] = []
        self._ttl_ns = int(ttl_s * 1e9)
        self._per_name = per_name
        self._clock = clock
        self._seq = 0
        self._changes: deque[tuple[Change, tuple[Key, ...]]] = deque()
        self._by_type: dict[TypeUrl, dict[str, list[Change]]] = {}
        # The open streams' bookkeeping, read by `status.replica_status` (/debug/nodes).
        self.streams: set[StreamPropagation] = set()

    @property
    def seq(self) -> int:
        """The sequence number of the last change tracked."""
        return self._seq

    @property
    def oldest_seq(self) -> int:
        return self._changes[0][0].seq if self._changes else self._seq + 1

    def __len__(self) -> int:
        return len(self._changes)

    def now(self) -> int:
        return self._clock()

    def applied(self, entry: ChangeEntry, change: CacheChange | None) -> Change | None:
        """The follower applied `entry`; `change` is what the cache changed (None: nothing,
        so nothing will be pushed for it and it is not tracked)."""
        now = self._clock()
        self._expire(now)
        if change is None or not entry.tenant:
            return None
        keys = tuple((t, n) for t, names in change.names.items() for n in names)
        if not keys:
            return None
        self._seq += 1
        tracked = Change(
            seq=self._seq,
            tenant=entry.tenant,
            version=entry.version,
            trace=dict(entry.trace),
            marks=entry.marks,
            applied_ns=now,
        )
        self._changes.append((tracked, keys))
        for type_url, name in keys:
            held = self._by_type.setdefault(type_url, {}).setdefault(name, [])
            held.append(tracked)
            if len(held) > self._per_name:
                del held[0]
        return tracked

    def nacked(self, nack: Nack) -> None:
        """A client rejected a response: tell the NACK listeners."""
        for listener in self.nack_listeners:
            listener(nack)

    def changes_for(self, key: Key) -> Sequence[Change]:
        return self._by_type.get(key[0], {}).get(key[1], ())

    def by_name(self, type_url: TypeUrl) -> Mapping[str, list[Change]]:
        """The tracked changes of one type, by resource name."""
        return self._by_type.get(type_url, {})

    def stream(self, *, mode: str = "") -> StreamPropagation:
        """The bookkeeping of a stream opening now (it measures changes applied from now)."""
        stream = StreamPropagation(self, mode=mode)
        self.streams.add(stream)
        return stream

    def stream_opened(self, *, mode: str, peer: str) -> StreamPropagation:
        """`ports.Callbacks`: the server observes each stream's timing through this."""
        return self.stream(mode=mode)

    def _expire(self, now: int) -> None:
        while self._changes and now - self._changes[0][0].applied_ns > self._ttl_ns:
            old, keys = self._changes.popleft()
            for type_url, name in keys:
                by_name = self._by_type.get(type_url, {})
                held = by_name.get(name)
                if held is None:
                    continue
                held[:] = [c for c in held if c.seq != old.seq]
                if not held:
                    del by_name[name]
                    if not by_name:
                        del self._by_type[type_url]


class _Response(Protocol):
    @property
    def type_url(self) -> TypeUrl: ...

    @property
    def nonce(self) -> str: ...

    @property
    def resources(self) -> tuple[Entry, ...]: ...


class _Answers(Protocol):
    @property
    def acks(self) -> tuple[Ack, ...]: ...

    @property
    def nacks(self) -> tuple[Nack, ...]: ...


@dataclass(slots=True)
class _Pending:
    change: Change
    first_push_ns: int
    nonces: set[str] = field(default_factory=set)
    last_push: Push | None = None


@dataclass(frozen=True, slots=True)
class TenantAck:
    """The newest version of a tenant a stream's Envoy ACKed, and when."""

    version: int
    at_ns: int


@dataclass(frozen=True, slots=True)
class TenantNack:
    """A tenant's version a stream's Envoy rejected (until a later version is ACKed)."""

    version: int
    type_url: TypeUrl
    error: str
    at_ns: int
    written_ns: int


class StreamPropagation(StreamCallbacks):
    """One stream's changes pushed and not yet ACKed (see the module doc); the server calls
    it as the stream's `ports.StreamCallbacks`."""

    def __init__(self, tracker: Propagation, *, mode: str = "") -> None:
        self._tracker = tracker
        self._reporter = tracker.reporter
        self.mode = mode
        self.node = ""
        self.gateway = ""  # the node's gateway group, once identified
        self.opened_ns = tracker.now()
        self.acked: dict[str, TenantAck] = {}  # tenant -> newest version ACKed here
        self.nacked: dict[str, TenantNack] = {}  # tenant -> version rejected here
        self._opened_after = tracker.seq  # changes up to this one were applied before
        self._in_flight: dict[str, Push] = {}
        self._pending: dict[int, _Pending] = {}
        self._done: set[int] = set()  # seqs completed or failed here (pruned as they expire)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def pending_changes(self) -> list[tuple[Change, int]]:
        """The changes pushed and not yet ACKed, with their first push (ns), oldest first."""
        return [(p.change, p.first_push_ns) for _, p in sorted(self._pending.items())]

    def in_flight(self) -> list[Push]:
        """The responses written and not yet answered."""
        return list(self._in_flight.values())

    # -- ports.StreamCallbacks -----------------------------------------------------------

    def on_request(self, message: Any) -> None:
        self.identify(message.node.id)

    def on_identified(self, gateway: str) -> None:
        self.gateway = gateway

    def on_response(self, response: Response, *, size: int) -> None:
        self.pushed(response)

    def on_step_done(self, step: Step[Response], request: Any | None) -> None:
        self.answered(step)

    def on_closed(self) -> None:
        self.closed()

    # -- bookkeeping ----------------------------------------------------------------------

    def identify(self, node: str) -> None:
        if not self.node:
            self.node = node

    def pushed(self, response: _Response, *, at_ns: int | None = None) -> Push:
        """`response` was written to the client."""
        now = self._tracker.now() if at_ns is None else at_ns
        removed: Sequence[str] = getattr(response, "removed", ())
        changes: dict[int, Change] = {}
        tracked = self._tracker.by_name(response.type_url)
        if tracked:  # a tight loop: SotW full-state responses carry every resource
            get = tracked.get
            hits = [get(e.resource.name) for e in response.resources]
            hits += [get(name) for name in removed]
            for held in hits:
                for change in held or ():
                    if change.seq > self._opened_after and change.seq not in self._done:
                        changes[change.seq] = change
        push = Push(
            nonce=response.nonce,
            type_url=response.type_url,
            at_ns=now,
            resources=len(response.resources) + len(removed),
            changes=[changes[s] for s in sorted(changes)],
        )
        self._in_flight[push.nonce] = push
        for change in push.changes:
            pending = self._pending.get(change.seq)
            if pending is None:
                pending = self._pending[change.seq] = _Pending(change=change, first_push_ns=now)
            pending.nonces.add(push.nonce)
            pending.last_push = push
        if push.changes:
            self._reporter.push_started(push, node=self.node)
        return push

    def answered(self, step: _Answers, *, at_ns: int | None = None) -> list[Completed]:
        """The client answered earlier responses (the step's ACKs and NACKs; call after the
        step's own responses were `pushed`). Returns the changes that completed."""
        if not step.acks and not step.nacks:
            return []
        now = self._tracker.now() if at_ns is None else at_ns
        for ack in step.acks:
            self._settle(ack.nonce, outcome="ack", at_ns=now)
        for nack in step.nacks:
            self._tracker.nacked(nack)
            push = self._settle(nack.nonce, outcome="nack", at_ns=now)
            for change in push.changes if push is not None else ():
                self._rejected(change, nack, at_ns=now)
                if self._pending.pop(change.seq, None) is not None:
                    self._done.add(change.seq)
                    self._reporter.failed(change, node=self.node, error=nack.error)
        completed: list[Completed] = []
        if not self._in_flight:
            for seq, pending in sorted(self._pending.items()):
                if pending.nonces or pending.last_push is None:
                    continue
                del self._pending[seq]
                self._done.add(seq)
                done = Completed(
                    change=pending.change,
                    node=self.node,
                    first_push_ns=pending.first_push_ns,
                    acked_ns=now,
                )
                self._reporter.completed(done, last_push=pending.last_push)
                self._took(pending.change, at_ns=now)
                completed.append(done)
        self._prune()
        return completed

    def closed(self, *, at_ns: int | None = None) -> None:
        """The stream ended: what was in flight is never answered."""
        now = self._tracker.now() if at_ns is None else at_ns
        for nonce in list(self._in_flight):
            self._settle(nonce, outcome="stream closed", at_ns=now)
        self._pending.clear()
        self._tracker.streams.discard(self)

    def _took(self, change: Change, *, at_ns: int) -> None:
        """The node ACKed `change`: its tenant's newest version here, a NACK it supersedes
        cleared."""
        held = self.acked.get(change.tenant)
        if held is None or held.version <= change.version:
            self.acked[change.tenant] = TenantAck(version=change.version, at_ns=at_ns)
        nack = self.nacked.get(change.tenant)
        if nack is not None and nack.version <= change.version:
            del self.nacked[change.tenant]

    def _rejected(self, change: Change, nack: Nack, *, at_ns: int) -> None:
        self.nacked[change.tenant] = TenantNack(
            version=change.version,
            type_url=nack.type_url,
            error=nack.error,
            at_ns=at_ns,
            written_ns=change.marks.written_ns or change.applied_ns,
        )

    def _settle(self, nonce: str, *, outcome: str, at_ns: int) -> Push | None:
        push = self._in_flight.pop(nonce, None)
        if push is None:
            return None
        for change in push.changes:
            pending = self._pending.get(change.seq)
            if pending is not None:
                pending.nonces.discard(nonce)
        if push.changes:
            self._reporter.push_ended(push, node=self.node, outcome=outcome, at_ns=at_ns)
        return push

    def _prune(self) -> None:
        oldest = self._tracker.oldest_seq
        if len(self._done) > 1024:
            self._done = {s for s in self._done if s >= oldest}
        for seq in [s for s in self._pending if s < oldest]:
            del self._pending[seq]  # expired without completing


# -- metrics ----------------------------------------------------------------------------------


class PropagationMetrics:
    """The propagation histogram by (stage, tenant bucket), completed/failed changes and SLA
    breaches; rendered as Prometheus text."""

    def __init__(self, *, tenant_buckets: int = 8) -> None:
        self.tenant_buckets = tenant_buckets
        self.histograms: dict[tuple[str, int], Histogram] = {}
        self.completed = 0
        self.failed = 0
        self.breaches = 0
        self.api_breaches = 0  # api_ack over the SLA
        self.api_skewed = 0  # API time after the ACK (clamped to 0)
        self.api_unknown = 0  # no API time: api_ack counted from the observation

    def observe(self, tenant: str, stages: Mapping[str, float]) -> None:
        bucket = tenant_bucket(tenant, self.tenant_buckets)
        self.completed += 1
        for stage, seconds in stages.items():
            self.histograms.setdefault((stage, bucket), Histogram(BUCKETS)).observe(seconds)

    def render(self, out: PromText) -> None:
        """Into `out`, a PromText of the "ripple_xds" namespace."""
        out.family(
            HISTOGRAM,
            "histogram",
            "Seconds from the watcher's observation of an API change to the Envoy ACK, by "
            "stage and tenant bucket (a hash of the tenant); stage api_ack from the API "
            "server's own time of the change (whole seconds) to the ACK.",
        )
        for (stage, bucket), hist in sorted(self.histograms.items()):
            out.histogram_samples(HISTOGRAM, hist, {"stage": stage, "tenant_bucket": str(bucket)})
        for name, value, help_text in (
            ("propagation_acked_total", self.completed, "Changes ACKed, per node."),
            ("propagation_nacked_total", self.failed, "Changes whose push was NACKed, per node."),
            ("sla_breaches_total", self.breaches, "Changes ACKed later than the SLA."),
            (
                "sla_breaches_api_total",
                self.api_breaches,
                "Changes ACKed later than the SLA counted from the API's time of the change.",
            ),
            (
                "propagation_api_clock_skew_total",
                self.api_skewed,
                "Changes whose API time is later than their ACK (clock skew; api_ack read 0).",
            ),
            (
                "propagation_api_time_unknown_total",
                self.api_unknown,
                "Changes without an API time (api_ack counted from the observation).",
            ),
        ):
            out.single(name, "counter", help_text, value)


# -- the production reporter -----------------------------------------------------------------


class TraceReporter:
    """Spans (`xds.push`, `xds.ack`), the histogram and SLA breach logs."""

    def __init__(self, tracer: trace.Tracer, metrics: PropagationMetrics, *, sla_s: float) -> None:
        self._tracer = tracer
        self.metrics = metrics
        self._sla_s = sla_s

    def push_started(self, push: Push, *, node: str) -> None:
        first, *others = push.changes
        push.handle = self._tracer.start_span(
            "xds.push",
            context=context_from_fields(first.trace),
            links=[trace.Link(_span_context(c.trace)) for c in others],
            start_time=push.at_ns,
            attributes={
                "ripple.node": node,
                "xds.type": push.type_url.short,
                "xds.nonce": push.nonce,
                "xds.resources": push.resources,
                "ripple.changes": len(push.changes),
                "ripple.tenant": first.tenant,
                "ripple.version": first.version,
            },
        )

    def push_ended(self, push: Push, *, node: str, outcome: str, at_ns: int) -> None:
        span = push.handle
        if isinstance(span, trace.Span):
            span.set_attribute("xds.outcome", outcome)
            if outcome != "ack":
                span.set_status(trace.StatusCode.ERROR, outcome)
            span.end(end_time=at_ns)

    def completed(self, done: Completed, *, last_push: Push) -> None:
        change = done.change
        stages = {**done.stages(), **done.api_stage()}
        links = []
        if isinstance(last_push.handle, trace.Span):
            links.append(trace.Link(last_push.handle.get_span_context()))
        span = self._tracer.start_span(
            "xds.ack",
            context=context_from_fields(change.trace),
            links=links,
            start_time=done.first_push_ns,
            attributes={
                "ripple.node": done.node,
                "ripple.tenant": change.tenant,
                "ripple.version": change.version,
                **{f"ripple.{stage}_ms": round(s * 1000, 3) for stage, s in stages.items()},
                **_api_attributes(change),
            },
        )
        span.end(end_time=done.acked_ns)
        api_ns = change.marks.api_ns
        self.metrics.observe(change.tenant, stages)
        self.metrics.api_skewed += done.api_skewed
        self.metrics.api_unknown += api_ns is None
        total, api_ack = stages.get("total"), stages.get(API_STAGE)
        breached = [
            name
            for name, seconds in (("total", total), (API_STAGE, api_ack))
            if seconds is not None and seconds > self._sla_s
        ]
        self.metrics.breaches += "total" in breached
        self.metrics.api_breaches += API_STAGE in breached
        if breached:
            log.warning(
                "sla breach",
                trace_id=change.trace_id,
                tenant=change.tenant,
                version=change.version,
                node=done.node,
                breached=breached,
                total_s=None if total is None else round(total, 3),
                api_ack_s=None if api_ack is None else round(api_ack, 3),
                api_time="api" if api_ns is not None else "observed",
                sla_s=self._sla_s,
                stages_ms={k: round(v * 1000, 1) for k, v in stages.items()},
            )

    def failed(self, change: Change, *, node: str, error: str) -> None:
        self.metrics.failed += 1
        log.info(
            "propagation failed: push rejected",
            trace_id=change.trace_id,
            tenant=change.tenant,
            version=change.version,
            node=node,
            error=error[:200],
        )


def _api_attributes(change: Change) -> dict[str, int | str]:
    """The API time on the `xds.ack` span: its ns and whether api_ack counts from it."""
    api_ns = change.marks.api_ns
    if api_ns is None:
        return {"ripple.api_time": "observed"}
    return {"ripple.api_at_ns": api_ns, "ripple.api_time": "api"}


def _span_context(fields: Mapping[str, str]) -> trace.SpanContext:
    return trace.get_current_span(context_from_fields(fields)).get_span_context()
