"""Session affinity as ingress-nginx keeps it, through a real Envoy (issue #16, point 7)."""

from __future__ import annotations

import asyncio
import http.client
import subprocess
from typing import Any

from ripple_translator.store import RedisTenantStore
from tests.integration.xds_service.nginx_parity import (
    Gateway,
    echo_backend,
    errors,
    ingress,
    serve,
    services,
)
from tests.integration.xds_service.support import A, Ports, XdsProcess, until, write_tenant
from tests.unit.translator import k8s

HOST = "affinity-mode-persistent.com"
COOKIE = "hello-cookie"
ADDED = [f"127.0.0.{i}" for i in range(2, 22)]  # nothing listens there


def tenant(live: dict[str, int], *, added: list[str]) -> Any:
    """Service web: the live echo backends (name -> port) and `added` addresses."""
    port_of = next(iter(live.values()))
    slices = [
        k8s.endpoint_slice(
            f"web-{name}",
            service_name="web",
            endpoints=[k8s.endpoint("127.0.0.1")],
            ports=[{"name": "http", "port": port, "protocol": "TCP"}],
            namespace=A,
        )
        for name, port in live.items()
    ]
    if added:
        slices.append(
            k8s.endpoint_slice(
                "web-added",
                service_name="web",
                endpoints=[k8s.endpoint(a) for a in added],
                ports=[{"name": "http", "port": port_of, "protocol": "TCP"}],
                namespace=A,
            )
        )
    return k8s.run(
        ingress(
            "persistent", HOST, affinity="cookie", session_cookie_name=COOKIE,
            session_cookie_expires="172800", session_cookie_max_age="172800",
            affinity_mode="persistent",
        ),
        services=[k8s.service("web", namespace=A)],
        slices=slices,
        tenant=A,
    )  # fmt: skip


def admin_clusters(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    try:
        conn.request("GET", "/clusters")
        return conn.getresponse().read().decode()
    finally:
        conn.close()


async def test_persistent_affinity_keeps_each_client_on_its_endpoint_when_endpoints_are_added(
    *, xds: XdsProcess, envoy: subprocess.Popen[bytes], store: RedisTenantStore, ports: Ports
) -> None:
    """test/e2e/annotations/affinitymode.go ("Check persistent affinity mode"): with
    affinity-mode persistent, a client's cookie keeps it on the endpoint that answered first
    while endpoints are added (here 20 at once; with the ring hash of balanced mode, which
    ripple served before, most cookies move)."""
    with echo_backend("one") as one, echo_backend("two") as two:
        live = {"one": one, "two": two}
        t = tenant(live, added=[])
        assert errors(t) == []
        gateway = Gateway(ports)
        await serve(store, xds, gateway, t, ready=[(HOST, "/", 200)])

        clients: list[tuple[str, str]] = []  # (cookie, backend)
        for _ in range(6):
            answer = await gateway(HOST)
            assert answer.status == 200
            set_cookie = answer.headers["set-cookie"]
            assert set_cookie.startswith(f"{COOKIE}="), set_cookie
            assert "Max-Age=172800" in set_cookie, set_cookie
            assert "Path=/" in set_cookie, set_cookie
            clients.append((set_cookie.split(";")[0], answer.headers["x-backend"]))
        assert {backend for _, backend in clients} == {"one", "two"}  # balanced at first

        await write_tenant(store, A, list(tenant(live, added=ADDED).resources))

        async def added() -> bool:
            return f"{ADDED[-1]}:{one}" in await asyncio.to_thread(admin_clusters, ports.admin)

        await until("the added endpoints in Envoy", added, logs=[xds.log])
        for cookie, backend in clients:
            for _ in range(5):
                answer = await gateway(HOST, headers={"Cookie": cookie})
                assert (answer.status, answer.headers.get("x-backend")) == (200, backend)


CANARY_HOST = "foo"


async def test_a_client_sent_to_the_canary_stays_there(
    *, xds: XdsProcess, envoy: subprocess.Popen[bytes], store: RedisTenantStore, ports: Ports
) -> None:
    """test/e2e/annotations/canary.go ("always routes traffic to canary if first request was
    affinitized to canary (explicit sticky behavior)" and the default behaviour): the primary
    has affinity cookie, the canary weight 1 and ForceCanary: yes; after one forced request,
    50 requests with the cookies it got all reach the canary. With legacy behaviour they go
    back to the primary (99 %)."""
    legacy_host = "legacy.affinity.test"
    with echo_backend("primary") as primary, echo_backend("canary") as canary_port:
        svcs, slices = services({"primary": primary, "canary": canary_port})

        def pair(host: str, behavior: str) -> list[Any]:
            return [
                ingress(
                    f"{host}-main", host, path="/info", service="primary",
                    affinity="cookie", session_cookie_name="sticky-cookie",
                ),
                ingress(
                    f"{host}-canary", host, path="/info", service="canary",
                    canary="true", canary_by_header="ForceCanary", canary_by_header_value="yes",
                    canary_weight="1", affinity_canary_behavior=behavior,
                ),
            ]  # fmt: skip

        t = k8s.run(
            *pair(CANARY_HOST, "sticky"),
            *pair(legacy_host, "legacy"),
            services=svcs,
            slices=slices,
            tenant=A,
        )
        assert errors(t) == []
        gateway = Gateway(ports)
        await serve(store, xds, gateway, t, ready=[(CANARY_HOST, "/info", 200)])

        for host in (CANARY_HOST, legacy_host):
            forced = await gateway(host, "/info", headers={"ForceCanary": "yes"})
            assert forced.headers["x-backend"] == "canary"
            cookies = forced.cookies()
            assert "sticky-cookie=" in cookies, forced.set_cookies
            seen = []
            for _ in range(50):
                answer = await gateway(host, "/info", headers={"Cookie": cookies})
                assert answer.status == 200
                seen.append(answer.headers["x-backend"])
            if host == CANARY_HOST:
                assert set(seen) == {"canary"}
            else:  # legacy: the 1 % weight again on each request
                assert seen.count("primary") >= 40, seen
