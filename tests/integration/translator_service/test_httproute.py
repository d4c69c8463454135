"""Gateway API through the translator service against the stack's Kafka and Redis: a Gateway
and HTTPRoutes published as the watcher does become the tenant's scopes and routes in Redis
(next to an Ingress of the same tenant, which keeps its older host); deleting the route removes
its host's scope."""

from __future__ import annotations

import uuid
from typing import Any

import redis.asyncio as aioredis
from envoy.config.route.v3 import route_pb2

from ripple_common.lifecycle import Lifecycle
from ripple_common.resources import TypeUrl
from ripple_translator.app import start_translator
from ripple_translator.store import KeyLayout, RedisTenantStore
from tests.conftest import StackEnv
from tests.integration.translator_service.support import (
    class_envelope,
    eventually,
    eventually_committed,
    loop_settings,
    names,
    produce,
)
from tests.unit.translator import gwapi
from tests.unit.translator_service.support import deleted, event, ingress, service

TENANT = "gw-tenant"


async def route_config(client: aioredis.Redis, prefix: str) -> Any:
    raw = await client.hget(
        KeyLayout(prefix=prefix).resources(TENANT, TypeUrl.ROUTE), f"{TENANT}/routes"
    )
    assert raw is not None
    return route_pb2.RouteConfiguration.FromString(
        raw if isinstance(raw, bytes) else raw.encode("latin-1")
    )


async def test_httproutes_become_scopes_and_routes_in_redis(
    stack: StackEnv, redis_client: aioredis.Redis, prefix: str, topic: str
) -> None:
    bootstrap = stack["RIPPLE_KAFKA_BOOTSTRAP"]
    group = f"it-gw-{uuid.uuid4().hex[:8]}"
    settings = loop_settings(stack, topic=topic, prefix=prefix, group=group)
    store = RedisTenantStore(redis_client, layout=KeyLayout(prefix=prefix))
    ns = TENANT
    shop = gwapi.http_route(
        "shop",
        namespace=ns,
        hostnames=["shop.gw.example", "both.gw.example"],
        created="2024-02-01T00:00:00Z",
        rules=[
            gwapi.rule(
                gwapi.path_match("/api", headers=[{"name": "x-env", "value": "beta"}]),
                backends=[gwapi.backend_ref("web", weight=3), gwapi.backend_ref("v2", weight=1)],
            ),
            gwapi.rule(
                gwapi.path_match("/old", "Exact"),
                backends=[],
                filters=[
                    {
                        "type": "RequestRedirect",
                        "requestRedirect": {"scheme": "https", "statusCode": 301},
                    }
                ],
            ),
        ],
    )
    theirs = gwapi.http_route(
        "theirs", namespace=ns, hostnames=["theirs.gw.example"], parents=[{"name": "istio"}]
    )
    await produce(
        bootstrap,
        topic,
        [
            class_envelope(),
            event(TENANT, service(ns)),
            event(TENANT, service(ns, "v2")),
            event(TENANT, gwapi.gateway(namespace=ns)),
            event(TENANT, gwapi.gateway("istio", namespace=ns, class_name="istio")),
            # The Ingress is older (2024-01-01) than the route: it keeps both.gw.example.
            event(TENANT, ingress(ns, "legacy", "both.gw.example")),
            event(TENANT, shop),
            event(TENANT, theirs),
        ],
    )

    lc = Lifecycle()
    await start_translator(lc, settings)
    try:

        async def written() -> bool:
            return {
                f"{TENANT}/scope/shop.gw.example",
                f"{TENANT}/scope/both.gw.example",
            } <= names(await store.load_checkpoint(TENANT))

        await eventually(written)
        await eventually_committed(bootstrap, topic, group)
        got = names(await store.load_checkpoint(TENANT))
        assert f"{TENANT}/scope/theirs.gw.example" not in got
        assert {f"{TENANT}/{ns}/web:80", f"{TENANT}/{ns}/v2:80"} <= got
        rc = await route_config(redis_client, prefix)
        vhosts = {vh.name: vh for vh in rc.virtual_hosts}
        assert [r.name for r in vhosts["both.gw.example"].routes] == [f"{ns}/legacy"]
        old, api = vhosts["shop.gw.example"].routes  # Exact first
        assert old.match.path == "/old"
        assert old.redirect.scheme_redirect == "https"
        assert api.match.path_separated_prefix == "/api"
        assert [(h.name, h.string_match.exact) for h in api.match.headers] == [("x-env", "beta")]
        assert sorted((c.name, c.weight.value) for c in api.route.weighted_clusters.clusters) == [
            (f"{TENANT}/{ns}/v2:80", 1),
            (f"{TENANT}/{ns}/web:80", 3),
        ]

        await produce(bootstrap, topic, [deleted(TENANT, "HTTPRoute", ns, "shop")])

        async def removed() -> bool:
            now = names(await store.load_checkpoint(TENANT))
            return f"{TENANT}/scope/shop.gw.example" not in now

        await eventually(removed)
        assert f"{TENANT}/scope/both.gw.example" in names(await store.load_checkpoint(TENANT))
    finally:
        await lc.aclose()
