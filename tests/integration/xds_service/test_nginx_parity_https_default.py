"""Issue #16 point 4, HTTPS without a certificate, with real requests through a real Envoy
(Delta ADS from the xds process). ingress-nginx always listens on HTTPS with a default
certificate; its e2e tests pin the answers:

- test/e2e/defaultbackend/ssl.go: HTTPS to the controller's address (no SNI) and to an unknown
  host gets the self-generated certificate, issuer CN "Kubernetes Ingress Controller Fake
  Certificate"; an unknown host is the default backend's 404;
- test/e2e/ssl/secret_update.go ("should return the fake SSL certificate if the secret is
  invalid"): a host whose Secret is unusable is served (200) over HTTPS with the fake
  certificate: CN as above, O "Acme Co", DNS name ingress.local;
- test/e2e/settings/default_ssl_certificate.go: with --default-ssl-certificate, that
  certificate is served without any Ingress, and to a host whose own certificate does not
  name it.

Before: no HTTPS listener existed until some host had a certificate (connection refused), and
then an unknown SNI got no handshake."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from ripple_translator.store import RedisTenantStore
from tests.conftest import StackEnv
from tests.integration.loopback import free_port
from tests.integration.xds_service.parity_support import (
    Answer,
    common_name,
    gateway,
    request,
    still_valid,
)
from tests.integration.xds_service.support import (
    HOST_A,
    HOST_B1,
    A,
    B,
    Ports,
    XdsProcess,
    tenant_resources,
    until,
    write_tenant,
)
from tests.unit.xds import certs

FAKE_CN = "Kubernetes Ingress Controller Fake Certificate"


async def https(port: int, host: str, *, sni: str | None, xds: XdsProcess) -> Answer | None:
    xds.check_alive()
    try:
        return await asyncio.to_thread(request, port, host, tls=True, sni=sni)
    except OSError:
        return None


async def test_hosts_without_a_usable_certificate_and_unknown_hosts_get_the_fake_certificate(
    *,
    stack: StackEnv,
    store: RedisTenantStore,
    prefix: str,
    ports: Ports,
    backend_port: int,
    tmp_path: Path,
) -> None:
    https_port = free_port()
    # Tenant a: a host with no certificate at all. Tenant b: a host whose Secret's
    # certificate names another host (default_ssl_certificate.go: "not.foo").
    await write_tenant(store, A, tenant_resources(A, [HOST_A], backend_port=backend_port))
    b_resources = tenant_resources(B, [HOST_B1], backend_port=backend_port)
    b_resources.append(certs.secret(f"{B}/{B}/tls-b1", certs.self_signed("not.foo")))
    await write_tenant(store, B, b_resources)

    async with gateway(
        stack=stack, prefix=prefix, ports=ports, tmp_path=tmp_path, https_port=https_port
    ) as (xds, _):

        async def served() -> bool:
            got = await https(https_port, HOST_A, sni=HOST_A, xds=xds)
            return got is not None and got.status == 200

        await until(f"https {HOST_A} -> 200", served, logs=[xds.log, tmp_path / "envoy.log"])

        for host in (HOST_A, HOST_B1):
            got = await https(https_port, host, sni=host, xds=xds)
            assert got is not None, host
            assert got.status == 200, (host, got)
            assert got.body == f"backend host={host}", host
            assert common_name(got.certificate) == FAKE_CN
            assert got.certificate is not None
            assert got.certificate.issuer == got.certificate.subject  # self-signed
            assert "O=Acme Co" in got.certificate.subject.rfc4514_string()
            assert still_valid(got.certificate)

        # An unknown host: the fake certificate and 404, with SNI and without.
        unknown = await https(https_port, "foo.bar.com", sni="foo.bar.com", xds=xds)
        assert unknown is not None
        assert unknown.status == 404
        assert common_name(unknown.certificate) == FAKE_CN
        no_sni = await https(https_port, "127.0.0.1", sni=None, xds=xds)
        assert no_sni is not None
        assert no_sni.status == 404
        assert common_name(no_sni.certificate) == FAKE_CN
        # A host without a certificate over HTTPS without SNI: still routed by Host.
        by_host = await https(https_port, HOST_A, sni=None, xds=xds)
        assert by_host is not None
        assert by_host.status == 200

        # The host gets its own certificate once it has one; the others keep the fake one.
        own = certs.self_signed(HOST_A)
        a_resources = certs.choose(
            tenant_resources(A, [HOST_A], backend_port=backend_port), {HOST_A: f"{A}/{A}/tls-a"}
        )
        a_resources.append(certs.secret(f"{A}/{A}/tls-a", own))
        await write_tenant(store, A, a_resources)

        async def own_certificate() -> bool:
            got = await https(https_port, HOST_A, sni=HOST_A, xds=xds)
            return got is not None and common_name(got.certificate) == HOST_A

        await until(f"https {HOST_A} with its own certificate", own_certificate, logs=[xds.log])
        other = await https(https_port, HOST_B1, sni=HOST_B1, xds=xds)
        assert other is not None
        assert (other.status, common_name(other.certificate)) == (200, FAKE_CN)


async def test_a_configured_default_certificate_is_served_without_any_ingress(
    *,
    stack: StackEnv,
    prefix: str,
    ports: Ports,
    tmp_path: Path,
) -> None:
    """default_ssl_certificate.go: the configured certificate (a Secret mounted as files),
    served before any Ingress exists; an unknown host gets 404 with it."""
    https_port = free_port()
    pem = certs.self_signed("default.example.com", "*.example.com")
    (tmp_path / "tls.crt").write_bytes(pem.certificate)
    (tmp_path / "tls.key").write_bytes(pem.private_key)
    async with gateway(
        stack=stack,
        prefix=prefix,
        ports=ports,
        tmp_path=tmp_path,
        https_port=https_port,
        default_certificate_file=str(tmp_path / "tls.crt"),
        default_certificate_key_file=str(tmp_path / "tls.key"),
    ) as (xds, _):

        async def answers() -> bool:
            got = await https(https_port, "nothing.example.com", sni="nothing.example.com", xds=xds)
            return got is not None

        await until("https listener answers", answers, logs=[xds.log, tmp_path / "envoy.log"])
        got = await https(https_port, "nothing.example.com", sni="nothing.example.com", xds=xds)
        assert got is not None
        assert got.status == 404
        assert common_name(got.certificate) == "default.example.com"
        assert got.certificate is not None
        assert got.certificate.public_bytes(serialization.Encoding.DER) == pem.der
