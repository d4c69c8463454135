from __future__ import annotations

from ripple_common.health import HealthServer
from ripple_common.resources import TypeUrl
from ripple_xds.health import MetricsView, readiness, render_metrics
from ripple_xds.secrets import SecretStats
from ripple_xds.source import SourceStats
from ripple_xds.stream_log import XdsStats


def test_ready_only_after_load_and_serving_and_not_while_stopping() -> None:
    assert readiness(loaded=False, serving=False, stopping=False)[0] == 503
    assert readiness(loaded=True, serving=False, stopping=False)[0] == 503
    assert readiness(loaded=True, serving=True, stopping=False) == (200, "ok\n")
    assert readiness(loaded=True, serving=True, stopping=True) == (503, "stopping\n")


def _view() -> MetricsView:
    stats = XdsStats()
    stats.streams_open = 2
    stats.streams_total = 3
    stats.nodes_rejected = 1
    stats.pushes["delta", "cds"] = 4
    stats.bytes_sent["delta", "cds"] = 1234
    stats.acks["delta", "cds"] = 4
    stats.nacks["sotw", "rds"] = 1
    stats.nack_tenants["tenant-a"] = 1
    source = SourceStats(tenants_loaded=7, full_loads=1, entries=9, fetched=8, skipped=1)
    return MetricsView(
        xds=stats,
        source=source,
        position=(1700000000000, 3),
        resources={TypeUrl.CLUSTER: 5, TypeUrl.LISTENER: 1},
        ready=True,
        secrets=SecretStats(opened=2, plaintext=1, refused=1),
    )


def test_metrics_are_prometheus_text_with_stream_push_ack_and_source_figures() -> None:
    status, text = render_metrics(_view())
    assert status == 200
    lines = set(text.splitlines())
    for expected in (
        "ripple_xds_ready 1",
        "ripple_xds_streams_open 2",
        "ripple_xds_streams_total 3",
        "ripple_xds_nodes_rejected_total 1",
        'ripple_xds_pushes_total{mode="delta",type="cds"} 4',
        'ripple_xds_bytes_sent_total{mode="delta",type="cds"} 1234',
        'ripple_xds_acks_total{mode="delta",type="cds"} 4',
        'ripple_xds_nacks_total{mode="sotw",type="rds"} 1',
        'ripple_xds_nack_tenant_total{tenant="tenant-a"} 1',
        "ripple_xds_secrets_opened_total 2",
        "ripple_xds_secrets_refused_total 1",
        'ripple_xds_cache_resources{type="cds"} 5',
        "ripple_xds_tenants_loaded 7",
        "ripple_xds_source_entries_total 9",
        "ripple_xds_source_fetched_total 8",
        "ripple_xds_source_position_ms 1700000000000",
        "ripple_xds_source_position_seq 3",
        "# TYPE ripple_xds_acks_total counter",
        "# TYPE ripple_xds_streams_open gauge",
    ):
        assert expected in lines, expected
    # every sample belongs to a declared family
    families = {line.split()[2] for line in lines if line.startswith("# TYPE")}
    for line in lines:
        if line and not line.startswith("#"):
            assert line.split("{")[0].split(" ")[0] in families, line


def test_routes_answer_get_only_and_unknown_paths_404() -> None:
    server = HealthServer(host="127.0.0.1", port=0, routes={"/healthz": lambda: (200, "ok\n")})
    assert server.respond("GET /healthz HTTP/1.1\r\n") == (200, "ok\n")
    assert server.respond("GET /healthz?x=1 HTTP/1.0\r\n") == (200, "ok\n")
    assert server.respond("GET /nope HTTP/1.1\r\n")[0] == 404
    assert server.respond("POST /healthz HTTP/1.1\r\n")[0] == 405
