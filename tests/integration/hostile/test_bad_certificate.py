"""Hostile tenant: one bad TLS Secret must not block every tenant's new HTTPS hosts (issue #14,
point 4).

The real translator (in process, its own Kafka topic and Redis prefix, posting its diagnostics
as Kubernetes Events), the real xds server (a process on that prefix) and a real Envoy:

1. tenant A has a good TLS host, served over HTTPS with its certificate;
2. tenant B adds a Secret whose key does not match its certificate, and an Ingress using it;
3. tenant C then adds a new good TLS host.

C's host is served over HTTPS (a real handshake with C's SNI gets C's certificate), A's still
is, B's host is not served over HTTPS (no filter chain: no handshake) while its plain HTTP
still serves, and B has a diagnostic: an Event on its Secret and one on its Ingress. Before,
the pair passed the translator, Envoy refused the shared HTTPS listener
(KEY_VALUES_MISMATCH) and no new HTTPS host of any tenant was served.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from kubernetes_asyncio import client

from ripple_common.lifecycle import Lifecycle
from ripple_translator.app import start_translator
from ripple_translator.events import api_client
from ripple_translator.translate import Reason
from tests.conftest import StackEnv
from tests.integration.loopback import free_port, http_get, https_get
from tests.integration.translator_service.conftest import PARTITIONS
from tests.integration.translator_service.support import class_envelope, loop_settings, produce
from tests.integration.xds_service.support import (
    PROPAGATION_S,
    Ports,
    XdsProcess,
    running_envoy,
    running_xds,
    stop_process,
    until,
    xds_settings,
)
from tests.unit.translator import k8s
from tests.unit.translator_service.support import event
from tests.unit.xds import certs

KEY = os.urandom(32)
SEALING_KEY = base64.b64encode(KEY).decode()
DEADLINE_S = 30.0


@pytest.fixture
async def topic(stack: StackEnv) -> AsyncIterator[str]:
    name = f"it-hostile-tls-{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack["RIPPLE_KAFKA_BOOTSTRAP"])
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name=name, num_partitions=PARTITIONS, replication_factor=1)]
        )
        yield name
        await admin.delete_topics([name])
    finally:
        await admin.close()


@pytest.fixture
async def tenants(stack: StackEnv) -> AsyncIterator[tuple[str, str, str]]:
    """Three tenants (namespaces in kube-apiserver, so their Events can be read back)."""
    tag = uuid.uuid4().hex[:8]
    names = (f"hb-a-{tag}", f"hb-b-{tag}", f"hb-c-{tag}")
    api = await api_client(stack["KUBECONFIG"])
    core = client.CoreV1Api(api)
    try:
        for name in names:
            await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        yield names
    finally:
        for name in names:
            with contextlib.suppress(client.ApiException):
                await core.delete_namespace(name)
        await api.close()


@pytest.fixture
def ports() -> Ports:
    return Ports(xds=free_port(), http=free_port(), health=free_port(), admin=free_port())


@pytest.fixture
def https_port() -> int:
    return free_port()


@pytest.fixture
async def xds(
    *, stack: StackEnv, prefix: str, ports: Ports, https_port: int, tmp_path: Path
) -> AsyncIterator[XdsProcess]:
    settings = xds_settings(redis_url=stack["RIPPLE_REDIS_URL"], prefix=prefix, ports=ports)
    settings |= {
        "gateway_https_address": "127.0.0.1",
        "gateway_https_port": str(https_port),
        "sealing_key": SEALING_KEY,
        "insecure_dev_secrets": "true",  # SDS without mTLS (the test's Envoy has no cert)
    }
    async with running_xds(settings, log=tmp_path / "xds.log", health_port=ports.health) as proc:
        yield proc


@pytest.fixture
def envoy(
    stack: StackEnv, xds: XdsProcess, ports: Ports, tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with running_envoy(
        stack["RIPPLE_ENVOY_BIN"],
        xds_port=ports.xds,
        admin_port=ports.admin,
        node_id="it-hostile-tls",
        workdir=tmp_path,
    ) as proc:
        yield proc


def secret(tenant: str, name: str, pem: certs.Pem) -> dict[str, Any]:
    obj = k8s.tls_secret(name, cert=pem.certificate.decode(), key=pem.private_key.decode())
    obj["metadata"]["namespace"] = tenant
    return obj


def tls_app(tenant: str, host: str, pem: certs.Pem, *, backend_port: int) -> list[Any]:
    """A tenant's Service, EndpointSlice (the loopback backend), TLS Secret and Ingress."""
    return [
        event(tenant, k8s.service(namespace=tenant)),
        event(
            tenant,
            k8s.endpoint_slice(
                endpoints=[k8s.endpoint("127.0.0.1")],
                ports=[{"name": "http", "port": backend_port, "protocol": "TCP"}],
                namespace=tenant,
            ),
        ),
        event(tenant, secret(tenant, "web-tls", pem)),
        event(
            tenant,
            k8s.ingress(
                rules=[k8s.rule(host)],
                namespace=tenant,
                tls=[{"hosts": [host], "secretName": "web-tls"}],
            ),
        ),
    ]


def mismatched(host: str) -> certs.Pem:
    good, other = certs.self_signed(host), certs.self_signed(host)
    return certs.Pem(certificate=good.certificate, private_key=other.private_key, der=good.der)


