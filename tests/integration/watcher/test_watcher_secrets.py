"""TLS private keys never reach Kafka in plaintext, and the operator's key opens them."""

from __future__ import annotations

import base64

from ripple_common.sealing import Sealer, secret_context
from tests.conftest import StackEnv
from tests.integration.watcher.support import (
    KEY_PEM,
    Kube,
    envelope_log,
    running_watcher,
    unique,
    watcher_settings,
)


async def test_raw_kafka_bytes_hold_no_private_key(stack: StackEnv, topic: str, kube: Kube) -> None:
    ns = await kube.namespace(unique("rw-s"))
    await kube.tls_secret(ns, "listed", last_applied=True)  # published by the initial list
    settings = watcher_settings(stack, topic)
    async with envelope_log(settings.kafka_bootstrap, topic) as log, running_watcher(settings):
        await kube.tls_secret(ns, "watched", last_applied=True)  # published by the watch
        await log.wait_for(lambda: len(log.of_tenant(ns)) == 2)

    raw = b"".join(r.raw for r in log.records)
    assert b"PRIVATE KEY" not in raw
    assert base64.b64encode(KEY_PEM) not in raw
    assert b"last-applied-configuration" not in raw


async def test_sealed_key_opens_with_the_operator_key(
    stack: StackEnv, topic: str, kube: Kube
) -> None:
    ns = await kube.namespace(unique("rw-s"))
    settings = watcher_settings(stack, topic)
    async with envelope_log(settings.kafka_bootstrap, topic) as log, running_watcher(settings):
        await kube.tls_secret(ns, "tls")
        await log.wait_for(lambda: len(log.of_tenant(ns)) == 1)

    (env,) = log.of_tenant(ns)
    assert env.object is not None
    assert settings.sealing_key is not None
    sealer = Sealer.from_base64(settings.sealing_key.get_secret_value())
    ctx = secret_context(namespace=ns, name="tls", field="tls.key")
    assert sealer.open_value(env.object["data"]["tls.key"], context=ctx) == KEY_PEM
