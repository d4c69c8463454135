"""TLS via SDS per SNI, through the whole xds process and a real Envoy (Delta ADS): two
tenants each have a TLS host whose certificate is a Secret resource in Redis, with the
private key sealed (as the design requires: no plaintext key in Redis). The xds server opens
the keys with the operator's key and builds the gateway's HTTPS listener, one filter chain
per host matched by SNI, certificates by SDS. HTTPS requests with each SNI get that host's
certificate and an answer from the backend; an unknown SNI gets no handshake; a TLS host
added later is served with its own certificate.

A tenant's Secret whose key does not match its certificate, written straight to Redis (past
the translator's check), is not served: the xds server refuses it and counts it against that
tenant, and the other tenants' HTTPS hosts, old and new, keep being served (before, Envoy
refused the shared listener and no new HTTPS host of any tenant was served)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ripple_common.resources import Resource
from ripple_common.sealing import Sealer
from ripple_translator.seal import seal_secret
from ripple_translator.store import RedisTenantStore
from tests.conftest import StackEnv
from tests.integration.loopback import free_port, http_get, https_get, status
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
    running_envoy,
    running_xds,
    stop_process,
    tenant_resources,
    until,
    write_tenant,
    xds_settings,
)
from tests.unit.xds import certs

KEY = os.urandom(32)
SEALER = Sealer(KEY)


def tls_tenant(
    tenant: str, hosts: list[str], pems: dict[str, certs.Pem], *, backend_port: int
) -> list[Resource]:
    """The tenant's routes and, per TLS host, a Secret (sealed key) naming that host, chosen
    for it."""
    names = {host: f"{tenant}/{tenant}/tls-{host.split('.')[0]}" for host in pems}
    resources = certs.choose(tenant_resources(tenant, hosts, backend_port=backend_port), names)
    for host, pem in pems.items():
        resources.append(seal_secret(certs.secret(names[host], pem), SEALER))
    return resources


@pytest.fixture
def https_port() -> int:
    return free_port()


@pytest.fixture
async def tls_xds(
    *,
    stack: StackEnv,
    prefix: str,
    ports: Ports,
    https_port: int,
    tmp_path: Path,
) -> AsyncIterator[XdsProcess]:
    settings = xds_settings(redis_url=stack["RIPPLE_REDIS_URL"], prefix=prefix, ports=ports)
    settings |= {
        "gateway_https_address": "127.0.0.1",
        "gateway_https_port": str(https_port),
        "sealing_key": base64.b64encode(KEY).decode(),
        "insecure_dev_secrets": "true",  # SDS without mTLS (the test's Envoy has no cert)
    }
    async with running_xds(settings, log=tmp_path / "xds.log", health_port=ports.health) as xds:
        yield xds


@pytest.fixture
def tls_envoy(
    stack: StackEnv, tls_xds: XdsProcess, ports: Ports, tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with running_envoy(
        stack["RIPPLE_ENVOY_BIN"],
        xds_port=ports.xds,
        admin_port=ports.admin,
        node_id="it-xds-tls",
        workdir=tmp_path,
    ) as proc:
        yield proc


async def test_each_sni_gets_its_hosts_certificate_from_sealed_secrets(
    *,
    store: RedisTenantStore,
    redis_client: aioredis.Redis,
    prefix: str,
    backend_port: int,
    tls_xds: XdsProcess,
    tls_envoy: subprocess.Popen[bytes],
    https_port: int,
    ports: Ports,
    tmp_path: Path,
) -> None:
    logs = (tls_xds.log, tmp_path / "envoy.log")
    pems = {HOST_A: certs.self_signed(HOST_A), HOST_B1: certs.self_signed(HOST_B1)}
    await write_tenant(
        store, A, tls_tenant(A, [HOST_A], {HOST_A: pems[HOST_A]}, backend_port=backend_port)
    )
    await write_tenant(
        store, B, tls_tenant(B, [HOST_B1], {HOST_B1: pems[HOST_B1]}, backend_port=backend_port)
    )

    async def answer(host: str) -> tuple[bytes, str] | None:
        tls_xds.check_alive()
        assert tls_envoy.poll() is None, "envoy exited"
        try:
            return await asyncio.to_thread(https_get, https_port, host)
        except OSError:
            return None

    def serves(host: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            got = await answer(host)
            return got is not None and got[1].endswith("200 OK")

        return check

    await until(f"https {HOST_A} -> 200", serves(HOST_A), logs=logs)
    await until(f"https {HOST_B1} -> 200", serves(HOST_B1), logs=logs)
    for host, pem in pems.items():
        got = await answer(host)
        assert got is not None
        assert got == (pem.der, "HTTP/1.1 200 OK"), host
    # No chain for an unknown SNI: no handshake, or a default certificate, never a tenant's.
    unknown = await answer("unknown.example.com")
    assert unknown is None or unknown[0] not in {pem.der for pem in pems.values()}

    pems[HOST_B2] = certs.self_signed(HOST_B2)
    b_pems = {HOST_B1: pems[HOST_B1], HOST_B2: pems[HOST_B2]}
    await write_tenant(
        store, B, tls_tenant(B, [HOST_B1, HOST_B2], b_pems, backend_port=backend_port)
    )
    await until(f"https {HOST_B2} -> 200", serves(HOST_B2), logs=logs, within_s=PROPAGATION_S)
    got = await answer(HOST_B2)
    assert got is not None
    assert got[0] == pems[HOST_B2].der
    still = await answer(HOST_A)
    assert still is not None
    assert still[0] == pems[HOST_A].der

    # What Redis holds: sealed keys only.
    stored = [
        body
        async for key in redis_client.scan_iter(match=f"{prefix}*res:sds")
        for body in (await redis_client.hgetall(key)).values()
    ]
    assert len(stored) == 3
    assert not any(b"PRIVATE KEY" in body for body in stored)
    _, metrics = await asyncio.to_thread(http_get, ports.health, "/metrics")
    assert metric(metrics, "ripple_xds_secrets_opened_total") >= 3
    assert metric(metrics, "ripple_xds_secrets_refused_total") == 0


C = "tenant-c"
HOST_C = "c.example.com"


def mismatched(host: str) -> certs.Pem:
    """A certificate for `host` with another certificate's key (Envoy: KEY_VALUES_MISMATCH)."""
    good, other = certs.self_signed(host), certs.self_signed(host)
    return certs.Pem(certificate=good.certificate, private_key=other.private_key, der=good.der)


