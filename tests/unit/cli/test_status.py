"""`ripple status` over replicas' /debug/nodes documents (no network): what it prints per
gateway and node, the lagging and NACKed tenants, `--tenant` narrowing, the exit codes, and
the replicas found from a Service's EndpointSlices."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest

from ripple_cli import status
from ripple_cli.status_kube import parse_service, urls_from_slices


def node(name: str, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "node": name,
        "gateway": "edge",
        "mode": "delta",
        "scope": None,
        "connected_s": 60.0,
        "tenants": 3,
        "current": 3,
        "in_flight": 0,
        "oldest_in_flight_s": None,
        "lagging": [],
        "nacks": [],
        "acked": {"shop": {"version": 4, "at": 1.0}},
    }
    return {**base, **over}


def replica_doc(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {
        "now": 100.0,
        "sla_s": 5.0,
        "ready": True,
        "position": "1700000000000-0",
        "tenants": 3,
        "versions": {"shop": 5, "blog": 2, "wiki": 7},
        "nodes": list(nodes),
    }


LAGGING = node(
    "gw-b",
    current=2,
    in_flight=2,
    oldest_in_flight_s=7.5,
    lagging=[{"tenant": "shop", "version": 5, "acked_version": 4, "since": 92.5, "lag_s": 7.5}],
)
NACKED = node(
    "gw-c",
    current=2,
    nacks=[
        {
            "tenant": "wiki",
            "version": 7,
            "type": "rds",
            "error": "regex (unclosed: missing )",
            "at": 99.0,
            "lag_s": 1.5,
        }
    ],
    acked={"wiki": {"version": 6, "at": 50.0}},
)


def args(**over: Any) -> argparse.Namespace:
    values: dict[str, Any] = {
        "xds": ["http://xds-0:8080", "http://xds-1:8080"],
        "service": None,
        "port_name": "health",
        "kubeconfig": None,
        "tenant": None,
        "sla": None,
        "json": False,
    }
    return argparse.Namespace(**{**values, **over})


def fetcher(docs: dict[str, Any]) -> status.Fetch:
    def fetch(url: str) -> str:
        answer = docs[url]
        if isinstance(answer, Exception):
            raise answer
        return json.dumps(answer)

    return fetch


def run(capsys: pytest.CaptureFixture[str], docs: dict[str, Any], **over: Any) -> tuple[int, str]:
    code = status.run(args(**over), fetch=fetcher(docs), environ={})
    return code, capsys.readouterr().out


def test_every_node_current_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(
        capsys,
        {
            "http://xds-0:8080/debug/nodes": replica_doc(node("gw-a")),
            "http://xds-1:8080/debug/nodes": replica_doc(),
        },
    )
    assert code == 0
    assert out.splitlines() == [
        "xds replicas: 2/2 answered, SLA 5 s",
        "  http://xds-0:8080: 3 tenants, 1 Envoy stream(s), change stream at 1700000000000-0",
        "  http://xds-1:8080: 3 tenants, 0 Envoy stream(s), change stream at 1700000000000-0",
        "gateway edge",
        "  node gw-a (delta, xds http://xds-0:8080): 3/3 tenants current, 0 lagging, 0 NACKed",
        "verdict: ok, every Envoy is current",
    ]


def test_lag_past_the_sla_and_a_nack_are_printed_and_exit_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out = run(
        capsys,
        {
            "http://xds-0:8080/debug/nodes": replica_doc(node("gw-a"), LAGGING),
            "http://xds-1:8080/debug/nodes": replica_doc(NACKED),
        },
    )
    assert code == status.EXIT_LAGGING
    lines = out.splitlines()
    assert (
        "  node gw-b (delta, xds http://xds-0:8080): 2/3 tenants current, 1 lagging, 0 NACKed, "
        "2 response(s) unanswered for 7.5 s"
    ) in lines
    assert "    LAG   shop: stored v5, ACKed v4, behind 7.5 s PAST SLA" in lines
    assert (
        "    NACK  wiki: v7 rejected (rds), serves v6, behind 1.5 s: regex (unclosed: missing )"
    ) in lines
    assert lines[-1] == "verdict: BEHIND past the 5 s SLA: 1 tenant(s) on 1 node(s)"


def test_lag_within_the_sla_exits_0_and_the_sla_flag_overrides(
    capsys: pytest.CaptureFixture[str],
) -> None:
    docs = {"http://xds-0:8080/debug/nodes": replica_doc(LAGGING)}
    code, out = run(capsys, docs, xds=["http://xds-0:8080"], sla=10.0)
    assert code == 0
    assert out.splitlines()[-1] == "verdict: ok, 1 behind within the 10 s SLA"
    code, _ = run(capsys, docs, xds=["http://xds-0:8080"], sla=1.0)
    assert code == 1


def test_tenant_narrows_to_one_tenant_on_every_node(capsys: pytest.CaptureFixture[str]) -> None:
    hidden = node("gw-d", gateway="other", scope=["blog"])
    docs = {
        "http://xds-0:8080/debug/nodes": replica_doc(node("gw-a"), LAGGING),
        "http://xds-1:8080/debug/nodes": replica_doc(NACKED, hidden),
    }
    code, out = run(capsys, docs, tenant="shop")
    assert code == 1
    assert out.splitlines()[2:] == [
        "  http://xds-1:8080: 3 tenants, 2 Envoy stream(s), change stream at 1700000000000-0",
        "tenant shop",
        "  gateway edge node gw-a: current at v5",
        "  gateway edge node gw-b: LAG   shop: stored v5, ACKed v4, behind 7.5 s PAST SLA",
        "  gateway edge node gw-c: current at v5",
        "  gateway other node gw-d: not served to this gateway",
        "verdict: BEHIND past the 5 s SLA: 1 tenant(s) on 1 node(s)",
    ]
    code, out = run(capsys, docs, tenant="blog")
    assert code == 0, out
    assert "  gateway other node gw-d: current at v2" in out.splitlines()


def test_an_unreachable_replica_is_named_and_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(
        capsys,
        {
            "http://xds-0:8080/debug/nodes": replica_doc(node("gw-a")),
            "http://xds-1:8080/debug/nodes": OSError("connection refused"),
        },
    )
    assert code == status.EXIT_UNREACHABLE
    assert "  UNREACHABLE http://xds-1:8080: connection refused" in out.splitlines()
    assert out.splitlines()[-1] == "verdict: UNKNOWN, no answer from http://xds-1:8080"


def test_not_a_status_document_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, {"http://xds-0:8080/debug/nodes": {"x": 1}}, xds=["xds-0:8080"])
    assert code == 3
    assert "UNREACHABLE xds-0:8080: not a /debug/nodes document" in out


def test_replicas_from_the_environment_then_the_default() -> None:
    env = {status.ENV_REPLICAS: "http://a:1, http://b:2/debug/nodes"}
    assert status.replica_urls(args(xds=None), env) == ["http://a:1", "http://b:2/debug/nodes"]
    assert status.replica_urls(args(xds=None), {}) == [status.DEFAULT_XDS_URL]
    assert status.status_url("http://b:2/debug/nodes") == "http://b:2/debug/nodes"
    assert status.status_url("10.0.0.1:8080/") == "http://10.0.0.1:8080/debug/nodes"


def test_service_endpoints_ready_on_the_named_port() -> None:
    slices = [
        {
            "ports": [{"name": "grpc", "port": 18000}, {"name": "health", "port": 8080}],
            "endpoints": [
                {"addresses": ["10.0.0.2"], "conditions": {"ready": True}},
                {"addresses": ["10.0.0.3"], "conditions": {"ready": False}},
                {"addresses": ["fd00::4"]},
            ],
        },
        {"ports": [{"name": "grpc", "port": 18000}], "endpoints": [{"addresses": ["10.0.0.9"]}]},
    ]
    assert urls_from_slices(slices, port_name="health") == [
        "http://10.0.0.2:8080",
        "http://[fd00::4]:8080",
    ]
    assert parse_service("ripple/ripple-xds") == ("ripple", "ripple-xds")
    with pytest.raises(ValueError, match="NAMESPACE/NAME"):
        parse_service("ripple-xds")


def test_json_prints_the_documents_with_the_exit(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(
        capsys,
        {"http://xds-0:8080/debug/nodes": replica_doc(LAGGING)},
        xds=["http://xds-0:8080"],
        json=True,
    )
    parsed = json.loads(out)
    assert code == parsed["exit"] == 1
    assert parsed["replicas"][0]["nodes"][0]["node"] == "gw-b"


def test_a_node_that_stopped_answering_is_stalled_past_the_sla(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Changes older than the xds tracking window leave `lagging`; the unanswered responses
    still tell (also with --tenant: every tenant of the node waits)."""
    stalled = node("gw-s", in_flight=3, oldest_in_flight_s=420.0)
    briefly = node("gw-t", in_flight=1, oldest_in_flight_s=0.004)
    docs = {"http://xds-0:8080/debug/nodes": replica_doc(stalled, briefly)}
    code, out = run(capsys, docs, xds=["http://xds-0:8080"])
    assert code == 1
    lines = out.splitlines()
    assert (
        "    STALL 3 response(s) unanswered for 420.0 s PAST SLA (the Envoy stopped reading or "
        "answering; changes older than the tracking window)"
    ) in lines
    assert lines[-1] == ("verdict: BEHIND past the 5 s SLA: 1 node(s) stalled")
    assert (
        "  node gw-t (delta, xds http://xds-0:8080): 3/3 tenants current, 0 lagging, 0 NACKed, "
        "1 response(s) unanswered for 4 ms"
    ) in lines
    code, out = run(capsys, docs, xds=["http://xds-0:8080"], tenant="shop")
    assert code == 1
    assert "  gateway edge node gw-s: STALL 3 response(s) unanswered for 420.0 s PAST SLA" in out
