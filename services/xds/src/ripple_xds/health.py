"""Health, readiness and Prometheus metrics of the xds service over plain HTTP (asyncio
streams, no framework).

/healthz: the process serves. /readyz: 200 once the initial load from Redis finished and the
ADS server accepts streams, 503 before that and while stopping. /metrics: Prometheus text from
`XdsStats` (streams, pushes, bytes, ACK/NACK) and `SourceStats` (tenants loaded, entries,
reloads, gaps, the stream position). /debug/nodes: per connected Envoy node, which tenants are
current, lagging or NACKed, as JSON (`status`; read by `ripple status`). The rendering is pure;
`HealthServer` is the I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from ripple_common.health import PromText
from ripple_common.resources import TypeUrl
from ripple_xds.secrets import SecretStats
from ripple_xds.source import SourceStats, StreamId
from ripple_xds.stream_log import XdsStats

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsView:
    """Everything /metrics reports, read at scrape time."""

    xds: XdsStats
    source: SourceStats
    position: StreamId
    resources: Mapping[TypeUrl, int]
    ready: bool
    secrets: SecretStats | None = None


def readiness(*, loaded: bool, serving: bool, stopping: bool) -> tuple[int, str]:
    if stopping:
        return 503, "stopping\n"
    if not loaded:
        return 503, "loading tenants from redis\n"
    if not serving:
        return 503, "ads server not started\n"
    return 200, "ok\n"


def render_metrics(view: MetricsView) -> tuple[int, str]:
    out = PromText("ripple_xds")
    family, sample = out.family, out.sample

    def by_mode_type(name: str, help_text: str, counts: Mapping[tuple[str, str], int]) -> None:
        family(name, "counter", help_text)
        for (mode, short), count in sorted(counts.items()):
            sample(name, count, {"mode": mode, "type": short})

    stats = view.xds
    family("ready", "gauge", "1 once the initial load finished and ADS serves.")
    sample("ready", 1 if view.ready else 0)
    family("streams_open", "gauge", "ADS streams currently connected.")
    sample("streams_open", stats.streams_open)
    family("streams_total", "counter", "ADS streams opened.")
    sample("streams_total", stats.streams_total)
    family("nodes_rejected_total", "counter", "Streams closed: the node gave no identity.")
    sample("nodes_rejected_total", stats.nodes_rejected)
    family(
        "secrets_refused_total",
        "counter",
        "Streams closed: secrets asked without a verified client certificate.",
    )
    sample("secrets_refused_total", stats.secrets_refused)
    by_mode_type("pushes_total", "Responses sent.", stats.pushes)
    by_mode_type("resources_sent_total", "Resources sent in responses.", stats.resources_sent)
    by_mode_type("bytes_sent_total", "Response bytes sent.", stats.bytes_sent)
    by_mode_type("requests_total", "Requests handled.", stats.requests)
    by_mode_type("acks_total", "Responses acknowledged.", stats.acks)
    by_mode_type("nacks_total", "Responses rejected by the client.", stats.nacks)
    family("nack_tenant_total", "counter", "Rejected responses carrying a tenant's resources.")
    for tenant, count in sorted(stats.nack_tenants.items()):
        sample("nack_tenant_total", count, {"tenant": tenant})
    family("stale_nonces_total", "counter", "Requests ignored for a stale nonce.")
    sample("stale_nonces_total", stats.stale_nonces)
    family("cache_resources", "gauge", "Resources held, by type.")
    for type_url, count in sorted(view.resources.items(), key=lambda i: i[0].short):
        sample("cache_resources", count, {"type": type_url.short})

    src = view.source
    family("tenants_loaded", "gauge", "Tenants read by the last full load.")
    sample("tenants_loaded", src.tenants_loaded)
    for name, value, help_text in (
        ("source_full_loads_total", src.full_loads, "Full loads (start and gaps)."),
        ("source_gaps_total", src.gaps, "Change stream trimmed past our position."),
        ("source_entries_total", src.entries, "Change entries handled."),
        ("source_skipped_total", src.skipped, "Entries at or below the held version."),
        ("source_fetched_total", src.fetched, "Entries applied by fetching named resources."),
        ("source_reloaded_total", src.reloaded, "Entries applied by re-reading the tenant."),
        ("source_malformed_total", src.malformed, "Malformed entries skipped."),
        ("source_errors_total", src.errors, "Redis errors while following."),
        (
            "source_foreign_total",
            src.foreign,
            "Entries of tenants outside this replica's gateway groups, skipped.",
        ),
    ):
        family(name, "counter", help_text)
        sample(name, value)
    if view.secrets is not None:
        for name, value, help_text in (
            ("secrets_opened_total", view.secrets.opened, "Sealed TLS keys opened."),
            ("secrets_plaintext_total", view.secrets.plaintext, "Secrets stored unsealed."),
            ("secrets_refused_total", view.secrets.refused, "Secrets whose key did not open."),
        ):
            family(name, "counter", help_text)
            sample(name, value)
        family(
            "secrets_rejected_total",
            "counter",
            "TLS Secrets not served: Envoy would reject their certificate and key, by tenant.",
        )
        for tenant, count in sorted(view.secrets.rejected.items()):
            sample("secrets_rejected_total", count, {"tenant": tenant})
    family("source_position_ms", "gauge", "Millisecond part of the last change id applied.")
    sample("source_position_ms", view.position[0])
    family("source_position_seq", "gauge", "Sequence part of the last change id applied.")
    sample("source_position_seq", view.position[1])
    return 200, out.text()
