"""`ripple sla`: histogram parsing and quantiles, the Jaeger span reading, the report and its
exit status, fed by the xds service's own metric rendering (no network)."""

from __future__ import annotations

import json
import math

import pytest

from ripple_cli.__main__ import build_parser
from ripple_cli.sla import (
    EXIT_BREACH,
    EXIT_NO_DATA,
    EXIT_OK,
    exact_quantile,
    histogram_quantile,
    merge,
    parse_histograms,
    rows_from_buckets,
    stage_samples,
    subtract,
)
from ripple_common.health import PromText
from ripple_xds.propagation import PropagationMetrics, tenant_bucket


def _metrics(*observations: tuple[str, dict[str, float]]) -> str:
    metrics = PropagationMetrics(tenant_buckets=4)
    for tenant, stages in observations:
        metrics.observe(tenant, stages)
    out = PromText("ripple_xds")
    out.single("ready", "gauge", "other families", 1)
    metrics.render(out)
    return out.text()


def test_parse_adds_up_tenant_buckets_or_filters_one() -> None:
    tenants = [f"t{i}" for i in range(20)]
    text = _metrics(*((t, {"total": 0.02}) for t in tenants))
    buckets = parse_histograms(text)
    assert buckets["total"][math.inf] == 20
    assert buckets["total"][0.01] == 0
    assert buckets["total"][0.025] == 20
    one = tenant_bucket("t0", 4)
    only = parse_histograms(text, tenant_bucket=one)
    assert only["total"][math.inf] == sum(1 for t in tenants if tenant_bucket(t, 4) == one)


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    cumulative = {0.1: 50.0, 0.2: 100.0, math.inf: 100.0}
    assert histogram_quantile(0.5, cumulative) == pytest.approx(0.1)
    assert histogram_quantile(0.75, cumulative) == pytest.approx(0.15)
    assert histogram_quantile(0.25, cumulative) == pytest.approx(0.05)
    # A quantile in the +Inf bucket reads as the largest finite bound.
    assert histogram_quantile(0.99, {0.1: 1.0, math.inf: 10.0}) == 0.1
    assert histogram_quantile(0.5, {math.inf: 0.0}) is None
    assert histogram_quantile(0.5, {}) is None


def test_exact_quantile() -> None:
    assert exact_quantile(0.5, [3.0, 1.0, 2.0]) == 2.0
    assert exact_quantile(0.99, [1.0] * 99 + [101.0]) == pytest.approx(2.0)
    assert exact_quantile(0.5, []) is None


def test_interval_subtracts_the_earlier_scrape() -> None:
    before = parse_histograms(_metrics(("a", {"total": 0.02})))
    after = parse_histograms(_metrics(("a", {"total": 0.02}), ("a", {"total": 7.0})))
    window = subtract(after, before)
    assert window["total"][math.inf] == 1
    assert window["total"][5.0] == 0
    assert merge([before, before])["total"][math.inf] == 2


def test_rows_cover_every_stage() -> None:
    rows = rows_from_buckets(parse_histograms(_metrics(("a", {"total": 0.02, "apply_ack": 0.003}))))
    by_stage = {r.stage: r for r in rows}
    assert [r.stage for r in rows] == [
        "observe_publish",
        "publish_write",
        "write_apply",
        "apply_ack",
        "total",
        "api_ack",
    ]
    assert by_stage["total"].count == 1
    assert by_stage["publish_write"].quantiles == (None, None, None)
    p50 = by_stage["apply_ack"].quantiles[0]
    assert p50 is not None
    assert 0 < p50 <= 0.005


def test_jaeger_xds_ack_spans_give_samples() -> None:
    answer = {
        "data": [
            {
                "spans": [
                    {
                        "operationName": "xds.ack",
                        "tags": [
                            {"key": "ripple.total_ms", "value": 40.0},
                            {"key": "ripple.apply_ack_ms", "value": 4},
                        ],
                    },
                    {"operationName": "xds.push", "tags": [{"key": "ripple.total_ms", "value": 1}]},
                ]
            }
        ]
    }
    samples = stage_samples(answer)
    assert samples["total"] == [0.04]
    assert samples["apply_ack"] == [0.004]


def _run(
    argv: list[str], pages: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    args = build_parser().parse_args(["sla", *argv])
    code: int = args.func(args, fetch=lambda url: pages[url], sleep=lambda _s: None)
    return code, capsys.readouterr().out


def test_report_and_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    fast = _metrics(*(("t", {"total": 0.02}) for _ in range(100)))
    slow = _metrics(
        *(("t", {"total": 0.02}) for _ in range(90)), *(("t", {"total": 7.0}) for _ in range(10))
    )
    url = "http://x/metrics"
    code, out = _run(["--metrics", url, "--sla", "5"], {url: fast}, capsys)
    assert code == EXIT_OK, out
    assert "total" in out
    assert "SLA 5 s on p99 total: ok" in out
    code, out = _run(["--metrics", url, "--sla", "5"], {url: slow}, capsys)
    assert code == EXIT_BREACH, out
    assert "BREACH" in out
    code, out = _run(["--metrics", url], {url: slow}, capsys)
    assert code == EXIT_OK, out  # no --sla: report only
    code, out = _run(["--metrics", url], {url: "ripple_xds_ready 1\n"}, capsys)
    assert code == EXIT_NO_DATA


def test_unreachable_server_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(url: str) -> str:
        raise OSError(f"connection refused: {url}")

    args = build_parser().parse_args(["sla", "--metrics", "http://down/metrics"])
    assert args.func(args, fetch=refuse) == EXIT_NO_DATA
    assert "no xds server answered" in capsys.readouterr().out


def test_jaeger_source(capsys: pytest.CaptureFixture[str]) -> None:
    spans = [
        {"operationName": "xds.ack", "tags": [{"key": "ripple.total_ms", "value": float(ms)}]}
        for ms in range(1, 101)
    ]
    base = "http://jaeger:16686"

    def fetch(url: str) -> str:
        assert url.startswith(f"{base}/api/traces?service=ripple-xds&operation=xds.ack")
        return json.dumps({"data": [{"spans": spans}]})

    args = build_parser().parse_args(
        ["sla", "--source", "jaeger", "--jaeger", base, "--sla", "0.05"]
    )
    assert args.func(args, fetch=fetch) == EXIT_BREACH
    out = capsys.readouterr().out
    assert "50.5" in out  # p50 of 1..100 ms
