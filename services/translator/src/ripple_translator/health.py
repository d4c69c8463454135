"""The translator's health endpoint: liveness, readiness (joined the group, not stopping)
and the Prometheus metrics (`metrics.py` renders them)."""

from __future__ import annotations

from ripple_common.health import Route
from ripple_common.lifecycle import Lifecycle
from ripple_translator.consumer import KafkaEventSource
from ripple_translator.engine import Engine
from ripple_translator.metrics import MetricsView, readiness, render_metrics


def health_routes(engine: Engine, source: KafkaEventSource, lc: Lifecycle) -> dict[str, Route]:
    def ready() -> tuple[int, str]:
        return readiness(joined=source.joined, stopping=lc.stopping.is_set())

    def metrics() -> tuple[int, str]:
        return render_metrics(
            MetricsView(
                stats=engine.stats,
                partitions=len(engine.owned),
                tenants=engine.tenants,
                in_flight=engine.writer.in_flight,
                waiting=engine.writer.waiting,
                ready=ready()[0] == 200,
                lag=source.lag(),
                assignments=source.assignments,
                revocations=source.revocations,
            )
        )

    return {"/healthz": lambda: (200, "ok\n"), "/readyz": ready, "/metrics": metrics}
