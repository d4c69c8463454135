"""Gateway groups (`RIPPLE_XDS_GATEWAYS`): tenant patterns (names, `prefix*`, `*`) validated
at start with messages naming the gateway and the entry, what a gateway sees, the tenants a
replica loads (the union of its gateways', every tenant with `*` or no gateways), and the
/debug/nodes scope of a prefix gateway."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ripple_xds.identity import Gateway, GatewayPolicy
from ripple_xds.settings import XdsSettings
from ripple_xds.status import ReplicaState, replica_status
from tests.unit.xds.test_propagation import Rig, rig

__all__ = ["rig"]  # the fixture, imported


def test_a_trailing_star_is_a_name_prefix_beside_exact_names() -> None:
    blue = GatewayPolicy.of({"blue": ["team-a-*", "t1"]}).gateways["blue"]
    assert blue == Gateway("blue", frozenset({"t1"}), ("team-a-",))
    assert [
        t
        for t in ("team-a-x", "team-a-", "t1", "team-a", "team-b-x", "t10")
        if blue.allows_tenant(t)
    ] == ["team-a-x", "team-a-", "t1"]
    assert blue.allows("team-a-x/route/r")
    assert not blue.allows("team-b-x/route/r")
    assert blue.patterns == ["t1", "team-a-*"]
    assert blue.tenants_among({"t1", "t2", "team-a-1", "team-b-1"}) == {"t1", "team-a-1"}


def test_a_star_entry_is_every_tenant_whatever_else_is_listed() -> None:
    edge = GatewayPolicy.of({"edge": ["t1", "*"]}).gateways["edge"]
    assert edge == Gateway("edge")
    assert edge.allows_tenant("anything")
    assert edge.patterns is None


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("a*b", r"\(it holds \*\)"),
        ("*a", r"\(it holds \*\)"),
        ("a**", r"\(it holds \*\)"),
        ("a?", r"\(it holds \?\)"),
        ("[ab]-*", r"\(it holds \[ \]\)"),
        ("a/b*", r"\(it holds /\)"),
        ("{a}", r"\(it holds \{ \}\)"),
        ("", "neither a tenant name"),
        (" a-*", "neither a tenant name"),
        ("a\n*", "neither a tenant name"),
    ],
)
def test_a_bad_tenant_pattern_is_refused_naming_the_gateway_and_the_entry(
    pattern: str, why: str
) -> None:
    with pytest.raises(ValueError, match=r"^gateway 'blue': tenant pattern ") as info:
        GatewayPolicy.of({"blue": ["t1", pattern]})
    assert str(info.value).startswith(f"gateway 'blue': tenant pattern {pattern!r} is neither")
    assert "trailing '*' (e.g. 'team-a-*')" in str(info.value)
    with pytest.raises(ValueError, match=why):
        GatewayPolicy.of({"blue": [pattern]})


def test_tenants_must_be_a_list() -> None:
    with pytest.raises(ValueError, match=r"gateway 'blue': tenants must be a list"):
        GatewayPolicy.of({"blue": "team-a-*"})


def test_the_settings_refuse_a_bad_pattern_at_start(tmp_path: Path) -> None:
    for name in ("c", "k", "ca"):
        (tmp_path / name).write_text("")
    tls = {
        "tls_cert_file": tmp_path / "c",
        "tls_key_file": tmp_path / "k",
        "tls_client_ca_file": tmp_path / "ca",
    }
    with pytest.raises(ValidationError, match=r"gateway 'a': tenant pattern 'a-\*-x' is neither"):
        XdsSettings(gateways={"a": ["a-*-x"]}, **tls)  # type: ignore[arg-type]
    settings = XdsSettings(gateways={"a": ["a-*"], "b": ["b-*", "shared"]}, **tls)  # type: ignore[arg-type]
    assert GatewayPolicy.of(settings.gateways).gateways["b"].prefixes == ("b-",)


def test_a_replica_loads_the_tenants_some_gateway_of_it_sees() -> None:
    holds = GatewayPolicy.of({"a": ["a-*"], "b": ["b-*", "shared"]}).tenant_filter()
    assert holds is not None
    assert [t for t in ("a-1", "b-1", "shared", "c-1", "a", "shared-2") if holds(t)] == [
        "a-1",
        "b-1",
        "shared",
    ]
    only_names = GatewayPolicy.of({"a": ["t1"], "b": ["t2"]}).tenant_filter()
    assert only_names is not None
    assert [t for t in ("t1", "t2", "t3") if only_names(t)] == ["t1", "t2"]
    nothing = GatewayPolicy.of({"a": []}).tenant_filter()
    assert nothing is not None
    assert not nothing("t1")


def test_every_tenant_without_gateways_or_with_a_gateway_of_all() -> None:
    assert GatewayPolicy().tenant_filter() is None
    assert GatewayPolicy.of({}).tenant_filter() is None
    assert GatewayPolicy.of({"a": ["a-*"], "edge": ["*"]}).tenant_filter() is None


def test_debug_nodes_shows_the_patterns_and_counts_the_prefix_tenants(rig: Rig) -> None:
    rig.view.gateway = "blue"
    state = ReplicaState(
        streams=list(rig.tracker.streams),
        versions={"t1": 1, "team-a-1": 3, "team-a-2": 2},
        policy=GatewayPolicy.of({"blue": ["team-a-*"]}),
        sla_s=5.0,
        now_ns=rig.clock.now,
    )
    (node,) = replica_status(state)["nodes"]
    assert (node["scope"], node["tenants"], node["current"]) == (["team-a-*"], 2, 2)