async def test_a_secret_envoy_would_reject_is_excluded_and_other_tenants_https_goes_on(
    *,
    stack: StackEnv,
    store: RedisTenantStore,
    backend_port: int,
    tls_xds: XdsProcess,
    tls_envoy: subprocess.Popen[bytes],
    https_port: int,
    ports: Ports,
    tmp_path: Path,
) -> None:
    logs = (tls_xds.log, tmp_path / "envoy.log")

    async def answer(host: str) -> tuple[bytes, str] | None:
        tls_xds.check_alive()
        assert tls_envoy.poll() is None, "envoy exited"
        try:
            return await asyncio.to_thread(https_get, https_port, host)
        except OSError:
            return None

    def serves(host: str, pem: certs.Pem) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return await answer(host) == (pem.der, "HTTP/1.1 200 OK")

        return check

    pem_a, pem_b, pem_c = certs.self_signed(HOST_A), mismatched(HOST_B1), certs.self_signed(HOST_C)

    async def not_own_certificate(host: str) -> bool:
        """No handshake for B's host, or one with another certificate (a default one)."""
        got = await answer(host)
        return got is None or got[0] != pem_b.der

    await write_tenant(
        store, A, tls_tenant(A, [HOST_A], {HOST_A: pem_a}, backend_port=backend_port)
    )
    await until(f"https {HOST_A}", serves(HOST_A, pem_a), logs=logs)

    # Tenant B: a sealed Secret whose key belongs to another certificate, straight to Redis.
    await write_tenant(
        store,
        B,
        tls_tenant(B, [HOST_B1], {HOST_B1: pem_b}, backend_port=backend_port),
    )

    # B's routes reach Envoy (plain HTTP) before C writes: two separate changes.
    async def b_routed() -> bool:
        return await status(ports.http, "/", host=HOST_B1) == 200

    await until(f"http {HOST_B1}", b_routed, logs=logs)
    # Tenant C's new TLS host is served, with its own certificate; A still is; B is not.
    await write_tenant(
        store, C, tls_tenant(C, [HOST_C], {HOST_C: pem_c}, backend_port=backend_port)
    )
    await until(f"https {HOST_C}", serves(HOST_C, pem_c), logs=logs, within_s=PROPAGATION_S)
    assert await answer(HOST_A) == (pem_a.der, "HTTP/1.1 200 OK")
    assert await not_own_certificate(HOST_B1)  # no filter chain with B's Secret

    # A gateway Envoy (re)connecting now gets every tenant's Secrets at once: A's and C's
    # hosts are served by it too (before, that first Secret response carried B's bad Secret
    # and was refused whole: no HTTPS host of any tenant).
    stop_process(tls_envoy)
    (tmp_path / "restarted").mkdir()
    with running_envoy(
        stack["RIPPLE_ENVOY_BIN"],
        xds_port=ports.xds,
        admin_port=ports.admin,
        node_id="it-xds-tls-2",
        workdir=tmp_path / "restarted",
    ) as again:
        tls_envoy = again
        await until(f"https {HOST_A} (restarted)", serves(HOST_A, pem_a), logs=logs)
        await until(f"https {HOST_C} (restarted)", serves(HOST_C, pem_c), logs=logs)
        assert await not_own_certificate(HOST_B1)

    # The xds server refused B's Secret itself (Envoy never saw it), counted against B.
    _, text = await asyncio.to_thread(http_get, ports.health, "/metrics")
    assert metric(text, f'ripple_xds_secrets_rejected_total{{tenant="{B}"}}') == 1
    assert f'ripple_xds_secrets_rejected_total{{tenant="{C}"}}' not in text
    refusals = [
        json.loads(line)
        for line in tls_xds.log.read_text().splitlines()
        if "Envoy would reject" in line
    ]
    assert [(r["tenant"], r["secret"]) for r in refusals] == [(B, f"{B}/{B}/tls-b1")]
