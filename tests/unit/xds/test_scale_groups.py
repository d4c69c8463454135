"""bench.scale's gateway groups: the plan's tenants split into groups named by prefix
patterns the xds settings accept, each tenant in exactly one group, and each group's Envoy
bootstrap doing mTLS to its own replica."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bench.probe import Plan
from bench.scale_groups import envoy_bootstrap, hosts_by_group, prefix_cover, split
from ripple_xds.identity import GatewayPolicy


@pytest.mark.parametrize(
    ("lo", "hi", "cover"),
    [
        (0, 10_000, ["0"]),
        (10_000, 20_000, ["1"]),
        (0, 1_000, ["00"]),
        (100, 200, ["001"]),
        (0, 100_000, [""]),
        (0, 3_333, ["00", "01", "02", "030", "031", "032", "0330", "0331", "0332", "03330",
                    "03331", "03332"]),
    ],
)  # fmt: skip
def test_prefix_cover_is_exact_and_small(lo: int, hi: int, cover: list[str]) -> None:
    assert prefix_cover(lo, hi, 5) == cover
    # Each prefix's numbers lie in [lo, hi), no two overlap, and together they count hi - lo.
    assert all(lo <= int(p.ljust(5, "0")) and int(p.ljust(5, "9")) < hi for p in cover)
    assert not [(p, q) for p in cover for q in cover if p != q and q.startswith(p)]
    assert sum(10 ** (5 - len(p)) for p in cover) == hi - lo


def _plan(ingresses: int, tenants: int) -> Plan:
    return Plan(mode="t", ingresses=ingresses, tenants=tenants, probes=1, burst=1)


@pytest.mark.parametrize(
    ("tenants", "groups", "patterns"),
    [
        (20_000, 2, [("probe-t0*",), ("probe-t1*",)]),
        (2_000, 2, [("probe-t00*",), ("probe-t01*",)]),
        (200, 2, [("probe-t000*",), ("probe-t001*",)]),
    ],
)
def test_two_groups_are_one_prefix_each(
    tenants: int, groups: int, patterns: list[tuple[str, ...]]
) -> None:
    assert [g.patterns for g in split(_plan(10, tenants), groups, ports_base=23181)] == patterns


def test_every_tenant_is_in_exactly_one_group_as_the_xds_settings_see_it() -> None:
    plan = _plan(3_000, 300)
    groups = split(plan, 3, ports_base=23181)
    policy = GatewayPolicy.of({g.gateway: list(g.patterns) for g in groups})
    for i in range(plan.tenants):
        seen_by = [g.k for g in groups if policy.gateways[g.gateway].allows_tenant(plan.tenant(i))]
        assert seen_by == [g.k for g in groups if g.holds(i)]
        assert len(seen_by) == 1
    hosts = hosts_by_group(plan, groups)
    assert sorted(len(h) for h in hosts.values()) == [1_000, 1_000, 1_000]
    assert [g.ads for g in groups] == [23181, 23191, 23201]


def test_a_groups_envoy_does_mtls_to_its_own_replica(tmp_path: Path) -> None:
    (group,) = split(_plan(10, 10), 1, ports_base=23181)
    files = {n: tmp_path / n for n in ("ca.crt", "group-1.crt", "group-1.key")}
    config = yaml.safe_load(envoy_bootstrap(group, files))
    assert config["node"] == {"id": "scale-group-1", "cluster": "group-1"}
    assert config["admin"]["address"]["socket_address"]["port_value"] == group.admin
    (xds,) = config["static_resources"]["clusters"]
    endpoint = xds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"]["port_value"] == group.ads
    tls = xds["transport_socket"]["typed_config"]
    assert tls["sni"] == "ripple-xds"
    chain = tls["common_tls_context"]["tls_certificates"][0]["certificate_chain"]
    assert chain["filename"] == str(files["group-1.crt"])
