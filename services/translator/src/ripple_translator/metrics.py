"""The translator's counters and their Prometheus rendering (pure; `ripple_common.health`'s
`HealthServer` serves them).

/healthz: the process serves. /readyz: 200 once the consumer joined its group and every
assigned partition is loaded, 503 before that and while stopping. /metrics: events consumed,
tenant writes and versions written, write latency (histogram), coalesced batch sizes
(histogram), diagnostics, host notices, owned partitions and tenants, writes in flight and
waiting, Kubernetes Events posted/dropped, the consumer lag per partition."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ripple_common.health import Histogram, PromText

LATENCY_BUCKETS_S: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
BATCH_BUCKETS: tuple[float, ...] = (1, 2, 5, 10, 50, 100, 1000)


class TranslatorStats:
    """Counters of one translator (not module state: the service owns one)."""

    def __init__(self) -> None:
        self.events = 0  # tenant events applied (changed a tenant's objects)
        self.records = 0  # Kafka records handled
        self.writes = 0  # tenant writes done (empty diffs included)
        self.versions = 0  # writes that stored a new version
        self.diagnostics = 0
        self.host_notices = 0  # notices received that woke an owned tenant
        self.fenced = 0  # writes refused: the stored version covers a later Kafka position
        self.write_seconds = Histogram(LATENCY_BUCKETS_S)
        self.batch_events = Histogram(BATCH_BUCKETS)
        self.k8s_events_posted = 0
        self.k8s_events_failed = 0
        self.k8s_events_dropped = 0

    def written(self, *, events: int, changed: bool, diagnostics: int, seconds: float) -> None:
        self.writes += 1
        self.versions += int(changed)
        self.diagnostics += diagnostics
        self.write_seconds.observe(seconds)
        self.batch_events.observe(events)


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsView:
    """Everything /metrics reports, read at scrape time."""

    stats: TranslatorStats
    partitions: int
    tenants: int
    in_flight: int
    waiting: int
    ready: bool
    # Records not yet durable per (topic, partition) owned: `consumer.KafkaEventSource.lag`.
    lag: Mapping[tuple[str, int], int] = field(default_factory=dict)
    assignments: int = 0
    revocations: int = 0


def readiness(*, joined: bool, stopping: bool) -> tuple[int, str]:
    if stopping:
        return 503, "stopping\n"
    if not joined:
        return 503, "joining the consumer group / loading partitions\n"
    return 200, "ok\n"


def render_metrics(view: MetricsView) -> tuple[int, str]:
    out = PromText("ripple_translator")
    s = view.stats
    out.single(
        "ready", "gauge", "1 once the group is joined and partitions are loaded.", view.ready
    )
    for name, value, help_text in (
        ("records_total", s.records, "Kafka records handled."),
        ("events_total", s.events, "Tenant events that changed a tenant's objects."),
        ("writes_total", s.writes, "Tenant writes (translations) done."),
        ("versions_total", s.versions, "Tenant versions written (non-empty diffs)."),
        ("diagnostics_total", s.diagnostics, "Diagnostics reported by written translations."),
        ("host_notices_total", s.host_notices, "Host notices that woke an owned tenant."),
        (
            "writes_fenced_total",
            s.fenced,
            "Writes refused: the stored version covers a later Kafka position.",
        ),
        ("k8s_events_posted_total", s.k8s_events_posted, "Kubernetes Events created/updated."),
        ("k8s_events_failed_total", s.k8s_events_failed, "Kubernetes Event posts that failed."),
        ("k8s_events_dropped_total", s.k8s_events_dropped, "Events dropped: queue full."),
    ):
        out.single(name, "counter", help_text, value)
    for name, value, help_text in (
        ("assignments_total", view.assignments, "Partition assignments received (rebalances)."),
        ("revocations_total", view.revocations, "Partition revocations (rebalances)."),
    ):
        out.single(name, "counter", help_text, value)
    out.histogram("write_seconds", "Duration of one tenant write.", s.write_seconds)
    out.histogram("batch_events", "Events coalesced into one tenant write.", s.batch_events)
    for name, value, help_text in (
        ("partitions_owned", view.partitions, "Partitions assigned and loaded."),
        ("tenants_owned", view.tenants, "Tenants held in memory."),
        ("writes_in_flight", view.in_flight, "Tenant writes holding a write slot."),
        ("writes_waiting", view.waiting, "Dirty tenants waiting for a write slot."),
    ):
        out.single(name, "gauge", help_text, value)
    out.family(
        "consumer_lag",
        "gauge",
        "Records of the events topic not yet durable in Redis, per partition owned (the "
        "highwater mark minus the offset committed, else the one consumption started from).",
    )
    for (topic, partition), lag in sorted(view.lag.items()):
        out.sample("consumer_lag", lag, {"topic": topic, "partition": str(partition)})
    return 200, out.text()
