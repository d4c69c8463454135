"""Health, readiness and Prometheus metrics over plain HTTP (asyncio streams, no framework).

/healthz: the process serves. /readyz: every served kind has listed once (200) or not (503).
/metrics: Prometheus text: events, envelopes, relists and restarts per kind, objects known,
deliveries and the lag from the watcher seeing a change to Kafka acknowledging it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import structlog

from ripple_common.health import PromText
from ripple_watcher.publisher import SinkStats
from ripple_watcher.watchloop import KindWatcher

log = structlog.get_logger(__name__)


def readiness(
    watchers: Sequence[KindWatcher], *, standby: Callable[[KindWatcher], bool] = lambda w: False
) -> tuple[int, str]:
    """Ready when every kind has listed once, is not served, or is led by another replica."""
    waiting = [w.kind for w in watchers if not w.ready and not standby(w)]
    if waiting:
        return 503, "waiting for first list: " + ", ".join(waiting) + "\n"
    return 200, "ok\n"


def render_metrics(
    watchers: Sequence[KindWatcher], sinks: Mapping[str, SinkStats | None]
) -> tuple[int, str]:
    out = PromText("ripple_watcher")
    family = out.family

    def sample(name: str, labels: Mapping[str, str], value: float) -> None:
        out.sample(name, value, labels)

    family("events_total", "counter", "Watch events handled.")
    for w in watchers:
        sample("events_total", {"kind": w.kind}, w.stats.events)
    family("envelopes_total", "counter", "Envelopes handed to the publisher.")
    for w in watchers:
        sample("envelopes_total", {"kind": w.kind}, w.stats.published)
    family("relists_total", "counter", "Completed re-lists.")
    for w in watchers:
        sample("relists_total", {"kind": w.kind}, w.stats.relists)
    family("watch_restarts_total", "counter", "Watch restarts by reason.")
    for w in watchers:
        for reason, count in sorted(w.stats.restart_reasons.items()):
            sample("watch_restarts_total", {"kind": w.kind, "reason": reason}, count)
    family("known_objects", "gauge", "Objects whose last published state is remembered.")
    for w in watchers:
        sample("known_objects", {"kind": w.kind}, w.known_objects)
    family("ready", "gauge", "1 once the kind has listed (or is not served).")
    for w in watchers:
        sample("ready", {"kind": w.kind}, 1 if w.ready else 0)
    family("deliveries_total", "counter", "Kafka deliveries by outcome.")
    for kind, stats in sinks.items():
        if stats is not None:
            sample("deliveries_total", {"kind": kind, "outcome": "ok"}, stats.delivered)
            sample("deliveries_total", {"kind": kind, "outcome": "failed"}, stats.failed)
    family("too_large_total", "counter", "Envelopes replaced by a TOO_LARGE marker.")
    for kind, stats in sinks.items():
        if stats is not None:
            sample("too_large_total", {"kind": kind}, stats.too_large)
    family("delivery_lag_seconds", "summary", "Watcher saw the change -> Kafka acknowledged.")
    for kind, stats in sinks.items():
        if stats is not None:
            sample("delivery_lag_seconds_sum", {"kind": kind}, stats.lag_sum_seconds)
            sample("delivery_lag_seconds_count", {"kind": kind}, stats.delivered)
    family("delivery_lag_seconds_max", "gauge", "Largest delivery lag so far.")
    for kind, stats in sinks.items():
        if stats is not None:
            sample("delivery_lag_seconds_max", {"kind": kind}, stats.lag_max_seconds)
    return 200, out.text()
