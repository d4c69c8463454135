"""ingress-nginx's `upstream-keepalive-timeout` through a real Envoy: the gateway closes an idle
upstream connection after the translator's `upstream_keepalive_timeout_s` (default 60 s, as
ingress-nginx). Envoy's own default keeps it for an hour, so a gateway serving tens of thousands
of clusters held a file per cluster and ran out (bench.scale at 200,000 Ingresses: `socket(2)
failed: Too many open files` at the 20,000-file limit)."""

from __future__ import annotations

import subprocess

from ripple_translator.store import RedisTenantStore
from ripple_translator.translate import TranslateOptions
from tests.integration.xds_service.nginx_parity import (
    Gateway,
    echo_backend,
    errors,
    ingress,
    serve,
    services,
)
from tests.integration.xds_service.support import A, Ports, XdsProcess, envoy_stats, until
from tests.unit.translator import k8s

HOST = "keepalive.example.com"


async def upstream_stats(admin: int, stat: str) -> int:
    """The sum of `cluster.<tenant A's clusters>.<stat>` on the test Envoy."""
    values = await envoy_stats(admin, stat)
    return sum(
        v
        for name, v in values.items()
        if name.startswith(f"cluster.{A}") and name.endswith(f".{stat}")
    )


async def test_an_idle_upstream_connection_is_closed_after_the_keepalive_timeout(
    *, xds: XdsProcess, envoy: subprocess.Popen[bytes], store: RedisTenantStore, ports: Ports
) -> None:
    with echo_backend() as web:
        svcs, slices = services({"web": web})
        t = k8s.run(
            ingress("web", HOST),
            services=svcs,
            slices=slices,
            tenant=A,
            options=TranslateOptions(upstream_keepalive_timeout_s=1.0),
        )
        assert errors(t) == []
        gateway = Gateway(ports)
        await serve(store, xds, gateway, t, ready=[(HOST, "/", 200)])
        assert await upstream_stats(ports.admin, "upstream_cx_active") == 1

        async def closed() -> bool:
            return await upstream_stats(ports.admin, "upstream_cx_active") == 0

        await until("the idle upstream connection closed", closed, logs=[xds.log], within_s=10)
        assert await upstream_stats(ports.admin, "upstream_cx_idle_timeout") == 1
        # The next request opens a new connection and is served.
        assert (await gateway(HOST)).status == 200
