"""KafkaSink with a message limit: an envelope that does not fit becomes its TOO_LARGE marker,
and a refusal by the broker for size lowers the limit so the next attempt publishes the marker
instead of failing again (never a watch stuck on one object)."""

from __future__ import annotations

import asyncio
import os
import zlib
from dataclasses import replace

import pytest
from opentelemetry.sdk.trace import TracerProvider

from ripple_common.envelope import CLUSTER_TENANT, Envelope, EventType
from ripple_watcher.ports import PublishError
from ripple_watcher.publisher import KafkaSink
from ripple_watcher.sizing import MessageLimit
from tests.unit.watcher.test_publisher import FakeProducer

LIMIT = MessageLimit(
    max_message_bytes=64 * 1024,
    max_uncompressed_bytes=4 * 1024 * 1024,
    compress=zlib.compress,
    overhead_bytes=1024,
)


def _env(payload: str, *, tenant: str = "shop", name: str = "big") -> Envelope:
    return Envelope(
        type=EventType.ADDED,
        kind="Ingress" if tenant != CLUSTER_TENANT else "IngressClass",
        tenant=tenant,
        namespace=None if tenant == CLUSTER_TENANT else tenant,
        name=name,
        uid="u-big",
        resource_version="9",
        observed_at_ns=5,
        object={"metadata": {"name": name, "annotations": {"x": payload}}},
    )


def _sink(producer: FakeProducer, limit: MessageLimit | None = LIMIT) -> KafkaSink:
    tracer = TracerProvider().get_tracer("test")
    return KafkaSink(producer, topic="events", max_in_flight=10, tracer=tracer, limit=limit)


async def test_an_envelope_that_fits_compressed_is_published_as_it_is() -> None:
    producer = FakeProducer()
    sink = _sink(producer)
    env = _env("abc" * 100_000)  # 300 KB raw, compresses to a few KB
    await sink.publish(env)
    (sent,) = producer.sent
    assert sent.value == env.to_bytes()
    assert sink.stats.too_large == 0


async def test_an_envelope_too_large_even_compressed_is_replaced_by_its_marker() -> None:
    producer = FakeProducer()
    sink = _sink(producer)
    await sink.publish(_env(os.urandom(100_000).hex()))  # 200 KB of hex: ~100 KB compressed
    (sent,) = producer.sent
    assert sent.value is not None
    marker = Envelope.from_bytes(sent.value)
    assert marker.type is EventType.TOO_LARGE
    assert (marker.namespace, marker.name, marker.uid, marker.resource_version) == (
        "shop",
        "big",
        "u-big",
        "9",
    )
    assert marker.too_large is not None
    assert marker.too_large.encoded_bytes > LIMIT.budget
    assert marker.too_large.limit_bytes == LIMIT.max_message_bytes
    assert sent.key == b"shop"
    assert sink.stats.too_large == 1


async def test_a_cluster_scoped_marker_still_goes_to_every_partition() -> None:
    producer = FakeProducer(partitions=3)
    await _sink(producer).publish(_env(os.urandom(100_000).hex(), tenant=CLUSTER_TENANT))
    assert sorted(s.partition for s in producer.sent if s.partition is not None) == [0, 1, 2]
    assert {Envelope.from_bytes(s.value or b"").type for s in producer.sent} == {
        EventType.TOO_LARGE
    }


class SizeRefusedError(Exception):
    """What aiokafka's MessageSizeTooLargeError looks like to the publisher."""

    errno = 10


async def test_a_size_refusal_lowers_the_limit_so_the_retry_publishes_the_marker() -> None:
    producer = FakeProducer(auto_deliver=False)
    sink = _sink(producer, replace(LIMIT, compress=None))
    env = _env(os.urandom(20_000).hex())  # 40 KB: fits the configured 64 KB, not the topic
    await sink.publish(env)
    producer.sent[0].delivery.set_exception(SizeRefusedError("MESSAGE_TOO_LARGE"))
    with pytest.raises(PublishError):
        await sink.flush()
    # The watch re-lists and publishes the object again: now as its marker.
    producer._auto = True
    await sink.publish(env)
    retried = Envelope.from_bytes(producer.sent[-1].value or b"")
    assert retried.type is EventType.TOO_LARGE
    # A small object still goes through.
    await sink.publish(_env("small", name="small"))
    assert Envelope.from_bytes(producer.sent[-1].value or b"").type is EventType.ADDED


async def test_other_failures_leave_the_limit_alone() -> None:
    producer = FakeProducer(auto_deliver=False)
    sink = _sink(producer)
    env = _env(os.urandom(20_000).hex())
    await sink.publish(env)
    producer.sent[0].delivery.set_exception(ConnectionError("broker gone"))
    with pytest.raises(PublishError):
        await sink.flush()
    producer._auto = True
    await sink.publish(env)
    assert Envelope.from_bytes(producer.sent[-1].value or b"").type is EventType.ADDED
    await asyncio.sleep(0)
