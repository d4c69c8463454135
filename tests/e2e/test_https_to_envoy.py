"""HTTPS end to end: a TLS Secret and an Ingress with `tls` created in kube-apiserver are served
by the gateway Envoy over HTTPS with that Secret's certificate for the host's SNI, while the
private key never sits in plaintext in Kafka or Redis; with two Ingresses for one host, the
certificate served is the one the translator chose and reported.

watcher (seals the key into Kafka) -> translator (opens it to translate, seals it again in the
Secret resource it stores) -> Redis (sealed) -> xds (opens it on the way into its cache; SDS)
-> Envoy (HTTPS listener, one filter chain per SNI) -> the test backend."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from typing import Any, cast

import pytest
from kubernetes_asyncio import client

from ripple_common.resources import TypeUrl
from ripple_common.sealing import SEALED_PREFIX
from ripple_common.store_contract import KeyLayout
from ripple_translator.translate import Reason
from scripts.demo import (
    BACKEND_A,
    HOST_SUFFIX,
    Kube,
    Stored,
    add_tenant,
    ingress_manifest,
    tenants,
)
from scripts.pipeline import REDIS_PREFIX, Pipeline
from tests.integration.loopback import https_get
from tests.unit.xds import certs
from tests.waiting import eventually

SLA_S = 5.0
SETTLE_S = 30.0  # a correctness check, not a latency one: time for a loaded shared stack


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
        # Until the Secret's event reaches the translator (Secrets and Ingresses are watched
        # apart, so it may come after the Ingress) the host is served with the gateway's
        # default certificate, as ingress-nginx does: wait for its own.
        await _serves(port, tenant.host, pem, within_s=SLA_S)
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


def _reported(pipeline: Pipeline, tenant: str, text: str) -> bool:
    """Whether a translator reported a Warning on Ingress b-exact (its log line of the
    diagnostic, which also becomes a Warning Event where Events are enabled) holding `text`."""
    for name in pipeline.instances():
        if not name.startswith("translator"):
            continue
        with contextlib.suppress(OSError), pipeline.log_path(name).open() as log:
            for line in log:
                if tenant not in line or text not in line:
                    continue
                entry = json.loads(line)
                if (
                    entry.get("event") == "diagnostic"
                    and str(entry.get("severity")).lower() == "warning"
                    and (entry.get("tenant"), entry.get("kind"), entry.get("name"))
                    == (tenant, "Ingress", "b-exact")
                    and entry.get("reason") == Reason.SETTING_CONFLICT
                ):
                    return True
    return False


async def _serves(port: int, host: str, pem: certs.Pem, *, within_s: float) -> None:
    """Until `host` is answered 200 over HTTPS with `pem`'s certificate."""
    await eventually(
        lambda: _https(port, host),
        until=lambda answer: answer[1].startswith("HTTP/1.1 200") and answer[0] == pem.der,
        within_s=within_s,
        every_s=0.02,
        what=f"{host} served over HTTPS with its certificate",
    )


@pytest.mark.usefixtures("backend")
async def test_one_host_of_two_ingresses_is_served_with_the_certificate_the_translator_reports(
    pipeline: Pipeline, kube: Kube
) -> None:
    """The older Ingress binds the host to a wildcard certificate; a younger one asks for the
    same host with another Secret, whose certificate names the host exactly (and a second host
    of its own, so that Secret is served too). The translator keeps the older Ingress's
    Secret and says so in a Warning on the younger; Envoy serves exactly that one (the xds
    server used to rank an exact name first and serve the younger's)."""
    _, tenant, _ = tenants()
    other = f"other-{tenant.host}"
    wild = certs.self_signed(f"*.{HOST_SUFFIX}")
    exact = certs.self_signed(tenant.host, other)
    await add_tenant(kube, tenant, services=[("web", BACKEND_A[1])])
    for name, pem in (("wild-tls", wild), ("exact-tls", exact)):
        await kube.core.create_namespaced_secret(
            tenant.ns, cast(client.V1Secret, tls_secret(name, pem))
        )
    port = pipeline.ports.gateway_https
    try:
        older = ingress_manifest("a-wild", tenant.host, [("/", "web")])
        older["spec"]["tls"] = [{"hosts": [tenant.host], "secretName": "wild-tls"}]
        await kube.create_ingress(tenant.ns, older)
        await _serves(port, tenant.host, wild, within_s=SETTLE_S)  # the older's certificate

        younger = ingress_manifest("b-exact", tenant.host, [("/b", "web")])
        younger["spec"]["rules"].append(
            ingress_manifest("b-exact", other, [("/", "web")])["spec"]["rules"][0]
        )
        younger["spec"]["tls"] = [{"hosts": [tenant.host, other], "secretName": "exact-tls"}]
        await kube.create_ingress(tenant.ns, younger)
        # The younger's Secret is served (for its other host): the listener has both Secrets.
        await _serves(port, other, exact, within_s=SETTLE_S)  # the younger's other host

        answer = await _https(port, tenant.host)
        assert answer is not None
        assert answer[0] == wild.der, "the host is served with the younger Ingress's Secret"

        chosen = f"{tenant.ns}/{tenant.ns}/wild-tls"  # the Secret resource (tenant = namespace)
        await eventually(
            lambda: _reported(
                pipeline, tenant.ns, f"TLS host {tenant.host} already uses Secret {chosen}"
            ),
            within_s=SETTLE_S,
            every_s=0.1,
            what="a Warning naming the Secret served",
        )
        answer = await _https(port, tenant.host)
        assert answer is not None
        assert answer[0] == wild.der
    finally:
        for name in ("wild-tls", "exact-tls"):
            await kube.core.delete_namespaced_secret(name, tenant.ns)
