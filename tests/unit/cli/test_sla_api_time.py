"""`ripple sla` prints API -> ACK (`api_ack`) beside the other stages, from /metrics and from
Jaeger, and holds it against --sla too (issue #15 point 4)."""

from __future__ import annotations

import json

import pytest

from ripple_cli.__main__ import build_parser
from ripple_cli.sla import EXIT_BREACH, EXIT_OK, parse_histograms, rows_from_buckets, stage_samples
from ripple_common.health import PromText
from ripple_xds.propagation import API_STAGE, PropagationMetrics


def _metrics(*observations: dict[str, float]) -> str:
    metrics = PropagationMetrics(tenant_buckets=4)
    for stages in observations:
        metrics.observe("t", stages)
    out = PromText("ripple_xds")
    metrics.render(out)
    return out.text()


def _run(
    argv: list[str], pages: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    args = build_parser().parse_args(["sla", *argv])
    code: int = args.func(args, fetch=lambda url: pages[url], sleep=lambda _s: None)
    return code, capsys.readouterr().out


def test_the_api_ack_row_is_read_from_the_histogram() -> None:
    rows = rows_from_buckets(parse_histograms(_metrics({"total": 0.02, API_STAGE: 7.0})))
    (api,) = [r for r in rows if r.stage == API_STAGE]
    assert api.count == 1
    assert api.quantiles[0] is not None
    assert 5.0 < api.quantiles[0] <= 10.0


def test_api_ack_is_read_from_the_xds_ack_spans() -> None:
    answer = {
        "data": [
            {
                "spans": [
                    {
                        "operationName": "xds.ack",
                        "tags": [
                            {"key": "ripple.total_ms", "value": 40.0},
                            {"key": "ripple.api_ack_ms", "value": 6040.0},
                        ],
                    }
                ]
            }
        ]
    }
    samples = stage_samples(answer)
    assert samples[API_STAGE] == [6.04]


def test_an_api_ack_breach_alone_fails_the_sla(capsys: pytest.CaptureFixture[str]) -> None:
    url = "http://x/metrics"
    page = _metrics(*({"total": 0.02, API_STAGE: 8.0} for _ in range(10)))
    code, out = _run(["--metrics", url, "--sla", "5"], {url: page}, capsys)
    assert code == EXIT_BREACH, out
    assert "SLA 5 s on p99 total: ok" in out
    assert "SLA 5 s on p99 api_ack: BREACH" in out
    assert [line.split()[0] for line in out.splitlines()[2:8]] == [
        "observe_publish",
        "publish_write",
        "write_apply",
        "apply_ack",
        "total",
        "api_ack",
    ]
    fine = _metrics(*({"total": 0.02, API_STAGE: 0.9} for _ in range(10)))
    code, out = _run(["--metrics", url, "--sla", "5"], {url: fine}, capsys)
    assert code == EXIT_OK, out
    assert "SLA 5 s on p99 api_ack: ok" in out


def test_servers_without_api_ack_still_report(capsys: pytest.CaptureFixture[str]) -> None:
    url = "http://x/metrics"
    page = _metrics({"total": 0.02})  # an xds of the previous release
    code, out = _run(["--metrics", url, "--sla", "5"], {url: page}, capsys)
    assert code == EXIT_OK, out
    assert "SLA 5 s on p99 api_ack: no data" in out
    jaeger_url = "http://j/api/traces?service=ripple-xds&operation=xds.ack&lookback=1h&limit=1000"
    code, out = _run(
        ["--source", "jaeger", "--jaeger", "http://j"],
        {jaeger_url: json.dumps({"data": []})},
        capsys,
    )
    assert "api_ack" in out
