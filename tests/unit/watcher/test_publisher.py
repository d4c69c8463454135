from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from ripple_common.envelope import CLUSTER_TENANT, Envelope, EventType
from ripple_watcher.ports import PublishError
from ripple_watcher.publisher import KafkaSink
from tests.waiting import eventually


@dataclass
class Sent:
    topic: str
    value: bytes | None
    key: bytes | None
    partition: int | None
    headers: list[tuple[str, bytes]]
    delivery: asyncio.Future[Any] = field(repr=False)


class FakeProducer:
    """Queues sends; deliveries complete when the test says so (or at once)."""

    def __init__(self, *, partitions: int = 3, auto_deliver: bool = True) -> None:
        self.sent: list[Sent] = []
        self._partitions = partitions
        self._auto = auto_deliver

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        *,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Awaitable[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self._auto:
            fut.set_result(None)
        self.sent.append(Sent(topic, value, key, partition, headers or [], fut))
        return fut

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self._partitions))


def _env(
    tenant: str = "shop", name: str = "web", event_type: EventType = EventType.ADDED
) -> Envelope:
    is_marker = event_type in (EventType.RELIST_STARTED, EventType.RELIST_FINISHED)
    return Envelope(
        type=event_type,
        kind="Ingress",
        tenant=tenant,
        namespace=None if is_marker else tenant,
        name="" if is_marker else name,
        uid="" if is_marker else "u1",
        resource_version="7",
        observed_at_ns=1,
        object=None if is_marker else {"metadata": {"name": name}},
    )


def _sink(producer: FakeProducer, *, max_in_flight: int = 10) -> KafkaSink:
    tracer = TracerProvider().get_tracer("test")
    return KafkaSink(producer, topic="events", max_in_flight=max_in_flight, tracer=tracer)


async def test_tenant_event_is_keyed_by_tenant_on_the_default_partition() -> None:
    producer = FakeProducer()
    await _sink(producer).publish(_env(tenant="shop"))
    (sent,) = producer.sent
    assert (sent.topic, sent.key, sent.partition) == ("events", b"shop", None)
    assert Envelope.from_bytes(sent.value or b"").name == "web"


async def test_each_event_carries_its_trace_context_in_headers() -> None:
    producer = FakeProducer()
    await _sink(producer).publish(_env())
    headers = dict(producer.sent[0].headers)
    assert headers["traceparent"].startswith(b"00-")


async def test_cluster_events_go_to_every_partition() -> None:
    producer = FakeProducer(partitions=4)
    await _sink(producer).publish(_env(tenant=CLUSTER_TENANT, event_type=EventType.RELIST_STARTED))
    assert sorted(s.partition for s in producer.sent if s.partition is not None) == [0, 1, 2, 3]


async def test_full_window_makes_publish_wait_for_the_oldest_delivery() -> None:
    producer = FakeProducer(auto_deliver=False)
    sink = _sink(producer, max_in_flight=2)
    await sink.publish(_env(name="a"))
    await sink.publish(_env(name="b"))
    third = asyncio.create_task(sink.publish(_env(name="c")))
    await eventually(lambda: len(producer.sent) == 3, within_s=2)
    await asyncio.sleep(0.01)
    assert not third.done()
    producer.sent[0].delivery.set_result(None)
    await asyncio.wait_for(third, 1)
    assert sink.in_flight == 2


async def test_failed_delivery_raises_publish_error() -> None:
    producer = FakeProducer(auto_deliver=False)
    sink = _sink(producer, max_in_flight=1)
    await sink.publish(_env(name="a"))
    producer.sent[0].delivery.set_exception(ConnectionError("broker gone"))
    with pytest.raises(PublishError, match="broker gone"):
        await sink.publish(_env(name="b"))


async def test_flush_waits_for_every_delivery() -> None:
    producer = FakeProducer(auto_deliver=False)
    sink = _sink(producer)
    await sink.publish(_env(name="a"))
    await sink.publish(_env(name="b"))
    flush = asyncio.create_task(sink.flush())
    await asyncio.sleep(0.01)
    assert not flush.done()
    for sent in producer.sent:
        sent.delivery.set_result(None)
    await asyncio.wait_for(flush, 1)
    assert sink.in_flight == 0


def test_window_must_hold_one_send() -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        _sink(FakeProducer(), max_in_flight=0)
