"""The ingress-nginx annotations that shape traffic, with real requests through a real Envoy
(Delta ADS from the xds process): the translator's output for one tenant is written to Redis,
and each host then behaves as ingress-nginx would.

- limit-rps: a client gets its burst, then 503;
- proxy-body-size: a larger body is answered 413, a smaller one reaches the backend;
- affinity: Envoy sets the session cookie on the first answer;
- proxy-next-upstream: with one of two endpoints refusing connections, every GET is served,
  with the annotation and with ingress-nginx's default (no annotation);
- default-backend: a path no rule matches is served by the default-backend Service."""

from __future__ import annotations

import asyncio
import http.client
import subprocess
from collections.abc import Awaitable, Callable
from typing import Any

from ripple_common.resources import Resource
from ripple_translator.store import RedisTenantStore
from tests.integration.loopback import status
from tests.integration.xds_service.support import A, Ports, XdsProcess, until, write_tenant
from tests.unit.translator import k8s

RATE, BODY, STICKY, RETRY, DEFAULT_RETRY, FALLBACK = (
    f"{name}.annotations.test"
    for name in ("rate", "body", "sticky", "retry", "default-retry", "fallback")
)


def tenant(backend_port: int) -> list[Resource]:
    port = {"name": "http", "port": backend_port, "protocol": "TCP"}
    # `web` has the live backend; `flaky` one endpoint that refuses (nothing listens on
    # 127.0.0.2) and the live one; `other` the live one (the default backend).
    slices = [
        k8s.endpoint_slice(endpoints=[k8s.endpoint("127.0.0.1")], ports=[port], namespace=A),
        k8s.endpoint_slice(
            "flaky-x",
            service_name="flaky",
            endpoints=[k8s.endpoint("127.0.0.2"), k8s.endpoint("127.0.0.1")],
            ports=[port],
            namespace=A,
        ),
        k8s.endpoint_slice(
            "other-x", service_name="other", endpoints=[k8s.endpoint("127.0.0.1")], ports=[port],
            namespace=A,
        ),
    ]  # fmt: skip
    services = [k8s.service(name, namespace=A) for name in ("web", "flaky", "other")]

    def ingress(name: str, host: str, path: str = "/", service: str = "web", **ann: str) -> Any:
        return k8s.ingress(
            name,
            rules=[k8s.rule(host, k8s.path(path, service=service))],
            annotations=k8s.nginx(**ann),
            namespace=A,
        )

    translation = k8s.run(
        ingress("rate", RATE, limit_rps="2", limit_burst_multiplier="2"),
        ingress("body", BODY, proxy_body_size="1k"),
        ingress("sticky", STICKY, affinity="cookie", session_cookie_name="route"),
        ingress("retry", RETRY, service="flaky", proxy_next_upstream="error http_503"),
        ingress("default-retry", DEFAULT_RETRY, service="flaky"),
        ingress("fallback", FALLBACK, path="/app", default_backend="other"),
        services=services,
        slices=slices,
        tenant=A,
    )
    assert not translation.diagnostics, translation.diagnostics
    return list(translation.resources)


def request(
    port: int, host: str, *, method: str = "GET", path: str = "/", body: bytes | None = None
) -> tuple[int, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    try:
        conn.request(method, path, body=body, headers={"Host": host})
        resp = conn.getresponse()
        resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


async def test_traffic_annotations_behave_as_ingress_nginx(
    *,
    xds: XdsProcess,
    envoy: subprocess.Popen[bytes],
    store: RedisTenantStore,
    backend_port: int,
    ports: Ports,
) -> None:
    await write_tenant(store, A, tenant(backend_port))

    def serves(host: str, path: str = "/") -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            xds.check_alive()
            return await status(ports.http, path, host=host) == 200

        return check

    for host in (BODY, STICKY, RETRY, DEFAULT_RETRY):
        await until(f"{host} -> 200", serves(host), logs=[xds.log])
    await until(f"{FALLBACK}/app -> 200", serves(FALLBACK, "/app"), logs=[xds.log])

    def call(host: str, **kw: object) -> Awaitable[tuple[int, dict[str, str]]]:
        return asyncio.to_thread(request, ports.http, host, **kw)  # type: ignore[arg-type]

    # limit-rps 2, burst 2 x 2: at most 4 at once (+ the refill), then 503.
    codes = [(await call(RATE))[0] for _ in range(12)]
    assert codes[:4] == [200] * 4, codes
    assert 503 in codes, codes
    assert set(codes) <= {200, 503}, codes

    # proxy-body-size 1k: Envoy answers 413 itself; a small body reaches the backend (which
    # answers 501 to a POST: it only serves GET).
    assert (await call(BODY, method="POST", body=b"x" * 4096))[0] == 413
    assert (await call(BODY, method="POST", body=b"x" * 100))[0] == 501

    # affinity cookie: Envoy makes the cookie when the request has none.
    code, headers = await call(STICKY)
    assert code == 200
    assert headers.get("set-cookie", "").startswith("route="), headers

    # proxy-next-upstream error: the refused endpoint is retried on the live one.
    for host in (RETRY, DEFAULT_RETRY):
        codes = [(await call(host))[0] for _ in range(20)]
        assert codes == [200] * 20, (host, codes)

    # default-backend: /app is the rule; anything else goes to the default backend.
    assert (await call(FALLBACK, path="/elsewhere"))[0] == 200