async def test_a_bad_certificate_blocks_no_other_tenants_https_hosts(  # noqa: PLR0915
    *,
    stack: StackEnv,
    prefix: str,
    topic: str,
    tenants: tuple[str, str, str],
    backend_port: int,
    xds: XdsProcess,
    envoy: subprocess.Popen[bytes],
    ports: Ports,
    https_port: int,
    tmp_path: Path,
) -> None:
    a, b, c = tenants
    host_a, host_b, host_c = (f"{t}.example.com" for t in tenants)
    pem_a, pem_b, pem_c = certs.self_signed(host_a), mismatched(host_b), certs.self_signed(host_c)
    logs = (xds.log, tmp_path / "envoy.log")
    bootstrap = stack["RIPPLE_KAFKA_BOOTSTRAP"]
    settings = loop_settings(
        stack,
        topic=topic,
        prefix=prefix,
        group=f"it-hostile-tls-{uuid.uuid4().hex[:8]}",
        sealing_key=SEALING_KEY,
        events_enabled=True,
        kubeconfig=stack["KUBECONFIG"],
        events_rate_per_s=100,
    )

    async def answer(host: str) -> tuple[bytes, str] | None:
        xds.check_alive()
        assert envoy.poll() is None, "envoy exited"
        try:
            return await asyncio.to_thread(https_get, https_port, host)
        except OSError:
            return None

    def serves(host: str, pem: certs.Pem) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return await answer(host) == (pem.der, "HTTP/1.1 200 OK")

        return check

    async def not_own_certificate(host: str, pem: certs.Pem) -> bool:
        """No handshake for `host`, or one with another certificate than `pem` (a default
        certificate), never `pem`'s."""
        got = await answer(host)
        return got is None or got[0] != pem.der

    def plain(host: str, *statuses: int) -> Callable[[], Awaitable[bool]]:
        """Whether plain HTTP to `host` answers with one of `statuses` (a redirect to
        HTTPS is 308)."""

        async def check() -> bool:
            try:
                status, _ = await asyncio.to_thread(http_get, ports.http, "/", host=host)
            except OSError:
                return False
            return status in statuses

        return check

    lc = Lifecycle()
    try:
        await start_translator(lc, settings)
        await produce(bootstrap, topic, [class_envelope()])

        # 1. A's good TLS host
        await produce(bootstrap, topic, tls_app(a, host_a, pem_a, backend_port=backend_port))
        await until(f"https {host_a}", serves(host_a, pem_a), logs=logs, within_s=DEADLINE_S)

        # 2. B's Secret with a key that is not its certificate's, and an Ingress using it
        await produce(bootstrap, topic, tls_app(b, host_b, pem_b, backend_port=backend_port))
        await until(f"http {host_b}", plain(host_b, 200, 308), logs=logs, within_s=DEADLINE_S)

        # 3. C's new good TLS host: served over HTTPS with C's certificate
        await produce(bootstrap, topic, tls_app(c, host_c, pem_c, backend_port=backend_port))
        await until(f"https {host_c}", serves(host_c, pem_c), logs=logs, within_s=DEADLINE_S)
        await until(f"https {host_c} (again)", serves(host_c, pem_c), within_s=PROPAGATION_S)

        assert await answer(host_a) == (pem_a.der, "HTTP/1.1 200 OK")
        assert await not_own_certificate(host_b, pem_b)  # no filter chain with B's Secret

        # 4. A gateway Envoy that (re)connects now gets every tenant's state at once: A's and
        # C's HTTPS hosts are served by it too (before, its first Secret response carried
        # B's bad Secret with the others' and was refused whole: no HTTPS host at all).
        stop_process(envoy)
        (tmp_path / "restarted").mkdir()
        with running_envoy(
            stack["RIPPLE_ENVOY_BIN"],
            xds_port=ports.xds,
            admin_port=ports.admin,
            node_id="it-hostile-tls-2",
            workdir=tmp_path / "restarted",
        ) as again:
            envoy = again
            await until(f"https {host_a} (restarted)", serves(host_a, pem_a), within_s=DEADLINE_S)
            await until(f"https {host_c} (restarted)", serves(host_c, pem_c), within_s=DEADLINE_S)
            assert await not_own_certificate(host_b, pem_b)
            # B's routes are still served over plain HTTP (200, or a redirect to HTTPS)
            assert await plain(host_b, 200, 308)()

        # B's diagnostics, as Events on its Secret and on its Ingress
        api = await api_client(stack["KUBECONFIG"])
        try:
            events = client.EventsV1Api(api)

            async def b_events() -> set[tuple[str, str]]:
                listed = await events.list_namespaced_event(b)
                return {
                    (e.regarding.kind, e.regarding.name)
                    for e in listed.items
                    if e.reason == Reason.INVALID_SECRET and "does not match" in (e.note or "")
                }

            async def reported() -> bool:
                return await b_events() == {("Secret", "web-tls"), ("Ingress", "web")}

            await until("Events on B's Secret and Ingress", reported, within_s=DEADLINE_S)
            for tenant in (a, c):
                listed = await events.list_namespaced_event(tenant)
                assert not [e for e in listed.items if e.reason == Reason.INVALID_SECRET]
        finally:
            await api.close()
    finally:
        await lc.aclose()
