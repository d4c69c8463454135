"""The per-node view of /debug/nodes (`ripple_xds.status`) over the propagation bookkeeping:
a change pushed and not ACKed makes its tenant lag on that node (since its write), an ACK
makes it current again, a NACK stays with Envoy's error until a later version is ACKed, a
closed stream leaves the view, and a gateway's tenants bound what a node counts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ripple_xds.delta import DeltaResponse
from ripple_xds.identity import GatewayPolicy
from ripple_xds.status import ReplicaState, render_status, replica_status
from tests.unit.xds.helpers import RDS, delta_nack, delta_req, res
from tests.unit.xds.test_propagation import MS, Rig, rig

__all__ = ["rig"]  # the fixture, imported


def doc(r: Rig, *, versions: dict[str, int], policy: GatewayPolicy | None = None) -> dict[str, Any]:
    return replica_status(
        ReplicaState(
            streams=list(r.tracker.streams),
            versions=versions,
            policy=policy or GatewayPolicy(),
            sla_s=5.0,
            now_ns=r.clock.now,
            position="1-0",
        )
    )


def test_a_pushed_unacked_change_lags_since_its_write_until_acked(rig: Rig) -> None:
    rig.apply(7, res(RDS, "r0", "v2"))  # written 20 ms before the apply
    rig.clock.now += 3000 * MS
    (node,) = doc(rig, versions={"t1": 7})["nodes"]
    assert node["node"] == "envoy-1"
    assert (node["tenants"], node["current"], node["in_flight"]) == (1, 0, 1)
    assert node["oldest_in_flight_s"] == pytest.approx(3.0)
    (lag,) = node["lagging"]
    assert lag["tenant"] == "t1"
    assert lag["version"] == 7
    assert lag["acked_version"] is None  # had t1 from its initial state
    assert lag["lag_s"] == pytest.approx(3.02)

    nonce = rig.reporter.log.started[-1][0]
    rig.send(rig.stream.on_request(delta_req(RDS, nonce=nonce)))
    (node,) = doc(rig, versions={"t1": 7})["nodes"]
    assert (node["current"], node["lagging"], node["in_flight"]) == (1, [], 0)
    assert node["acked"]["t1"]["version"] == 7


def test_a_nack_stays_with_envoys_error_until_a_later_version_is_acked(rig: Rig) -> None:
    rig.apply(9, res(RDS, "r0", "bad"))
    nonce = rig.reporter.log.started[-1][0]
    rejected = DeltaResponse(
        type_url=RDS, system_version_info="", nonce=nonce, resources=(), removed=()
    )
    rig.clock.now += 2000 * MS
    rig.send(rig.stream.on_request(delta_nack(rejected, error="regex (unclosed")))
    (node,) = doc(rig, versions={"t1": 9})["nodes"]
    (nack,) = node["nacks"]
    assert (nack["tenant"], nack["version"], nack["type"]) == ("t1", 9, "rds")
    assert nack["error"] == "regex (unclosed"
    assert nack["lag_s"] == pytest.approx(2.02)
    assert (node["current"], node["lagging"]) == (0, [])

    rig.apply(10, res(RDS, "r0", "good"))
    rig.ack_all((), after_ms=1)
    nonce = rig.reporter.log.started[-1][0]
    rig.send(rig.stream.on_request(delta_req(RDS, nonce=nonce)))
    (node,) = doc(rig, versions={"t1": 10})["nodes"]
    assert node["nacks"] == []
    assert node["current"] == 1
    assert node["acked"]["t1"]["version"] == 10


def test_a_closed_stream_leaves_the_view(rig: Rig) -> None:
    assert len(doc(rig, versions={"t1": 1})["nodes"]) == 1
    rig.view.closed()
    assert doc(rig, versions={"t1": 1})["nodes"] == []


def test_a_gateway_counts_only_its_tenants_and_the_document_is_json(rig: Rig) -> None:
    rig.view.gateway = "edge"
    policy = GatewayPolicy.of({"edge": ["t1", "t3"]})
    state = ReplicaState(
        streams=list(rig.tracker.streams),
        versions={"t1": 1, "t2": 4, "t3": 2},
        policy=policy,
        sla_s=5.0,
        now_ns=rig.clock.now,
    )
    status, body = render_status(state)
    assert status == 200
    parsed = json.loads(body)
    (node,) = parsed["nodes"]
    assert (node["gateway"], node["scope"], node["tenants"], node["current"]) == (
        "edge",
        ["t1", "t3"],
        2,
        2,
    )
    assert parsed["versions"] == {"t1": 1, "t2": 4, "t3": 2}
    assert parsed["tenants"] == 3
