"""Sealed TLS keys: opened for translation only; stored inputs keep the sealed form, and the
Secret resources written to Redis carry the key sealed again (deterministically)."""

from __future__ import annotations

import base64
import os
from typing import Any

from ripple_common.resources import TypeUrl
from ripple_common.sealing import SEALED_PREFIX, Sealer
from ripple_translator.engine import Engine
from ripple_translator.unseal import open_secret
from ripple_translator.writer import WriterConfig
from ripple_xds.secrets import SecretOpener
from tests.unit.translator_service.support import (
    TOPIC,
    FakePartitions,
    FakeStore,
    cluster,
    event,
    ingress,
    ingress_class,
    record,
    service,
)
from tests.unit.xds import certs

_PAIR = certs.self_signed("a.example.com")  # a real pair: the translator checks it
CERT = _PAIR.certificate.decode()
KEY = _PAIR.private_key.decode()


def tls_secret(ns: str) -> dict[str, Any]:
    return {
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": "web-tls", "namespace": ns},
        "data": {
            "tls.crt": base64.b64encode(CERT.encode()).decode(),
            "tls.key": base64.b64encode(KEY.encode()).decode(),
        },
    }


def test_open_secret_round_trip_and_wrong_key() -> None:
    sealer = Sealer(os.urandom(32))
    plain = tls_secret("a")
    sealed = sealer.seal_secret(plain)
    assert sealed["data"]["tls.key"] != plain["data"]["tls.key"]
    assert open_secret(sealed, sealer) == plain
    other = Sealer(os.urandom(32))
    assert open_secret(sealed, other)["data"]["tls.key"] == sealed["data"]["tls.key"]
    assert open_secret(sealed, None)["data"]["tls.key"] == sealed["data"]["tls.key"]
    assert open_secret(plain, None) is plain


async def test_sealed_secret_serves_tls_and_stays_sealed_in_inputs() -> None:
    sealer = Sealer(os.urandom(32))
    store, partitions = FakeStore(), FakePartitions()
    engine = Engine(store=store, partitions=partitions, config=WriterConfig(sealer=sealer))
    await engine.assign([(TOPIC, 0)])
    web = ingress("a", "web", "a.example.com")
    web["spec"]["tls"] = [{"hosts": ["a.example.com"], "secretName": "web-tls"}]
    sealed = sealer.seal_secret(tls_secret("a"))
    await engine.handle(
        [
            record(0, cluster(ingress_class())),
            record(1, event("a", service("a"))),
            record(2, event("a", sealed)),
            record(3, event("a", web)),
        ]
    )
    await engine.settle(timeout_s=5)
    types = {key[0] for key in store.tenants["a"].resources}
    assert TypeUrl.SECRET in types
    stored = store.inputs["a"].objects[("Secret", "a", "web-tls")]
    assert stored["data"]["tls.key"] == sealed["data"]["tls.key"]
    (secret,) = (r for k, r in store.tenants["a"].resources.items() if k[0] is TypeUrl.SECRET)
    assert b"PRIVATE KEY" not in secret.body
    assert SEALED_PREFIX.encode() in secret.body
    opened = SecretOpener(sealer)(secret)
    assert opened is not None
    assert KEY.encode() in opened.body
    # Sealed the same way again: another change of the tenant does not rewrite the Secret.
    version = store.tenants["a"].version
    await engine.handle([record(4, event("a", ingress("a", "other", "b.example.com")))])
    await engine.settle(timeout_s=5)
    assert store.tenants["a"].version == version + 1
    again = store.tenants["a"].resources[TypeUrl.SECRET, secret.name]
    assert again.body == secret.body
