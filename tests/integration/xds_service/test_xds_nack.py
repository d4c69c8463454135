"""A tenant's update that Envoy rejects, through the whole xds process (Redis -> xds ->
Envoy, Delta ADS): the tenant's RouteConfiguration in Redis gets a route whose regex does not
compile (valid protobuf, so it passes encoding). Envoy NACKs it; the xds server records the
NACK (metric by type and by tenant, a log line with Envoy's error text and the tenant); Envoy
keeps serving the tenant's last good routes (HTTP 200); another tenant's later update still
reaches Envoy."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.type.matcher.v3 import regex_pb2

from ripple_common.resources import Resource, TypeUrl
from ripple_translator.store import RedisTenantStore
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
    metric,
    tenant_resources,
    until,
    write_tenant,
)

BAD_REGEX = "(unclosed"


def with_bad_route(resources: list[Resource]) -> list[Resource]:
    """The tenant's resources with a route matching a regex Envoy cannot compile put first
    in every virtual host of its RouteConfiguration."""
    out: list[Resource] = []
    for resource in resources:
        if resource.type_url is TypeUrl.ROUTE:
            config = route_pb2.RouteConfiguration.FromString(resource.body)
            for vhost in config.virtual_hosts:
                bad = route_components_pb2.Route(
                    match=route_components_pb2.RouteMatch(
                        safe_regex=regex_pb2.RegexMatcher(regex=BAD_REGEX)
                    ),
                    route=route_components_pb2.RouteAction(cluster=vhost.routes[0].route.cluster),
                )
                vhost.routes.insert(0, bad)
            out.append(Resource(resource.type_url, resource.name, config.SerializeToString()))
        else:
            out.append(resource)
    return out


def nack_lines(log: Path) -> list[dict[str, object]]:
    lines = []
    for line in log.read_text(errors="replace").splitlines():
        if '"xds nack"' in line:
            record = json.loads(line)
            if record.get("event") == "xds nack":
                lines.append(record)
    return lines


async def test_rejected_update_is_recorded_with_the_tenant_and_traffic_stays_on_last_good(
    *,
    xds: XdsProcess,
    envoy: subprocess.Popen[bytes],
    store: RedisTenantStore,
    backend_port: int,
    ports: Ports,
    tmp_path: Path,
) -> None:
    logs = (xds.log, tmp_path / "envoy.log")

    async def code(host: str) -> int | None:
        xds.check_alive()
        assert envoy.poll() is None, "envoy exited"
        return await status(ports.http, host=host)

    async def a_ok() -> bool:
        return await code(HOST_A) == 200

    await until(f"{HOST_A} -> 200", a_ok, logs=logs)

    async def metrics() -> str:
        _, text = await asyncio.to_thread(http_get, ports.health, "/metrics")
        return text

    good_a = tenant_resources(A, [HOST_A], backend_port=backend_port)
    # The bad version also adds a host: had Envoy taken it, a2 would answer.
    bad_a = with_bad_route(
        tenant_resources(A, [HOST_A, "a2.example.com"], backend_port=backend_port)
    )
    assert {r.name for r in bad_a} != {r.name for r in good_a}
    await write_tenant(store, A, bad_a)

    async def nacked() -> bool:
        return bool(nack_lines(xds.log))

    await until("the NACK is logged", nacked, logs=logs, within_s=PROPAGATION_S)
    (line,) = nack_lines(xds.log)[:1]
    assert line["tenants"] == [A], line
    assert line["type"] == "rds", line
    assert BAD_REGEX in str(line["error"]), line
    assert line["node"] == "it-xds-gateway", line
    text = await metrics()
    assert metric(text, 'ripple_xds_nacks_total{mode="delta",type="rds"}') >= 1
    assert metric(text, f'ripple_xds_nack_tenant_total{{tenant="{A}"}}') >= 1
    assert f'ripple_xds_nack_tenant_total{{tenant="{B}"}}' not in text

    # The last good config keeps serving: HOST_A answers from the backend.
    assert await asyncio.to_thread(http_get, ports.http, "/", host=HOST_A) == (
        200,
        f"backend host={HOST_A}",
    )

    # Another tenant's update flows: b2 turns from 404 to 200.
    assert await code(HOST_B2) == 404
    await write_tenant(store, B, tenant_resources(B, [HOST_B1, HOST_B2], backend_port=backend_port))

    async def b2_ok() -> bool:
        return await code(HOST_B2) == 200

    await until(f"{HOST_B2} -> 200", b2_ok, logs=logs, within_s=PROPAGATION_S)
    assert await code(HOST_A) == 200
    assert await code(HOST_B1) == 200
    text = await metrics()
    assert f'ripple_xds_nack_tenant_total{{tenant="{B}"}}' not in text

    # The tenant fixes its routes: the fixed version is taken.
    await write_tenant(
        store, A, tenant_resources(A, [HOST_A, "a3.example.com"], backend_port=backend_port)
    )

    async def a3_ok() -> bool:
        return await code("a3.example.com") == 200

    await until("a3.example.com -> 200", a3_ok, logs=logs, within_s=PROPAGATION_S)
