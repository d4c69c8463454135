"""HTTPS end to end: a TLS Secret and an Ingress with `tls` created in kube-apiserver are served
by the gateway Envoy over HTTPS with that Secret's certificate for the host's SNI, while the
private key never sits in plaintext in Kafka or Redis.

watcher (seals the key into Kafka) -> translator (opens it to translate, seals it again in the
Secret resource it stores) -> Redis (sealed) -> xds (opens it on the way into its cache; SDS)
-> Envoy (HTTPS listener, one filter chain per SNI) -> the test backend."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any, cast

import pytest
from kubernetes_asyncio import client

from ripple_common.resources import TypeUrl
from ripple_common.sealing import SEALED_PREFIX
from ripple_common.store_contract import KeyLayout
from scripts.demo import BACKEND_A, Kube, Stored, add_tenant, ingress_manifest, tenants
from scripts.pipeline import REDIS_PREFIX, Pipeline
from tests.integration.loopback import https_get
from tests.unit.xds import certs

SLA_S = 5.0


def tls_secret(name: str, pem: certs.Pem) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": base64.b64encode(pem.certificate).decode(),
            "tls.key": base64.b64encode(pem.private_key).decode(),
        },
    }


async def _https(port: int, host: str) -> tuple[bytes, str] | None:
    try:
        return await asyncio.to_thread(https_get, port, host)
    except OSError:  # no listener or no filter chain for this SNI yet
        return None


@pytest.mark.usefixtures("backend")
async def test_tls_ingress_serves_https_with_its_certificate_and_the_key_stays_sealed(
    pipeline: Pipeline, kube: Kube, stored: Stored
) -> None:
    _, tenant, _ = tenants()
    pem = certs.self_signed(tenant.host)
    await add_tenant(kube, tenant, services=[("web", BACKEND_A[1])])
    await kube.core.create_namespaced_secret(
        tenant.ns, cast(client.V1Secret, tls_secret("web-tls", pem))
    )
    try:
        ingress = ingress_manifest("web", tenant.host, [("/", "web")])
        ingress["spec"]["tls"] = [{"hosts": [tenant.host], "secretName": "web-tls"}]
        t0 = time.monotonic()
        await kube.create_ingress(tenant.ns, ingress)
        port = pipeline.ports.gateway_https
        answer = None
        while time.monotonic() - t0 < SLA_S:
            answer = await _https(port, tenant.host)
            # Until the Secret's event reaches the translator (Secrets and Ingresses are
            # watched apart, so it may come after the Ingress) the host is served with the
            # gateway's default certificate, as ingress-nginx does: wait for its own.
            if answer is not None and answer[1].startswith("HTTP/1.1 200") and answer[0] == pem.der:
                break
            await asyncio.sleep(0.02)
        assert answer is not None, f"no HTTPS answer for {tenant.host} within {SLA_S} s"
        der, status_line = answer
        assert status_line.startswith("HTTP/1.1 200"), status_line
        assert der == pem.der  # the tenant's own certificate for its SNI
        print(f"e2e https_first_200: {(time.monotonic() - t0) * 1000:.0f} ms")

        # Redis holds the Secret resource with its key sealed, never the plaintext.
        layout = KeyLayout(prefix=REDIS_PREFIX)
        secrets = await stored.client.hgetall(layout.resources(tenant.ns, TypeUrl.SECRET))
        assert secrets, "the translator stored no Secret resource"
        bodies = b"".join(v for v in secrets.values() if isinstance(v, bytes))
        assert SEALED_PREFIX.encode() in bodies
        assert b"PRIVATE KEY" not in bodies
        assert pem.private_key not in bodies
    finally:
        await kube.core.delete_namespaced_secret("web-tls", tenant.ns)
