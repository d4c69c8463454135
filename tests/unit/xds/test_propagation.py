"""The propagation bookkeeping: which applied changes a stream pushed, which its Envoy ACKed,
the stages, the histogram and the spans, driven by the real Delta state machine and a real
SnapshotCache (no gRPC, no Redis)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import structlog.testing
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ripple_common.health import Histogram, PromText
from ripple_common.resources import Resource
from ripple_common.store_contract import ChangeEntry, Marks
from ripple_xds.delta import DeltaResponse, DeltaStream
from ripple_xds.propagation import (
    BUCKETS,
    STAGES,
    Change,
    Completed,
    Propagation,
    PropagationMetrics,
    Push,
    StreamPropagation,
    TraceReporter,
    tenant_bucket,
    trace_id_of,
)
from ripple_xds.protocol import Step
from ripple_xds.snapshot import SnapshotCache
from tests.unit.xds.helpers import CDS, RDS, cache_with, delta_ack, delta_nack, delta_req, res

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"
MS = 1_000_000


class Clock:
    def __init__(self, now: int = 1_000_000 * MS) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@dataclass
class Recorder:
    """What a reporter was told."""

    started: list[tuple[str, list[int]]] = field(default_factory=list)
    ended: list[tuple[str, str]] = field(default_factory=list)
    completed: list[Completed] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)


class RecordingReporter:
    """A Reporter that records what it was told."""

    def __init__(self) -> None:
        self.log = Recorder()

    def push_started(self, push: Push, *, node: str) -> None:
        self.log.started.append((push.nonce, [c.version for c in push.changes]))

    def push_ended(self, push: Push, *, node: str, outcome: str, at_ns: int) -> None:
        self.log.ended.append((push.nonce, outcome))

    def completed(self, done: Completed, *, last_push: Push) -> None:
        self.log.completed.append(done)

    def failed(self, change: Change, *, node: str, error: str) -> None:
        self.log.failed.append((change.version, error))


@dataclass
class Rig:
    """A cache, a tracker and one Delta stream with its propagation view."""

    cache: SnapshotCache
    tracker: Propagation
    clock: Clock
    reporter: RecordingReporter
    stream: DeltaStream
    view: StreamPropagation

    def apply(self, version: int, *upserts: Resource, tenant: str = "t1") -> None:
        """The follower applies change `version` of `tenant` (marks 40/30/20 ms before)."""
        change = self.cache.apply(upserts=upserts)
        now = self.clock.now
        marks = Marks(
            observed_ns=now - 40 * MS, published_ns=now - 30 * MS, written_ns=now - 20 * MS
        )
        entry = ChangeEntry(
            tenant=tenant,
            version=version,
            trace={"traceparent": TRACEPARENT, **marks.fields()},
        )
        self.tracker.applied(entry, change)
        self.send(self.stream.on_change(change.names if change else {}))

    def send(self, step: Step[DeltaResponse]) -> tuple[DeltaResponse, ...]:
        """What the server does with a step: write (and track) the responses, then settle."""
        for response in step.responses:
            self.view.pushed(response)
        self.view.answered(step)
        return step.responses

    def ack_all(
        self, responses: tuple[DeltaResponse, ...], *, after_ms: int = 5
    ) -> list[DeltaResponse]:
        """ACK each response in turn (as Envoy does), returning the responses that caused."""
        pending = list(responses)
        sent: list[DeltaResponse] = []
        while pending:
            response = pending.pop(0)
            self.clock.now += after_ms * MS
            more = self.send(self.stream.on_request(delta_ack(response)))
            pending.extend(more)
            sent.extend(more)
        return sent


@pytest.fixture
def rig() -> Rig:
    clock = Clock()
    cache = cache_with(res(CDS, "c0"), res(RDS, "r0"))
    reporter = RecordingReporter()
    tracker = Propagation(reporter=reporter, clock=clock, ttl_s=60)
    stream = DeltaStream(cache)
    view = tracker.stream(mode="delta")
    view.identify("envoy-1")
    r = Rig(cache, tracker, clock, reporter, stream, view)
    initial = r.send(stream.on_request(delta_req(CDS)))
    r.ack_all(initial)
    r.ack_all(r.send(stream.on_request(delta_req(RDS, sub=("r0", "r1")))))
    return r


def test_an_acked_push_completes_the_change_with_its_stages(rig: Rig) -> None:
    rig.apply(7, res(RDS, "r0", "v2"))
    ((nonce, versions),) = rig.reporter.log.started
    assert versions == [7]
    assert rig.reporter.log.completed == []
    rig.clock.now += 4 * MS
    rig.send(rig.stream.on_request(delta_req(RDS, nonce=nonce)))
    (done,) = rig.reporter.log.completed
    assert (done.change.tenant, done.change.version, done.node) == ("t1", 7, "envoy-1")
    stages = done.stages()
    assert set(stages) == set(STAGES)
    assert stages["observe_publish"] == pytest.approx(0.010)
    assert stages["publish_write"] == pytest.approx(0.010)
    assert stages["write_apply"] == pytest.approx(0.020)
    assert stages["apply_ack"] == pytest.approx(0.004)  # pushed at apply, ACKed 4 ms later
    assert stages["total"] == pytest.approx(sum(v for k, v in stages.items() if k != "total"))
    assert rig.reporter.log.ended[-1] == (nonce, "ack")
    assert rig.view.pending == 0


def test_make_before_break_completes_only_after_the_last_type_is_acked(rig: Rig) -> None:
    # A change with a cluster and the route using it: CDS goes first, RDS waits for its ACK.
    rig.apply(8, res(CDS, "c1"), res(RDS, "r1"))
    (cds,) = rig.reporter.log.started
    assert cds[1] == [8]
    assert rig.reporter.log.completed == []
    # ACK the CDS response: the RDS response goes out in the same step, so no completion yet.
    rig.clock.now += 3 * MS
    more = rig.send(rig.stream.on_request(delta_req(CDS, nonce=cds[0])))
    assert [r.type_url for r in more] == [RDS]
    assert rig.reporter.log.completed == []
    rig.ack_all(more)
    (done,) = rig.reporter.log.completed
    assert done.change.version == 8
    assert done.acked_ns - done.first_push_ns >= 3 * MS


def test_changes_applied_before_the_stream_opened_are_not_measured() -> None:
    clock = Clock()
    reporter = RecordingReporter()
    tracker = Propagation(reporter=reporter, clock=clock)
    cache = SnapshotCache()
    change = cache.apply(upserts=[res(CDS, "c")])
    tracker.applied(ChangeEntry(tenant="t", version=1, trace={"traceparent": TRACEPARENT}), change)
    stream = DeltaStream(cache)
    view = tracker.stream()
    step = stream.on_request(delta_req(CDS))
    for response in step.responses:
        view.pushed(response)
    view.answered(stream.on_request(delta_ack(step.responses[0])))
    assert reporter.log.started == []
    assert reporter.log.completed == []


def test_a_nack_fails_the_change_and_never_completes_it(rig: Rig) -> None:
    rig.apply(9, res(RDS, "r0", "bad"))
    nonce = rig.reporter.log.started[-1][0]
    response = DeltaResponse(
        type_url=RDS, system_version_info="", nonce=nonce, resources=(), removed=()
    )
    rig.send(rig.stream.on_request(delta_nack(response, error="route invalid")))
    assert rig.reporter.log.failed == [(9, "route invalid")]
    assert rig.reporter.log.completed == []
    assert rig.reporter.log.ended[-1] == (nonce, "nack")


def test_two_changes_in_one_push_both_complete(rig: Rig) -> None:
    # Two versions applied before the stream wakes: one push carries both.
    change1 = rig.cache.apply(upserts=[res(RDS, "r0", "v2")])
    entry1 = ChangeEntry(tenant="t1", version=10, trace={"traceparent": TRACEPARENT})
    rig.tracker.applied(entry1, change1)
    change2 = rig.cache.apply(upserts=[res(RDS, "r0", "v3")])
    entry2 = ChangeEntry(tenant="t1", version=11, trace={"traceparent": TRACEPARENT})
    rig.tracker.applied(entry2, change2)
    responses = rig.send(rig.stream.on_change({RDS: {"r0"}}))
    assert rig.reporter.log.started[-1][1] == [10, 11]
    rig.ack_all(responses)
    assert sorted(d.change.version for d in rig.reporter.log.completed) == [10, 11]
    # Without marks only the xds stages are known.
    assert set(rig.reporter.log.completed[0].stages()) == {"apply_ack"}


def test_a_closed_stream_ends_its_pushes_without_completing(rig: Rig) -> None:
    rig.apply(12, res(RDS, "r1", "v2"))
    rig.view.closed()
    assert rig.reporter.log.ended[-1][1] == "stream closed"
    assert rig.reporter.log.completed == []


def test_changes_expire_after_the_ttl(rig: Rig) -> None:
    rig.apply(13, res(RDS, "r0", "v9"))
    assert len(rig.tracker) == 1
    rig.clock.now += 61 * 1_000 * MS
    rig.tracker.applied(ChangeEntry(tenant="t1", version=14), None)
    assert len(rig.tracker) == 0
    assert rig.tracker.changes_for((RDS, "r0")) == ()


def test_stages_clamp_out_of_order_marks_and_add_up() -> None:
    change = Change(
        seq=1,
        tenant="t",
        version=1,
        trace={},
        # Published before observed (the Kafka timestamp has millisecond resolution).
        marks=Marks(observed_ns=100 * MS + 500_000, published_ns=100 * MS, written_ns=110 * MS),
        applied_ns=115 * MS,
    )
    stages = Completed(change=change, node="n", first_push_ns=115 * MS, acked_ns=120 * MS).stages()
    assert stages["observe_publish"] == 0.0
    assert all(v >= 0 for v in stages.values())
    parts = sum(v for k, v in stages.items() if k != "total")
    assert parts == pytest.approx(stages["total"])


def test_tenant_buckets_are_stable_and_bounded() -> None:
    assert tenant_bucket("team-a", 8) == tenant_bucket("team-a", 8)
    assert {tenant_bucket(f"t{i}", 8) for i in range(200)} == set(range(8))


def test_trace_id_of_reads_traceparent() -> None:
    assert trace_id_of({"traceparent": TRACEPARENT}) == TRACE_ID
    assert trace_id_of({}) is None
    assert trace_id_of({"traceparent": "junk"}) is None


def test_histogram_buckets_and_rendering() -> None:
    hist = Histogram(BUCKETS)
    for seconds in (0.001, 0.02, 0.02, 7.0, 100.0):
        hist.observe(seconds)
    assert hist.count == 5
    assert sum(hist.counts) == 5
    assert hist.counts[-1] == 1  # 100 s: above the last bound
    metrics = PropagationMetrics(tenant_buckets=4)
    metrics.observe("t1", {"total": 0.02, "apply_ack": 0.004})
    out = PromText("ripple_xds")
    metrics.render(out)
    text = out.text()
    bucket = tenant_bucket("t1", 4)
    labels = f'stage="total",tenant_bucket="{bucket}"'
    assert f'ripple_xds_propagation_seconds_bucket{{{labels},le="0.01"}} 0' in text
    assert f'ripple_xds_propagation_seconds_bucket{{{labels},le="0.025"}} 1' in text
    assert f'ripple_xds_propagation_seconds_bucket{{{labels},le="+Inf"}} 1' in text
    assert f"ripple_xds_propagation_seconds_count{{{labels}}} 1" in text
    assert "ripple_xds_propagation_acked_total 1" in text
    assert len(BUCKETS) + 1 == len(metrics.histograms["total", bucket].counts)


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def test_trace_reporter_spans_metrics_and_sla_breach(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    clock = Clock()
    metrics = PropagationMetrics()
    reporter = TraceReporter(provider.get_tracer("test"), metrics, sla_s=5.0)
    tracker = Propagation(reporter=reporter, clock=clock)
    cache = cache_with(res(RDS, "r"))
    stream = DeltaStream(cache)
    view = tracker.stream()
    view.identify("gw-1")
    for response in stream.on_request(delta_req(RDS, sub=("r",))).responses:
        view.pushed(response)
        view.answered(stream.on_request(delta_ack(response)))
    change = cache.apply(upserts=[res(RDS, "r", "v2")])
    observed = clock.now - 6_000 * MS  # observed 6 s ago: an SLA breach
    entry = ChangeEntry(
        tenant="slow",
        version=3,
        trace={"traceparent": TRACEPARENT, **Marks(observed_ns=observed).fields()},
    )
    tracker.applied(entry, change)
    (response,) = stream.on_change(change.names if change else {}).responses
    view.pushed(response)
    clock.now += 2 * MS
    with structlog.testing.capture_logs() as logs:
        done = view.answered(stream.on_request(delta_ack(response)))
    (breach,) = [e for e in logs if e["event"] == "sla breach"]
    assert breach["trace_id"] == TRACE_ID
    assert breach["tenant"] == "slow"
    assert breach["node"] == "gw-1"
    assert breach["total_s"] == pytest.approx(6.002)
    assert [d.change.version for d in done] == [3]

    by_name = {s.name: s for s in exporter.get_finished_spans()}
    push, ack = by_name["xds.push"], by_name["xds.ack"]
    for span in (push, ack):
        assert span.context is not None
        assert span.parent is not None
        assert format(span.context.trace_id, "032x") == TRACE_ID
        assert format(span.parent.span_id, "016x") == "b7ad6b7169203331"
        assert span.attributes is not None
        assert span.attributes["ripple.node"] == "gw-1"
    assert push.end_time == ack.end_time == clock.now
    assert ack.attributes is not None
    assert ack.attributes["ripple.total_ms"] == pytest.approx(6002)
    assert [link.context.span_id for link in ack.links] == [push.context.span_id]
    assert metrics.breaches == 1
    assert metrics.completed == 1


def test_marks_travel_in_the_change_entry() -> None:
    marks = Marks(observed_ns=1, published_ns=2_000_000, written_ns=3)
    entry = ChangeEntry(tenant="t", version=2, trace={"traceparent": TRACEPARENT, **marks.fields()})
    decoded = ChangeEntry.decode(entry.encode())
    assert decoded.marks == marks
    assert decoded.trace["traceparent"] == TRACEPARENT
    assert ChangeEntry(tenant="t", version=1).marks == Marks()
    assert Marks.of({"ripple-observed-ns": "junk"}) == Marks()
