"""`ripple trace` over Jaeger query API answers (no network): the waterfall's stages in time
order from the watch observation with durations and gaps, the SLA verdict (ok, breach,
NACKed, not ACKed), the newest change of a tenant, and the exit codes."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest

from ripple_cli import trace_waterfall as tw

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
T0_US = 1_700_000_000_000_000  # the observation


def span(
    span_id: str, name: str, process: str, start_ms: float, took_ms: float, **tags: Any
) -> dict[str, Any]:
    return {
        "traceID": TRACE_ID,
        "spanID": span_id,
        "operationName": name,
        "processID": process,
        "references": [],
        "startTime": T0_US + int(start_ms * 1000),
        "duration": int(took_ms * 1000),
        "tags": [{"key": k, "value": v} for k, v in tags.items()],
    }


def jaeger_trace(*, ack_total_ms: float | None = 28.0, nack: bool = False) -> dict[str, Any]:
    spans = [
        span(
            "a1", "watcher.publish", "p1", 0.5, 1.0,
            **{"ripple.observed_at_ns": T0_US * 1000, "ripple.tenant": "shop",
               "ripple.kind": "Ingress", "ripple.namespace": "shop", "ripple.name": "web",
               "ripple.event": "ADDED"},
        ),
        span("b1", "translator.write", "p2", 9.5, 6.0,
             **{"ripple.tenant": "shop", "ripple.version": 3}),
        span("c1", "xds.apply", "p3", 16.0, 0.1,
             **{"ripple.version": 3, "ripple.resources_changed": 2}),
        span(
            "c2", "xds.push", "p3", 16.5, 11.0,
            **{"ripple.node": "gw-1", "xds.type": "rds", "xds.resources": 1,
               "xds.outcome": "nack" if nack else "ack"},
        ),
    ]  # fmt: skip
    if ack_total_ms is not None:
        spans.append(
            span(
                "c3", "xds.ack", "p3", 16.5, 11.5,
                **{"ripple.node": "gw-1", "ripple.version": 3, "ripple.total_ms": ack_total_ms},
            )
        )  # fmt: skip
    return {
        "traceID": TRACE_ID,
        "spans": spans,
        "processes": {
            "p1": {"serviceName": "ripple-watcher"},
            "p2": {"serviceName": "ripple-translator"},
            "p3": {"serviceName": "ripple-xds"},
        },
    }


def test_the_waterfall_runs_from_the_observation_with_durations_and_gaps() -> None:
    rows = tw.waterfall(tw.parse_trace(jaeger_trace()))
    assert [(r.label, r.start_ms, r.duration_ms, r.gap_ms) for r in rows] == [
        ("observed", 0.0, None, None),
        ("watcher: watcher.publish", 0.5, 1.0, 0.5),
        ("translator: translator.write (after the Kafka hop)", 9.5, 6.0, 8.0),
        ("xds: xds.apply", 16.0, 0.1, 0.5),
        ("xds: xds.push", 16.5, 11.0, 0.4),
        ("xds: xds.ack", 16.5, 11.5, 0.0),
    ]
    assert rows[1].detail == "ADDED Ingress shop/web"
    assert rows[2].detail == "tenant shop v3"
    assert rows[4].detail == "rds -> gw-1 (1 resources): ack"
    assert rows[5].detail == "gw-1 ACKed v3"


def test_render_has_the_title_the_verdict_and_the_ui_url() -> None:
    spans = tw.parse_trace(jaeger_trace())
    out = tw.render(TRACE_ID, spans, sla_s=5.0, ui_url=f"http://ui/trace/{TRACE_ID}").splitlines()
    assert out[0] == f"trace {TRACE_ID}: ADDED Ingress shop/web (tenant shop)"
    assert out[1].split()[:4] == ["at", "ms", "took", "ms"]
    assert len(out) == 2 + 6 + 2
    assert out[-2] == "SLA 5 s: ok (1 Envoy node(s) ACKed, slowest gw-1 at 28.0 ms)"
    assert out[-1] == f"Jaeger UI: http://ui/trace/{TRACE_ID}"


@pytest.mark.parametrize(
    ("trace", "sla_s", "code", "text"),
    [
        (jaeger_trace(), 5.0, 0, "SLA 5 s: ok (1 Envoy node(s) ACKed, slowest gw-1 at 28.0 ms)"),
        (jaeger_trace(ack_total_ms=6200.0), 5.0, 1, "SLA 5 s: BREACH (1 Envoy node(s) ACKed, "
         "slowest gw-1 at 6200.0 ms)"),
        (jaeger_trace(ack_total_ms=None, nack=True), 5.0, 1,
         "NACKED by gw-1: the change is not served"),
        (jaeger_trace(ack_total_ms=None), 5.0, 1,
         "NOT ACKED by any Envoy yet (or its spans are not exported)"),
    ],
)  # fmt: skip
def test_verdicts(trace: dict[str, Any], sla_s: float, code: int, text: str) -> None:
    verdict = tw.verdict(tw.parse_trace(trace), sla_s=sla_s)
    assert (verdict.code, verdict.text) == (code, text)


def args(**over: Any) -> argparse.Namespace:
    values: dict[str, Any] = {
        "trace_id": None,
        "tenant": "shop",
        "kind": "Ingress",
        "name": "web",
        "jaeger": "http://jaeger:16686/",
        "jaeger_ui": None,
        "lookback": "1h",
        "wait": 0.0,
        "tag": None,
        "sla": 5.0,
    }
    return argparse.Namespace(**{**values, **over})


def test_a_tenants_newest_change_is_found_and_printed(capsys: pytest.CaptureFixture[str]) -> None:
    older = jaeger_trace()
    older["traceID"] = "1" * 32
    older["spans"][0]["startTime"] -= 10_000_000
    asked: list[str] = []

    def fetch(url: str) -> str:
        asked.append(url)
        if "/api/traces?" in url:
            return json.dumps({"data": [older, jaeger_trace()]})
        assert url == f"http://jaeger:16686/api/traces/{TRACE_ID}"
        return json.dumps({"data": [jaeger_trace()]})

    assert tw.run(args(), fetch=fetch) == 0
    out = capsys.readouterr().out
    assert f"Jaeger UI: http://jaeger:16686/trace/{TRACE_ID}" in out
    assert "service=ripple-watcher" in asked[0]
    assert "operation=watcher.publish" in asked[0]
    assert "%22ripple.tenant%22%3A+%22shop%22" in asked[0]


def test_waits_for_the_ack_then_gives_up_not_acked(capsys: pytest.CaptureFixture[str]) -> None:
    now = [0.0]
    calls = [0]

    def fetch(url: str) -> str:
        calls[0] += 1
        return json.dumps({"data": [jaeger_trace(ack_total_ms=None)]})

    def sleep(seconds: float) -> None:
        now[0] += seconds

    code = tw.run(
        args(trace_id=TRACE_ID, tenant=None, wait=2.0),
        fetch=fetch,
        sleep=sleep,
        clock=lambda: now[0],
    )
    assert code == 1
    assert calls[0] == 5  # at 0, 0.5, 1, 1.5, 2 s
    assert "NOT ACKED" in capsys.readouterr().out


def test_no_trace_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    assert tw.run(args(), fetch=lambda _url: json.dumps({"data": []})) == 3
    assert capsys.readouterr().out.startswith("not found: a change of tenant shop")
    assert tw.run(args(tenant=None)) == 3


def test_the_apis_time_of_the_change_leads_and_is_held_against_the_sla() -> None:
    trace = jaeger_trace(ack_total_ms=28.0)
    # int64 tags come as strings from Jaeger's JSON.
    api_ns = str(T0_US * 1000 - 700_000_000)
    trace["spans"][0]["tags"].append({"key": "ripple.api_at_ns", "value": api_ns})
    trace["spans"][-1]["tags"].append({"key": "ripple.api_ack_ms", "value": 728.0})
    spans = tw.parse_trace(trace)
    first = tw.waterfall(spans)[0]
    assert (first.label, first.start_ms, first.duration_ms) == ("api", -700.0, None)
    assert tw.verdict(spans, sla_s=5.0) == tw.Verdict(
        0,
        "SLA 5 s: ok (1 Envoy node(s) ACKed, slowest gw-1 at 28.0 ms; "
        "728.0 ms from the API's time)",
    )
    late = tw.verdict(spans, sla_s=0.5)
    assert late.code == 1
    assert late.text.startswith("SLA 0.5 s: BREACH")


def test_tags_narrow_the_search() -> None:
    asked: list[str] = []

    def fetch(url: str) -> str:
        asked.append(url)
        return json.dumps({"data": []})

    tw.run(args(tag=[("ripple.pipeline", "eu-1")]), fetch=fetch)
    assert "%22ripple.pipeline%22%3A+%22eu-1%22" in asked[0]
    assert tw.key_value("a=b=c") == ("a", "b=c")
    with pytest.raises(argparse.ArgumentTypeError, match="KEY=VALUE"):
        tw.key_value("novalue")
