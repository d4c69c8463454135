"""Issue #16 point 8, backends, with real requests through a real Envoy (Delta ADS from the
xds process):

- Services of type ExternalName (test/e2e/servicebackend/service_externalname.go: an Ingress
  to an ExternalName Service reaches the external host, 200; ingress-nginx's
  endpointslices.go refuses `localhost`): a STRICT_DNS cluster resolving the name, here this
  machine's host name, which /etc/hosts resolves to 127.0.0.1, on the Service's targetPort.
  Served only where the gateway opts in (RIPPLE_XDS_EXTERNAL_NAME_SERVICES): otherwise, and
  for `localhost` always, the route answers 503 as a Service without endpoints.
- backend-protocol HTTPS (test/e2e/annotations/backendprotocol.go: `proxy_pass https://`):
  TLS to the backend, whose handshake shows the SNI: the upstream-vhost's host, an
  ExternalName's name, none for a ClusterIP Service without upstream-vhost (nginx's
  proxy_ssl_server_name off).

Before: an ExternalName Service was unsupported (the path was not served) and no SNI was
ever sent."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from ripple_common.resources import Resource
from ripple_translator.store import RedisTenantStore
from tests.conftest import StackEnv
from tests.integration.xds_service.parity_support import (
    Answer,
    echo_backend,
    gateway,
    headers_of,
    request,
    tls_backend,
)
from tests.integration.xds_service.support import A, Ports, XdsProcess, until, write_tenant
from tests.unit.translator import k8s

EXT, EXT_LOCAL, EXT_TLS, VHOST_TLS, PLAIN_TLS = (
    f"{n}.backends.test" for n in ("ext", "ext-local", "ext-tls", "vhost-tls", "plain-tls")
)
UPSTREAM_VHOST = "secure.upstream.test"


def loopback_name() -> str:
    """A DNS name other than `localhost` that resolves to 127.0.0.1 here (the host name)."""
    name = socket.gethostname().lower()
    try:
        addresses = {a[4][0] for a in socket.getaddrinfo(name, None, socket.AF_INET)}
    except OSError:
        addresses = set()
    if addresses != {"127.0.0.1"} or name == "localhost" or "." in name:
        pytest.skip(f"host name {name!r} does not resolve to 127.0.0.1 only ({addresses})")
    return name


def external(name: str, external_name: str, target_port: int) -> k8s.JsonDict:
    service = k8s.service(
        name,
        namespace=A,
        ports=[{"name": "http", "port": 80, "targetPort": target_port}],
        type_="ExternalName",
    )
    service["spec"]["externalName"] = external_name
    return service


def tenant(*, echo: int, ext_tls: int, vhost_tls: int, plain_tls: int, name: str) -> list[Resource]:
    def slice_(service: str, port: int) -> k8s.JsonDict:
        return k8s.endpoint_slice(
            f"{service}-x",
            service_name=service,
            endpoints=[k8s.endpoint("127.0.0.1")],
            ports=[{"name": "http", "port": port, "protocol": "TCP"}],
            namespace=A,
        )

    def ingress(ingress_name: str, host: str, service: str, **annotations: str) -> k8s.JsonDict:
        return k8s.ingress(
            ingress_name,
            rules=[k8s.rule(host, k8s.path(service=service))],
            annotations=k8s.nginx(**annotations),
            namespace=A,
        )

    translation = k8s.run(
        ingress("ext", EXT, "ext"),
        ingress("ext-local", EXT_LOCAL, "ext-local"),
        ingress("ext-tls", EXT_TLS, "ext-tls", backend_protocol="HTTPS"),
        ingress(
            "vhost-tls", VHOST_TLS, "vhost", backend_protocol="HTTPS", upstream_vhost=UPSTREAM_VHOST
        ),
        ingress("plain-tls", PLAIN_TLS, "plain", backend_protocol="HTTPS"),
        services=[
            external("ext", name, echo),
            external("ext-local", "localhost", echo),
            external("ext-tls", name, ext_tls),
            k8s.service("vhost", namespace=A),
            k8s.service("plain", namespace=A),
        ],
        slices=[slice_("vhost", vhost_tls), slice_("plain", plain_tls)],
        tenant=A,
    )
    assert not translation.diagnostics, translation.diagnostics
    return list(translation.resources)


async def get(port: int, host: str, xds: XdsProcess) -> Answer:
    xds.check_alive()
    return await asyncio.to_thread(request, port, host)


async def test_external_name_services_and_tls_backends_with_sni(
    *, stack: StackEnv, store: RedisTenantStore, prefix: str, ports: Ports, tmp_path: Path
) -> None:
    name = loopback_name()
    with (
        echo_backend() as echo,
        tls_backend() as ext_tls,
        tls_backend() as vhost_tls,
        tls_backend() as plain_tls,
    ):
        resources = tenant(
            echo=echo,
            ext_tls=ext_tls.port,
            vhost_tls=vhost_tls.port,
            plain_tls=plain_tls.port,
            name=name,
        )
        await write_tenant(store, A, resources)
        async with gateway(
            stack=stack,
            prefix=prefix,
            ports=ports,
            tmp_path=tmp_path,
            external_name_services="true",
        ) as (xds, _):

            async def served() -> bool:
                try:
                    return (await get(ports.http, EXT, xds)).status == 200
                except OSError:
                    return False

            await until(f"{EXT} -> 200", served, logs=[xds.log, tmp_path / "envoy.log"])

            echoed = headers_of((await get(ports.http, EXT, xds)).body)
            assert echoed["host"] == EXT
            # localhost is never a gateway's external name: not served.
            assert (await get(ports.http, EXT_LOCAL, xds)).status == 503

            answer = await get(ports.http, EXT_TLS, xds)
            assert answer.status == 200, answer
            assert set(ext_tls.server_names) == {name}

            answer = await get(ports.http, VHOST_TLS, xds)
            assert answer.status == 200, answer
            assert headers_of(answer.body)["host"] == UPSTREAM_VHOST
            assert set(vhost_tls.server_names) == {UPSTREAM_VHOST}

            answer = await get(ports.http, PLAIN_TLS, xds)
            assert answer.status == 200, answer
            assert headers_of(answer.body)["host"] == PLAIN_TLS
            assert set(plain_tls.server_names) == {None}
        assert "ExternalName Service refused" in xds.log.read_text()


async def test_external_name_services_are_off_unless_the_gateway_opts_in(
    *, stack: StackEnv, store: RedisTenantStore, prefix: str, ports: Ports, tmp_path: Path
) -> None:
    name = loopback_name()
    with echo_backend() as echo, tls_backend() as tls:
        resources = tenant(
            echo=echo, ext_tls=tls.port, vhost_tls=tls.port, plain_tls=tls.port, name=name
        )
        await write_tenant(store, A, resources)
        async with gateway(stack=stack, prefix=prefix, ports=ports, tmp_path=tmp_path) as (
            xds,
            _,
        ):

            async def served() -> bool:
                try:
                    return (await get(ports.http, PLAIN_TLS, xds)).status == 200
                except OSError:
                    return False

            await until(f"{PLAIN_TLS} -> 200", served, logs=[xds.log, tmp_path / "envoy.log"])
            assert (await get(ports.http, EXT, xds)).status == 503
            assert (await get(ports.http, EXT_TLS, xds)).status == 503
