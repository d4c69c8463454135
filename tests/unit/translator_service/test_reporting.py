"""Diagnostics as Kubernetes Events, with a fake poster: deterministic Event names, repeats
skipped until `repeat_after_s`, then posted again with a higher count; a full queue drops (and
counts) instead of blocking; a failing poster is logged and counted, never raised; the
metrics render."""

from __future__ import annotations

import asyncio

from ripple_translator.metrics import MetricsView, TranslatorStats, readiness, render_metrics
from ripple_translator.reporting import EventReporter, EventSpec, event_spec
from ripple_translator.translate import ObjectRef, Reason
from ripple_translator.translate.diagnostics import error, warning
from tests.waiting import eventually

ING = ObjectRef("Ingress", "ns1", "web")
BAD = error(ING, Reason.INVALID_ANNOTATION, "nginx.ingress.kubernetes.io/x: bad value")
OTHER = warning(ING, Reason.UNSUPPORTED_ANNOTATION, "y is not supported; ignored")


class Poster:
    def __init__(self, *, fail: bool = False) -> None:
        self.posted: list[tuple[EventSpec, int]] = []
        self.fail = fail

    async def post(self, spec: EventSpec, *, count: int) -> None:
        if self.fail:
            raise RuntimeError("apiserver down")
        self.posted.append((spec, count))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_event_spec_is_deterministic_and_regards_the_object() -> None:
    spec = event_spec(BAD)
    assert spec is not None
    assert spec == event_spec(BAD)
    assert spec.name != event_spec(OTHER).name  # type: ignore[union-attr]
    assert spec.name.startswith("web.")
    assert (spec.namespace, spec.kind, spec.api_version, spec.object_name) == (
        "ns1",
        "Ingress",
        "networking.k8s.io/v1",
        "web",
    )
    assert (spec.type, spec.reason) == ("Warning", "InvalidAnnotation")
    assert spec.note.startswith("Error: ")
    assert event_spec(error(ObjectRef("IngressClass", "", "c"), Reason.INVALID_OBJECT, "x")) is None


async def test_repeats_are_skipped_until_the_repeat_interval_then_counted() -> None:
    poster, clock, stats = Poster(), Clock(), TranslatorStats()
    reporter = EventReporter(poster, stats=stats, rate_per_s=1000, repeat_after_s=60, clock=clock)
    await reporter.start()
    try:
        reporter.report("t", [BAD, OTHER])
        reporter.report("t", [BAD, OTHER])  # the next version: same problems
        assert await reporter.flush(timeout_s=2)
        assert [(s.reason, c) for s, c in poster.posted] == [
            ("InvalidAnnotation", 1),
            ("UnsupportedAnnotation", 1),
        ]
        clock.now = 61
        reporter.report("t", [BAD])
        assert await reporter.flush(timeout_s=2)
        assert [(s.reason, c) for s, c in poster.posted][-1] == ("InvalidAnnotation", 2)
        assert stats.k8s_events_posted == 3
    finally:
        await reporter.stop()


async def test_a_full_queue_drops_without_blocking_and_failures_are_counted() -> None:
    poster, stats = Poster(fail=True), TranslatorStats()
    reporter = EventReporter(poster, stats=stats, queue_size=1, rate_per_s=1000)
    reporter.report("t", [BAD, OTHER])  # not started: the second does not fit
    assert stats.k8s_events_dropped == 1
    assert reporter.pending == 1
    await reporter.start()
    try:
        assert await reporter.flush(timeout_s=2)
        await eventually(lambda: stats.k8s_events_failed == 1, within_s=5)
        assert poster.posted == []
    finally:
        await reporter.stop()


async def test_posting_is_rate_bounded() -> None:
    poster = Poster()
    reporter = EventReporter(poster, rate_per_s=20)
    diags = [
        error(ObjectRef("Ingress", "ns", f"i{i}"), Reason.INVALID_PATH, "bad") for i in range(5)
    ]
    reporter.report("t", diags)
    await reporter.start()
    try:
        await asyncio.sleep(0.12)
        assert 1 <= len(poster.posted) <= 4
        assert await reporter.flush(timeout_s=2)
        assert len(poster.posted) == 5
    finally:
        await reporter.stop()


def test_metrics_render_counters_histograms_and_gauges() -> None:
    stats = TranslatorStats()
    stats.records = 7
    stats.written(events=3, changed=True, diagnostics=2, seconds=0.004)
    stats.written(events=1, changed=False, diagnostics=0, seconds=0.2)
    code, body = render_metrics(
        MetricsView(stats=stats, partitions=2, tenants=5, in_flight=1, waiting=0, ready=True)
    )
    assert code == 200
    lines = set(body.splitlines())
    for line in (
        "ripple_translator_ready 1",
        "ripple_translator_records_total 7",
        "ripple_translator_writes_total 2",
        "ripple_translator_versions_total 1",
        "ripple_translator_diagnostics_total 2",
        'ripple_translator_write_seconds_bucket{le="0.005"} 1',
        'ripple_translator_write_seconds_bucket{le="+Inf"} 2',
        'ripple_translator_batch_events_bucket{le="2"} 1',
        "ripple_translator_batch_events_sum 4",
        "ripple_translator_partitions_owned 2",
        "ripple_translator_tenants_owned 5",
    ):
        assert line in lines, line
    assert readiness(joined=False, stopping=False)[0] == 503
    assert readiness(joined=True, stopping=False)[0] == 200
    assert readiness(joined=True, stopping=True)[0] == 503
