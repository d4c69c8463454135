"""Gateway + HTTPRoute -> watcher -> Kafka -> translator -> Redis -> xds -> the gateway Envoy.

Real Gateway API objects in kube-apiserver (the minimal CRDs of the watcher tests), real HTTP
through Envoy to the test backends: the route's host turns 404 -> 200, a prefix rule with a
URL rewrite serves from another Service with the prefix replaced, an Exact rule redirects, and
deleting the route turns the host 404 again. Times are printed (run with -s).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from scripts.demo import (
    BACKEND_A,
    BACKEND_B,
    HOST_SUFFIX,
    Answer,
    Kube,
    Tenant,
    add_tenant,
    http_get,
    not_found,
    poll_until,
    serves,
)
from scripts.pipeline import Pipeline
from tests.integration.watcher import gateway_api_crds
from tests.unit.translator import gwapi

GROUP, VERSION = gateway_api_crds.GROUP, gateway_api_crds.VERSION
SLA_S = 5.0
# The watcher polls for a CRD that was missing when it started every 30 s.
FIRST_TIMEOUT_S = 45.0


class GatewayObjects:
    """Creates Gateway API objects and deletes them afterwards."""

    def __init__(self, api: Any) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.created: list[tuple[str, str, str]] = []  # (plural, namespace, name)

    async def create(self, plural: str, body: dict[str, Any]) -> None:
        ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
        await self.custom.create_namespaced_custom_object(GROUP, VERSION, ns, plural, body)
        self.created.append((plural, ns, name))

    async def delete(self, plural: str, ns: str, name: str) -> None:
        await self.custom.delete_namespaced_custom_object(GROUP, VERSION, ns, plural, name)
        self.created.remove((plural, ns, name))

    async def cleanup(self) -> None:
        for plural, ns, name in reversed(self.created):
            with contextlib.suppress(ApiException):
                await self.custom.delete_namespaced_custom_object(GROUP, VERSION, ns, plural, name)
        self.created.clear()


@pytest.fixture
async def gateway_objects(kube: Kube) -> AsyncIterator[GatewayObjects]:
    await gateway_api_crds.install(kube.api)
    objects = GatewayObjects(kube.api)
    try:
        yield objects
    finally:
        await objects.cleanup()


def manifest(obj: dict[str, Any]) -> dict[str, Any]:
    """A test builder's object without the creation timestamp (the API sets it)."""
    body = {**obj, "metadata": dict(obj["metadata"])}
    body["metadata"].pop("creationTimestamp", None)
    return body


def moved(answer: Answer) -> bool:
    return answer.status == 301


@pytest.mark.usefixtures("backend")
async def test_httproute_changes_reach_envoy(
    pipeline: Pipeline,
    kube: Kube,
    gateway_objects: GatewayObjects,
    record_property: Callable[[str, object], None],
) -> None:
    port = pipeline.gateway_port
    rid = uuid.uuid4().hex[:8]
    tenant = Tenant(f"e2e-{rid}-gw", f"gw-{rid}.{HOST_SUFFIX}")
    await add_tenant(kube, tenant, services=[("web", BACKEND_A[1]), ("v2", BACKEND_B[1])])
    await gateway_objects.create("gateways", manifest(gwapi.gateway(namespace=tenant.ns)))
    assert (await http_get(tenant.host, port=port)).status == 404

    rewrite = {
        "type": "URLRewrite",
        "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}},
    }
    redirect = {
        "type": "RequestRedirect",
        "requestRedirect": {"hostname": "moved.example.com", "statusCode": 301},
    }
    route = gwapi.http_route(
        "web",
        namespace=tenant.ns,
        hostnames=[tenant.host],
        rules=[
            gwapi.rule(backends=[gwapi.backend_ref("web", 80)]),
            gwapi.rule(
                gwapi.path_match("/v2"),
                backends=[gwapi.backend_ref("v2", 80)],
                filters=[rewrite],
            ),
            gwapi.rule(gwapi.path_match("/old", "Exact"), backends=[], filters=[redirect]),
        ],
    )
    t0 = time.monotonic()
    await gateway_objects.create("httproutes", manifest(route))
    first = await poll_until(
        tenant.host, "/", port=port, done=serves(BACKEND_A[0]), since=t0, timeout_s=FIRST_TIMEOUT_S
    )
    print(f"e2e httproute create_to_200: {first.elapsed_s * 1000:.0f} ms")
    record_property("httproute_create_to_200_ms", round(first.elapsed_s * 1000, 1))

    v2 = await http_get(tenant.host, "/v2/deep/path", port=port)
    assert v2.shows(BACKEND_B[0]), v2
    assert b"path=/deep/path" in v2.body  # the prefix /v2 was replaced by /
    old = await http_get(tenant.host, "/old", port=port)
    assert moved(old), old

    t0 = time.monotonic()
    await gateway_objects.delete("httproutes", tenant.ns, "web")
    gone = await poll_until(tenant.host, "/", port=port, done=not_found, since=t0)
    print(f"e2e httproute delete_to_404: {gone.elapsed_s * 1000:.0f} ms")
    record_property("httproute_delete_to_404_ms", round(gone.elapsed_s * 1000, 1))
    assert gone.elapsed_s < SLA_S
