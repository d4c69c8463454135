"""A change in one tenant sends only that tenant's resources to a real Envoy, measured.

The xds process serves tenants a and b to a real Envoy (Delta ADS). Tenant b gains a host.
Envoy's config dump shows which clusters, endpoints, route configurations and listeners it
received again (their `last_updated` moves only when the resource arrives): only tenant b's,
never tenant a's. Scopes carry no time of their own in the dump (one per SRDS subscription),
so the xds server's counters give the rest: the resources and bytes the change cost on the
wire are exactly tenant b's changed ones."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ripple_common.resources import TypeUrl
from ripple_translator.store import RedisTenantStore, diff_resources
from tests.integration.loopback import http_get, status
from tests.integration.xds_service.support import (
    HOST_A,
    HOST_B1,
    HOST_B2,
    PROPAGATION_S,
    A,
    B,
    Ports,
    XdsProcess,
    tail,
    tenant_resources,
    until,
    write_tenant,
)
from tests.waiting import eventually

# The dump sections with a time per resource: (list field, path to the resource name).
_DYNAMIC = {
    "ClustersConfigDump": ("dynamic_active_clusters", ("cluster", "name")),
    "EndpointsConfigDump": ("dynamic_endpoint_configs", ("endpoint_config", "cluster_name")),
    "RoutesConfigDump": ("dynamic_route_configs", ("route_config", "name")),
    "ListenersConfigDump": ("dynamic_listeners", ("name",)),
}


def _name(entry: Mapping[str, Any], path: tuple[str, ...]) -> str:
    value: Any = entry
    for key in path:
        value = value.get(key, {})
    return str(value)


def received(dump: Mapping[str, Any]) -> dict[str, str]:
    """Every dynamic resource in an Envoy config dump -> when it last arrived."""
    seen: dict[str, str] = {}
    for config in dump["configs"]:
        kind = config["@type"].rsplit(".", 1)[-1]
        if kind not in _DYNAMIC:
            continue
        field, path = _DYNAMIC[kind]
        for entry in config.get(field, ()):
            updated = entry.get("last_updated") or entry.get("active_state", {}).get(
                "last_updated", ""
            )
            seen[f"{kind}:{_name(entry, path)}"] = str(updated)
    return seen


async def _get_json(port: int, path: str) -> Any:
    code, body = await asyncio.to_thread(http_get, port, path)
    assert code == 200, body
    return json.loads(body)


def _sent(metrics: str) -> tuple[float, float]:
    """Delta resources and bytes sent so far (all types)."""
    resources = bytes_ = 0.0
    for line in metrics.splitlines():
        key, _, value = line.rpartition(" ")
        if key.startswith('ripple_xds_resources_sent_total{mode="delta"'):
            resources += float(value)
        elif key.startswith('ripple_xds_bytes_sent_total{mode="delta"'):
            bytes_ += float(value)
    return resources, bytes_


async def answered(
    ports: Ports, xds: XdsProcess, *, acked: Mapping[str, int] | None = None
) -> None:
    """Until Envoy has answered (ACK or NACK) every response xds sent it, and ACKed at least
    the `acked` tenant versions: xds's own per-node view (/debug/nodes) says so."""

    wanted = dict(acked or {})

    async def nodes() -> list[dict[str, Any]]:
        xds.check_alive()
        doc = await _get_json(ports.health, "/debug/nodes")
        return list(doc["nodes"])

    def settled(nodes: list[dict[str, Any]]) -> bool:
        return bool(nodes) and all(
            n["in_flight"] == 0
            and all(n["acked"].get(t, {}).get("version", 0) >= v for t, v in wanted.items())
            for n in nodes
        )

    await eventually(
        nodes,
        until=settled,
        within_s=PROPAGATION_S,
        what=f"every response answered, {wanted} ACKed",
        detail=lambda: tail(xds.log),
    )


async def test_one_tenants_change_reaches_envoy_without_touching_the_other(
    *,
    xds: XdsProcess,
    envoy: object,
    store: RedisTenantStore,
    backend_port: int,
    ports: Ports,
) -> None:
    def serves(host: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            xds.check_alive()
            return await status(ports.http, host=host) == 200

        return check

    for host in (HOST_A, HOST_B1):
        await until(f"{host} -> 200", serves(host), logs=[xds.log])
    await answered(ports, xds)
    before = received(await _get_json(ports.admin, "/config_dump?include_eds"))
    sent_before = _sent((await asyncio.to_thread(http_get, ports.health, "/metrics"))[1])

    old = tenant_resources(B, [HOST_B1], backend_port=backend_port)
    new = tenant_resources(B, [HOST_B1, HOST_B2], backend_port=backend_port)
    diff = diff_resources({(r.type_url, r.name): r.version for r in old}, new)
    version = await write_tenant(store, B, new)
    await until(f"{HOST_B2} -> 200", serves(HOST_B2), logs=[xds.log], within_s=PROPAGATION_S)
    await answered(ports, xds, acked={B: version})
    after = received(await _get_json(ports.admin, "/config_dump?include_eds"))
    sent_after = _sent((await asyncio.to_thread(http_get, ports.health, "/metrics"))[1])

    arrived = sorted(k for k, when in after.items() if before.get(k) != when)
    resources, bytes_ = (a - b for a, b in zip(sent_after, sent_before, strict=True))
    print(f"tenant b's change: {arrived}; sent {resources:.0f} resources, {bytes_:.0f} bytes")
    assert arrived, "Envoy received nothing"
    assert all(f":{B}/" in name for name in arrived), arrived
    assert not [k for k in after if f":{A}/" in k and before.get(k) != after[k]]
    assert any(f":{A}/" in k for k in after)  # tenant a's resources are there, untouched
    # The wire carried exactly the changed resources of tenant b.
    assert resources == len(diff.upserts), (resources, [r.name for r in diff.upserts])
    assert {TypeUrl.SCOPED_ROUTE, TypeUrl.ROUTE} <= {r.type_url for r in diff.upserts}
    assert 0 < bytes_ < 4096
