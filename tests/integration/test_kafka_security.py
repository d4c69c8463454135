"""Kafka TLS + SASL against the stack's real SASL_SSL listener: the watcher's producer and
publisher write an envelope, the translator's consumer reads it back, both configured only
through their settings (RIPPLE_WATCHER_KAFKA_*, RIPPLE_TRANSLATOR_KAFKA_*); a wrong password
or an untrusted broker certificate fails fast with a clear error instead of hanging."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from ripple_common.envelope import Envelope, EventType
from ripple_translator.consumer import KafkaEventSource
from ripple_translator.engine import Record
from ripple_translator.settings import TranslatorSettings
from ripple_translator.slot import TopicPartition
from ripple_watcher.kafka import make_producer
from ripple_watcher.publisher import KafkaSink
from ripple_watcher.settings import WatcherSettings
from scripts.stack_env import load_stack_env
from tests.waiting import eventually

SASL_KEYS = (
    "RIPPLE_KAFKA_SASL_BOOTSTRAP",
    "RIPPLE_KAFKA_SASL_MECHANISMS",
    "RIPPLE_KAFKA_SASL_USERNAME",
    "RIPPLE_KAFKA_SASL_PASSWORD_FILE",
    "RIPPLE_KAFKA_CA_FILE",
)
# A failed authentication must surface well before this (no hang).
FAIL_FAST_S = 30.0


@pytest.fixture(scope="module")
def sasl() -> dict[str, str]:
    env = load_stack_env()
    if not env:
        pytest.fail("no stack env file: start the local stack with `./dev up`")
    missing = [key for key in SASL_KEYS if key not in env]
    if missing:
        pytest.skip(
            f"the stack's env file has no SASL_SSL Kafka listener ({', '.join(missing)} "
            "missing): the running Kafka predates it; restart it (stack/stack down kafka && "
            "stack/stack up kafka) to get one"
        )
    return {key: env[key] for key in SASL_KEYS}


def _security(sasl: dict[str, str], **override: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "kafka_bootstrap": sasl["RIPPLE_KAFKA_SASL_BOOTSTRAP"],
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": sasl["RIPPLE_KAFKA_SASL_MECHANISMS"].split(",")[0],
        "kafka_sasl_username": sasl["RIPPLE_KAFKA_SASL_USERNAME"],
        "kafka_sasl_password_file": sasl["RIPPLE_KAFKA_SASL_PASSWORD_FILE"],
        "kafka_ssl_cafile": sasl["RIPPLE_KAFKA_CA_FILE"],
    }
    values.update(override)
    return values


class _Handler:
    """Rebalance handler of a consumer that loads nothing and has nothing to commit."""

    async def assign(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        return dict.fromkeys(tps)

    async def revoke(
        self, tps: Sequence[TopicPartition], *, timeout_s: float
    ) -> dict[TopicPartition, int]:
        return {}


def _envelope() -> Envelope:
    return Envelope(
        type=EventType.ADDED,
        kind="Ingress",
        tenant=f"t-{uuid.uuid4().hex[:8]}",
        namespace="default",
        name="web",
        uid=str(uuid.uuid4()),
        resource_version="1",
        observed_at_ns=time.time_ns(),
        object={"metadata": {"name": "web", "namespace": "default"}},
    )


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
async def test_watcher_publishes_and_translator_consumes_over_sasl_ssl(
    sasl: dict[str, str], mechanism: str
) -> None:
    if mechanism not in sasl["RIPPLE_KAFKA_SASL_MECHANISMS"].split(","):
        pytest.skip(f"the stack's SASL_SSL listener does not offer {mechanism}")
    topic = f"it-kafka-sasl-{uuid.uuid4().hex[:8]}"
    security = _security(sasl, kafka_sasl_mechanism=mechanism)
    watcher = WatcherSettings(**security, topic=topic)
    translator = TranslatorSettings(
        **security, topic=topic, group_id=f"it-sasl-{uuid.uuid4().hex[:8]}"
    )
    sent = _envelope()

    producer = make_producer(watcher)
    await asyncio.wait_for(producer.start(), FAIL_FAST_S)
    try:
        sink = KafkaSink(producer, topic=topic, max_in_flight=10)
        await sink.publish(sent)
        await asyncio.wait_for(sink.flush(), FAIL_FAST_S)
        assert sink.stats.delivered == 1
    finally:
        await producer.stop()

    source = KafkaEventSource(
        bootstrap=translator.kafka_bootstrap,
        topic=translator.topic,
        group_id=translator.group_id,
        handler=_Handler(),
        security=translator.kafka_security(),
    )
    await asyncio.wait_for(source.start(), FAIL_FAST_S)
    try:
        records: list[Record] = await eventually(
            lambda: source.fetch(timeout_ms=500, max_records=10),
            within_s=60,
            every_s=0.001,  # fetch itself waits up to 500 ms
            what="a record read by the translator's consumer over SASL_SSL",
        )
        assert [Envelope.from_bytes(r.value) for r in records] == [sent]
    finally:
        await source.stop()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
async def test_wrong_password_fails_fast_with_a_clear_error(
    sasl: dict[str, str], mechanism: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """aiokafka raises a bare "Unable to bootstrap" and logs the broker's reason at ERROR (the
    services pass library logs at WARNING and above to stderr): both, well within the limit."""
    wrong = tmp_path / "password"
    wrong.write_text("not-the-password\n")
    producer = make_producer(
        WatcherSettings(
            **_security(sasl, kafka_sasl_mechanism=mechanism, kafka_sasl_password_file=str(wrong))
        )
    )
    started = time.monotonic()
    with pytest.raises(KafkaConnectionError) as exc:
        await asyncio.wait_for(producer.start(), FAIL_FAST_S)
    await producer.stop()
    assert time.monotonic() - started < FAIL_FAST_S
    assert "Unable to bootstrap" in str(exc.value), str(exc.value)
    reasons = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("SaslAuthenticationFailed" in m for m in reasons), reasons


async def test_untrusted_broker_certificate_is_refused(
    sasl: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Another CA than the broker's (here: the system's CAs) rejects its certificate."""
    security = _security(sasl)
    del security["kafka_ssl_cafile"]
    source = KafkaEventSource(
        bootstrap=security["kafka_bootstrap"],
        topic="unused",
        group_id=f"it-sasl-{uuid.uuid4().hex[:8]}",
        handler=_Handler(),
        security=TranslatorSettings(**security).kafka_security(),
    )
    with pytest.raises(KafkaConnectionError):
        await asyncio.wait_for(source.start(), FAIL_FAST_S)
    await source.stop()
    reasons = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("CERTIFICATE_VERIFY_FAILED" in m for m in reasons), reasons
