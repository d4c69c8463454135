"""Issue #14, point 5: a private key in a non-PEM field of a TLS Secret (a DER key in
`key.der`) never reaches Kafka or Redis in the clear.

A TLS Secret holding a PEM pair and, in `key.der`, a DER private key is created in the real
kube-apiserver; a real watcher publishes it (uncompressed, so that the bytes in Kafka's log
are the envelope's own: compression would hide plaintext from the grep, not protect it) and a
real translator stores the tenant's inputs and resources in Redis (this test's key prefix).
Then Kafka's log segment files of the test's topic and a Redis RDB dump (written by BGSAVE,
with RDB string compression off for the dump so its bytes are greppable) are searched for the
DER key's raw bytes and its base64: absent. The Secret's `key.der` is in both, sealed.

On the code before the fix only `tls.key` and PEM `PRIVATE KEY` values were sealed: the DER
key's base64 was in the segment file and in the RDB."""

from __future__ import annotations

import base64
import datetime
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes_asyncio import client

from ripple_common.lifecycle import Lifecycle
from ripple_common.sealing import SEALED_PREFIX
from ripple_translator.app import start_translator
from ripple_translator.settings import TranslatorSettings
from ripple_translator.store import KeyLayout, RedisTenantStore
from scripts.stack_env import run_dir
from tests.conftest import StackEnv
from tests.integration.watcher.support import (
    Kube,
    delete_topic,
    envelope_log,
    make_topic,
    running_watcher,
    unique,
    watcher_settings,
)
from tests.waiting import eventually

PARTITIONS = 3


@pytest.fixture
async def kube(stack: StackEnv) -> AsyncIterator[Kube]:
    async with Kube.connect(stack["KUBECONFIG"]) as k:
        yield k


@pytest.fixture
async def topic(stack: StackEnv) -> AsyncIterator[str]:
    bootstrap = stack["RIPPLE_KAFKA_BOOTSTRAP"]
    name = await make_topic(bootstrap, partitions=PARTITIONS)
    yield name
    await delete_topic(bootstrap, name)


def key_and_certificate() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shop.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("shop.example.com")]), False)
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


@asynccontextmanager
async def running_translator(settings: TranslatorSettings) -> AsyncIterator[None]:
    lc = Lifecycle()
    try:
        await start_translator(lc, settings)
        yield
    finally:
        lc.request_stop()
        await lc.aclose()


async def rdb_dump(redis: aioredis.Redis) -> bytes:
    """A fresh RDB of the stack's Redis (BGSAVE, string compression off while it is written)."""
    directory = (await redis.config_get("dir"))["dir"]
    filename = (await redis.config_get("dbfilename"))["dbfilename"]
    compression = str((await redis.config_get("rdbcompression"))["rdbcompression"] or "yes")
    await redis.config_set("rdbcompression", "no")
    try:
        before = await redis.lastsave()
        started = time.monotonic()

        async def bgsave() -> bool:
            return bool(await redis.bgsave())

        # Another save in progress answers an error: wait for it.
        await eventually(
            bgsave,
            within_s=60,
            every_s=0.2,
            what="BGSAVE started",
            ignoring=(aioredis.ResponseError,),
        )

        async def saved() -> bool:
            return (
                await redis.lastsave() != before
                and not (await redis.info("persistence"))["rdb_bgsave_in_progress"]
            )

        await eventually(
            saved, within_s=60 - (time.monotonic() - started), every_s=0.1, what="BGSAVE finished"
        )
    finally:
        await redis.config_set("rdbcompression", compression)
    return (Path(str(directory)) / str(filename)).read_bytes()


def kafka_segments(topic: str) -> bytes:
    data = run_dir() / "kafka" / "data"
    files = [p for n in range(PARTITIONS) for p in (data / f"{topic}-{n}").glob("*.log")]
    assert files, f"no log segment of {topic} under {data}"
    return b"".join(p.read_bytes() for p in files)


async def test_a_der_key_in_a_tls_secret_is_sealed_in_kafka_and_redis(
    stack: StackEnv, topic: str, kube: Kube, redis_client: aioredis.Redis, prefix: str
) -> None:
    key, cert_pem = key_and_certificate()
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    der_b64 = base64.b64encode(der)
    ns = await kube.namespace(unique("hx-seal"))
    body: dict[str, Any] = {
        "metadata": {"name": "shop-tls"},
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": base64.b64encode(cert_pem).decode(),
            "tls.key": base64.b64encode(key_pem).decode(),
            "key.der": der_b64.decode(),
        },
    }
    await kube.core.create_namespaced_secret(ns, cast(client.V1Secret, body))
    settings = watcher_settings(
        stack, topic, kinds=("Namespace", "Secret"), kafka_compression="none"
    )
    assert settings.sealing_key is not None
    translator = TranslatorSettings(
        kafka_bootstrap=stack["RIPPLE_KAFKA_BOOTSTRAP"],
        redis_url=stack["RIPPLE_REDIS_URL"],
        topic=topic,
        group_id=f"it-hostile-{uuid.uuid4().hex[:8]}",
        redis_prefix=prefix,
        poll_ms=50,
        sealing_key=settings.sealing_key,
    )
    inputs = RedisTenantStore(redis_client, layout=KeyLayout(prefix=prefix))
    async with (
        envelope_log(settings.kafka_bootstrap, topic, partitions=PARTITIONS) as log,
        running_translator(translator),
        running_watcher(settings),
    ):
        await log.wait_for(lambda: any(e.kind == "Secret" for e in log.of_tenant(ns)))
        await eventually(
            lambda: inputs.load_inputs(ns),
            until=lambda stored: ("Secret", ns, "shop-tls") in stored.objects,
            within_s=30,
            what="the translator storing the Secret",
        )

    segments = kafka_segments(topic)
    assert f"{ns}".encode() in segments  # the envelope is there, uncompressed
    assert der_b64 not in segments
    assert der not in segments
    assert base64.b64encode(key_pem) not in segments
    rdb = await rdb_dump(redis_client)
    assert prefix.encode() in rdb  # the dump holds this test's keys
    assert der_b64 not in rdb
    assert der not in rdb
    assert base64.b64encode(key_pem) not in rdb

    # And the field is there, sealed (published and stored).
    (published,) = [e for e in log.of_tenant(ns) if e.kind == "Secret"]
    assert published.object is not None
    assert published.object["data"]["key.der"].startswith(SEALED_PREFIX)
    stored = (await inputs.load_inputs(ns)).objects[("Secret", ns, "shop-tls")]
    assert stored["data"]["key.der"].startswith(SEALED_PREFIX)
