"""Gateway API kinds (gateway.networking.k8s.io/v1 Gateway and HTTPRoute) against the real
kube-apiserver and Kafka: watched once their CRDs are installed.

On a cluster without the CRDs (the first run on a fresh stack) the watcher starts first, waits
while the kinds are not served, and picks them up when the CRDs are installed: the "appears
later" path. The CRDs are left installed (deleting one deletes every object of its kind), so
later runs start with them present and cover the "present at start" path; the "appears later"
path is then covered by the unit test `test_absent_kind_is_polled_until_served`
(tests/unit/watcher/test_watchloop.py) and
`test_optional_kind_is_ready_while_absent_and_publishes_once_served`
(tests/unit/watcher/test_service.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from ripple_common.envelope import EventType
from tests.conftest import StackEnv
from tests.integration.watcher import gateway_api_crds as crds
from tests.integration.watcher.support import (
    FENCE,
    Kube,
    envelope_log,
    running_watcher,
    unique,
    watcher_settings,
)

KINDS = ("Namespace", "Gateway", "HTTPRoute")
# How often the watcher looks for a kind that is not served (the default is 30 s).
POLL_S = 0.2
HTTP_NOT_FOUND = 404

GATEWAY_SPEC: dict[str, Any] = {
    "gatewayClassName": "ripple",
    "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}],
}


def route_spec(host: str) -> dict[str, Any]:
    return {
        "parentRefs": [{"name": "gw"}],
        "hostnames": [host],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [{"name": "web", "port": 80}],
            }
        ],
    }


def body(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{crds.GROUP}/{crds.VERSION}",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }


async def test_gateway_and_httproute_are_published_once_their_crds_are_installed(
    stack: StackEnv, topic: str, kube: Kube
) -> None:
    present_at_start = await crds.installed(kube.api)
    ns = await kube.namespace(unique("rw-gw"))
    custom = client.CustomObjectsApi(kube.api)
    settings = watcher_settings(stack, topic, kinds=KINDS, absent_poll_seconds=POLL_S)
    try:
        async with (
            envelope_log(settings.kafka_bootstrap, topic) as log,
            running_watcher(settings) as running,
        ):
            gateways = running.group.watcher("Gateway")
            routes = running.group.watcher("HTTPRoute")
            if not present_at_start:
                # Not served: the watchers wait (and count as ready), polling for the API.
                await asyncio.sleep(5 * POLL_S)
                assert (gateways.started, routes.started) == (False, False)
                assert (gateways.ready, routes.ready) == (True, True)
                assert [r for r in log.records if r.envelope.kind in KINDS[1:]] == []
                await crds.install(kube.api)
            async with asyncio.timeout(30):
                await gateways.synced.wait()
                await routes.synced.wait()

            await custom.create_namespaced_custom_object(
                crds.GROUP, crds.VERSION, ns, "gateways", body("Gateway", "gw", GATEWAY_SPEC)
            )
            await log.wait_for(lambda: len(log.of_tenant(ns)) >= 1)
            await custom.create_namespaced_custom_object(
                crds.GROUP,
                crds.VERSION,
                ns,
                "httproutes",
                body("HTTPRoute", "web", route_spec("a.example.test")),
            )
            await log.wait_for(lambda: len(log.of_tenant(ns)) >= 2)
            await custom.patch_namespaced_custom_object(
                crds.GROUP,
                crds.VERSION,
                ns,
                "httproutes",
                "web",
                # A JSON patch (the client would label a dict body as one too, wrongly).
                [{"op": "replace", "path": "/spec/hostnames", "value": ["b.example.test"]}],
            )
            await log.wait_for(lambda: len(log.of_tenant(ns)) >= 3)
            await custom.delete_namespaced_custom_object(
                crds.GROUP, crds.VERSION, ns, "httproutes", "web"
            )
            await log.wait_for(lambda: len(log.of_tenant(ns)) >= 4)
            # Fences, written last in the tenant: every earlier event of their kind came first.
            await custom.create_namespaced_custom_object(
                crds.GROUP, crds.VERSION, ns, "gateways", body("Gateway", FENCE, GATEWAY_SPEC)
            )
            await custom.create_namespaced_custom_object(
                crds.GROUP,
                crds.VERSION,
                ns,
                "httproutes",
                body("HTTPRoute", FENCE, route_spec("fence.example.test")),
            )
            await log.wait_for(
                lambda: (
                    {r.envelope.kind for r in log.records if r.envelope.name == FENCE}
                    >= {"Gateway", "HTTPRoute"}
                )
            )
    finally:
        # No garbage collector here: an object left in the namespace would outlive it.
        for plural, name in (
            ("httproutes", "web"),
            ("gateways", "gw"),
            ("httproutes", FENCE),
            ("gateways", FENCE),
        ):
            try:
                await custom.delete_namespaced_custom_object(
                    crds.GROUP, crds.VERSION, ns, plural, name
                )
            except ApiException as exc:
                if exc.status != HTTP_NOT_FOUND:
                    raise

    assert log.summary(ns) == [
        ("ADDED", "Gateway", "gw"),
        ("ADDED", "HTTPRoute", "web"),
        ("MODIFIED", "HTTPRoute", "web"),
        ("DELETED", "HTTPRoute", "web"),
    ]
    gw, added, modified, _deleted = log.of_tenant(ns)
    assert gw.object is not None
    assert (gw.namespace, gw.object["apiVersion"], gw.object["kind"]) == (
        ns,
        "gateway.networking.k8s.io/v1",
        "Gateway",
    )
    assert gw.object["spec"] == GATEWAY_SPEC
    assert added.object is not None
    assert added.object["spec"] == route_spec("a.example.test")
    assert modified.object is not None
    assert modified.object["spec"] == route_spec("b.example.test")
    # Both kinds were listed (between relist markers) once their API was served.
    finished = {
        r.envelope.kind for r in log.records if r.envelope.type is EventType.RELIST_FINISHED
    }
    assert {"Gateway", "HTTPRoute"} <= finished
