"""Issue #16 point 5, the client address, with real requests through a real Envoy (Delta ADS
from the xds process) to an echo backend. The expected answers are ingress-nginx's e2e tests:

- test/e2e/settings/forwarded_headers.go: with use-forwarded-headers false (the default), a
  client's X-Forwarded-For is not trusted: the backend gets `x-forwarded-for=<peer>` and the
  claim as `x-original-forwarded-for=1.2.3.4`; true: `x-forwarded-for=1.2.3.4`;
- test/e2e/settings/proxy_protocol.go: with use-proxy-protocol, `PROXY TCP4 192.168.0.1
  192.168.0.11 56324 1234` gives `x-forwarded-for=192.168.0.1` and `x-forwarded-port=1234`,
  on the HTTP and the HTTPS port (`x-forwarded-proto=https` there);
- the allow-list (test/e2e/annotations/ipallowlist.go: 403 outside the ranges) and limit-rps
  (annotations/limitrate: 503 beyond the burst, per client) see that address: behind a load
  balancer, one client's burst does not limit another.

Before: Envoy always took the peer (the load balancer) as the client, so an allow-list of
client ranges refused everyone and every client shared the load balancer's rate limit; no
PROXY protocol."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

from ripple_common.resources import Resource
from ripple_translator.store import RedisTenantStore
from tests.conftest import StackEnv
from tests.integration.loopback import free_port
from tests.integration.xds_service.parity_support import (
    Answer,
    echo_backend,
    gateway,
    headers_of,
    request,
)
from tests.integration.xds_service.support import A, Ports, XdsProcess, until, write_tenant
from tests.unit.translator import k8s

OPEN, ALLOW, LIMITED = (f"{n}.client.test" for n in ("open", "allow", "limited"))
PROXY_LINE = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 1234\r\n"


def tenant(backend_port: int, *, allow: str) -> list[Resource]:
    port = {"name": "http", "port": backend_port, "protocol": "TCP"}
    slices = [k8s.endpoint_slice(endpoints=[k8s.endpoint("127.0.0.1")], ports=[port], namespace=A)]

    def ingress(name: str, host: str, **annotations: str) -> k8s.JsonDict:
        return k8s.ingress(
            name, rules=[k8s.rule(host)], annotations=k8s.nginx(**annotations), namespace=A
        )

    translation = k8s.run(
        ingress("open", OPEN),
        ingress("allow", ALLOW, whitelist_source_range=allow),
        ingress("limited", LIMITED, limit_rps="1", limit_burst_multiplier="1"),
        services=[k8s.service(namespace=A)],
        slices=slices,
        tenant=A,
    )
    assert not translation.diagnostics, translation.diagnostics
    return list(translation.resources)


async def get(
    port: int, host: str, xds: XdsProcess, headers: Mapping[str, str] | None = None, **kw: object
) -> Answer:
    xds.check_alive()
    return await asyncio.to_thread(request, port, host, headers=headers, **kw)  # type: ignore[arg-type]


async def serving(
    port: int, xds: XdsProcess, tmp_path: Path, *, proxy_header: str | None = None
) -> None:
    async def check() -> bool:
        try:
            return (await get(port, OPEN, xds, proxy_header=proxy_header)).status == 200
        except OSError:
            return False

    await until(f"{OPEN} -> 200", check, logs=[xds.log, tmp_path / "envoy.log"])


async def test_by_default_forwarded_headers_are_not_trusted(
    *, stack: StackEnv, store: RedisTenantStore, prefix: str, ports: Ports, tmp_path: Path
) -> None:
    with echo_backend() as backend:
        await write_tenant(store, A, tenant(backend, allow="1.2.3.0/24"))
        async with gateway(stack=stack, prefix=prefix, ports=ports, tmp_path=tmp_path) as (xds, _):
            await serving(ports.http, xds, tmp_path)
            claim = {
                "X-Forwarded-For": "1.2.3.4",
                "X-Forwarded-Host": "myhost",
                "X-Forwarded-Proto": "myproto",
                "X-Forwarded-Scheme": "myproto",
                "X-Forwarded-Port": "1234",
            }

            echoed = headers_of((await get(ports.http, OPEN, xds, claim)).body)
            assert echoed["host"] == OPEN
            assert echoed["x-forwarded-for"] == "127.0.0.1"
            assert echoed["x-original-forwarded-for"] == "1.2.3.4"
            assert echoed["x-forwarded-host"] == OPEN
            assert echoed["x-original-forwarded-host"] == "myhost"
            assert echoed["x-forwarded-proto"] == "http"
            assert echoed["x-forwarded-scheme"] == "http"
            assert echoed["x-forwarded-port"] == str(ports.http)
            # The allow-list sees the peer, whatever the client claims.
            assert (await get(ports.http, ALLOW, xds, claim)).status == 403


async def test_use_forwarded_headers_lets_source_ranges_and_rate_limits_see_the_client(
    *, stack: StackEnv, store: RedisTenantStore, prefix: str, ports: Ports, tmp_path: Path
) -> None:
    with echo_backend() as backend:
        await write_tenant(store, A, tenant(backend, allow="1.2.3.0/24"))
        async with gateway(
            stack=stack,
            prefix=prefix,
            ports=ports,
            tmp_path=tmp_path,
            use_forwarded_headers="true",
            trusted_hops="1",
        ) as (xds, _):
            await serving(ports.http, xds, tmp_path)
            client = {"X-Forwarded-For": "1.2.3.4"}
            forwarded = {
                **client,
                "X-Forwarded-Host": "myhost",
                "X-Forwarded-Proto": "myproto",
                "X-Forwarded-Scheme": "myproto",
                "X-Forwarded-Port": "1234",
            }

            echoed = headers_of((await get(ports.http, OPEN, xds, forwarded)).body)
            assert echoed["x-forwarded-for"] == "1.2.3.4"
            assert echoed["x-forwarded-host"] == "myhost"
            assert echoed["x-forwarded-proto"] == "myproto"
            assert echoed["x-forwarded-scheme"] == "myproto"
            assert echoed["x-forwarded-port"] == "1234"
            assert echoed["host"] == OPEN  # see "Where ripple differs" (docs/annotations.md)
            assert (await get(ports.http, ALLOW, xds, client)).status == 200
            # One hop trusted: the load balancer's own address (the last entry) is the client.
            spoofed = {"X-Forwarded-For": "1.2.3.4, 10.9.9.9"}
            assert (await get(ports.http, ALLOW, xds, spoofed)).status == 403
            assert (await get(ports.http, ALLOW, xds)).status == 403  # the peer, 127.0.0.1

            # limit-rps 1, burst 1: a client past its burst gets 503, another is still served.
            first = {"X-Forwarded-For": "5.5.5.5"}
            codes = [(await get(ports.http, LIMITED, xds, first)).status for _ in range(4)]
            assert codes[0] == 200
            assert 503 in codes, codes
            other = {"X-Forwarded-For": "6.6.6.6"}
            assert (await get(ports.http, LIMITED, xds, other)).status == 200


async def test_a_custom_forwarded_for_header_and_compute_full_forwarded_for(
    *, stack: StackEnv, store: RedisTenantStore, prefix: str, ports: Ports, tmp_path: Path
) -> None:
    with echo_backend() as backend:
        await write_tenant(store, A, tenant(backend, allow="1.2.3.0/24"))
        async with gateway(
            stack=stack,
            prefix=prefix,
            ports=ports,
            tmp_path=tmp_path,
            use_forwarded_headers="true",
            forwarded_for_header="X-Real-IP",
            compute_full_forwarded_for="true",
        ) as (xds, _):
            await serving(ports.http, xds, tmp_path)
            client = {"X-Real-IP": "1.2.3.4", "X-Forwarded-For": "9.9.9.9"}

            assert (await get(ports.http, ALLOW, xds, client)).status == 200
            assert (await get(ports.http, ALLOW, xds, {"X-Real-IP": "7.7.7.7"})).status == 403
            echoed = headers_of((await get(ports.http, OPEN, xds, client)).body)
            # compute-full-forwarded-for: the incoming list plus the peer.
            assert echoed["x-forwarded-for"].replace(" ", "") == "9.9.9.9,127.0.0.1"
            assert echoed["x-original-forwarded-for"] == "1.2.3.4"


async def test_proxy_protocol_gives_the_client_address_on_http_and_https(
    *, stack: StackEnv, store: RedisTenantStore, prefix: str, ports: Ports, tmp_path: Path
) -> None:
    https_port = free_port()
    with echo_backend() as backend:
        await write_tenant(store, A, tenant(backend, allow="192.168.0.0/24"))
        async with gateway(
            stack=stack,
            prefix=prefix,
            ports=ports,
            tmp_path=tmp_path,
            https_port=https_port,
            use_proxy_protocol="true",
        ) as (xds, _):
            await serving(ports.http, xds, tmp_path, proxy_header=PROXY_LINE)

            answer = await get(ports.http, ALLOW, xds, proxy_header=PROXY_LINE)
            assert answer.status == 200
            echoed = headers_of(answer.body)
            assert echoed["host"] == ALLOW
            assert echoed["x-forwarded-for"] == "192.168.0.1"
            assert echoed["x-forwarded-port"] == "1234"
            assert echoed["x-forwarded-proto"] == "http"
            # Over HTTPS (the default certificate), after the PROXY header.
            secure = await get(https_port, ALLOW, xds, proxy_header=PROXY_LINE, tls=True, sni=ALLOW)
            assert secure.status == 200
            echoed = headers_of(secure.body)
            assert echoed["x-forwarded-for"] == "192.168.0.1"
            assert echoed["x-forwarded-proto"] == "https"
            assert echoed["x-forwarded-port"] == "1234"
            # A client outside the allow-list, by its PROXY header.
            outside = "PROXY TCP4 10.0.0.1 192.168.0.11 56324 80\r\n"
            assert (await get(ports.http, ALLOW, xds, proxy_header=outside)).status == 403
