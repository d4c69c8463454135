"""API -> ACK: the `api_ack` stage of the propagation histogram (from the API's own time of
the change, else the observation), SLA breaches logged and counted for it beside `total`,
clock skew clamped to 0 and counted, the API time on the `xds.ack` span (issue #15
point 4)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog.testing
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ripple_common.health import PromText
from ripple_common.store_contract import ChangeEntry, Marks
from ripple_xds.delta import DeltaStream
from ripple_xds.propagation import (
    API_STAGE,
    Change,
    Completed,
    Propagation,
    PropagationMetrics,
    TraceReporter,
    tenant_bucket,
)
from tests.unit.xds.helpers import RDS, cache_with, delta_ack, delta_req, res

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"
MS = 1_000_000
S = 1_000 * MS
NOW = 1_796_583_600 * S


def _completed(marks: Marks, *, applied: int, acked: int) -> Completed:
    change = Change(seq=1, tenant="t", version=2, trace={}, marks=marks, applied_ns=applied)
    return Completed(change=change, node="n", first_push_ns=applied, acked_ns=acked)


def test_api_ack_runs_from_the_api_time_and_total_from_the_observation() -> None:
    # Created at NOW, observed 8 s later (the watcher was down), ACKed 50 ms after that.
    marks = Marks(observed_ns=NOW + 8 * S, published_ns=NOW + 8 * S + 5 * MS, api_ns=NOW)
    done = _completed(marks, applied=NOW + 8 * S + 20 * MS, acked=NOW + 8 * S + 50 * MS)
    assert done.stages()["total"] == pytest.approx(0.050)
    assert API_STAGE not in done.stages()  # the observed stages still add up to total
    assert done.api_stage() == {API_STAGE: pytest.approx(8.050)}
    assert not done.api_skewed


def test_without_an_api_time_api_ack_falls_back_to_the_observation() -> None:
    done = _completed(Marks(observed_ns=NOW), applied=NOW + 10 * MS, acked=NOW + 30 * MS)
    assert done.api_stage() == {API_STAGE: pytest.approx(0.030)}
    assert _completed(Marks(), applied=NOW, acked=NOW + MS).api_stage() == {}


def test_an_api_time_after_the_ack_is_clock_skew_read_as_zero() -> None:
    marks = Marks(observed_ns=NOW, api_ns=NOW + 2 * S)
    done = _completed(marks, applied=NOW + 10 * MS, acked=NOW + 30 * MS)
    assert done.api_stage() == {API_STAGE: 0.0}
    assert done.api_skewed


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


def _ack_one(
    reporter: TraceReporter, clock: Clock, marks: Marks, *, tenant: str = "slow"
) -> list[Completed]:
    """Apply one change with `marks`, push it to a Delta stream and ACK it 2 ms later."""
    tracker = Propagation(reporter=reporter, clock=clock)
    cache = cache_with(res(RDS, "r"))
    stream = DeltaStream(cache)
    view = tracker.stream()
    view.identify("gw-1")
    for response in stream.on_request(delta_req(RDS, sub=("r",))).responses:
        view.pushed(response)
        view.answered(stream.on_request(delta_ack(response)))
    change = cache.apply(upserts=[res(RDS, "r", "v2")])
    entry = ChangeEntry(
        tenant=tenant, version=3, trace={"traceparent": TRACEPARENT, **marks.fields()}
    )
    tracker.applied(entry, change)
    (response,) = stream.on_change(change.names if change else {}).responses
    view.pushed(response)
    clock.now += 2 * MS
    return view.answered(stream.on_request(delta_ack(response)))


def test_an_outage_before_the_observation_is_an_api_ack_breach_only(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    clock = Clock()
    metrics = PropagationMetrics()
    reporter = TraceReporter(provider.get_tracer("test"), metrics, sla_s=2.0)
    api = NOW - 6 * S  # created 6 s ago, observed 10 ms ago
    with structlog.testing.capture_logs() as logs:
        done = _ack_one(reporter, clock, Marks(observed_ns=NOW - 10 * MS, api_ns=api))
    assert [d.change.version for d in done] == [3]
    (breach,) = [e for e in logs if e["event"] == "sla breach"]
    assert breach["breached"] == [API_STAGE]
    assert breach["api_ack_s"] == pytest.approx(6.002)
    assert breach["total_s"] == pytest.approx(0.012)
    assert breach["api_time"] == "api"
    assert breach["trace_id"] == TRACE_ID
    assert (metrics.breaches, metrics.api_breaches) == (0, 1)

    bucket = tenant_bucket("slow", metrics.tenant_buckets)
    assert metrics.histograms[API_STAGE, bucket].count == 1
    assert metrics.histograms["total", bucket].count == 1
    out = PromText("ripple_xds")
    metrics.render(out)
    text = out.text()
    labels = f'stage="api_ack",tenant_bucket="{bucket}"'
    assert f"ripple_xds_propagation_seconds_count{{{labels}}} 1" in text
    assert f'ripple_xds_propagation_seconds_bucket{{{labels},le="5"}} 0' in text
    assert "ripple_xds_sla_breaches_total 0" in text
    assert "ripple_xds_sla_breaches_api_total 1" in text
    assert "ripple_xds_propagation_api_clock_skew_total 0" in text

    by_name = {s.name: s for s in exporter.get_finished_spans()}
    ack = by_name["xds.ack"]
    assert ack.attributes is not None
    assert ack.attributes["ripple.api_at_ns"] == api
    assert ack.attributes["ripple.api_time"] == "api"
    assert ack.attributes["ripple.api_ack_ms"] == pytest.approx(6002)
    assert ack.attributes["ripple.total_ms"] == pytest.approx(12)
    assert ack.end_time == clock.now


def test_both_clocks_breach_and_skew_and_unknown_api_times_are_counted(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    clock = Clock()
    metrics = PropagationMetrics()
    reporter = TraceReporter(provider.get_tracer("test"), metrics, sla_s=2.0)
    with structlog.testing.capture_logs() as logs:
        _ack_one(reporter, clock, Marks(observed_ns=NOW - 3 * S, api_ns=NOW - 4 * S))
        _ack_one(reporter, clock, Marks(observed_ns=NOW, api_ns=NOW + 60 * S))  # skewed
        _ack_one(reporter, clock, Marks(observed_ns=NOW))  # no API time
    breaches = [e for e in logs if e["event"] == "sla breach"]
    assert [b["breached"] for b in breaches] == [["total", API_STAGE]]
    assert (metrics.breaches, metrics.api_breaches) == (1, 1)
    assert metrics.api_skewed == 1
    assert metrics.api_unknown == 1
    assert metrics.completed == 3
    acks = [s for s in exporter.get_finished_spans() if s.name == "xds.ack"]
    assert [(s.attributes or {}).get("ripple.api_time") for s in acks] == ["api", "api", "observed"]
    assert (acks[1].attributes or {}).get("ripple.api_ack_ms") == 0  # skew read as 0
