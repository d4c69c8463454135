"""Envelopes to Kafka with bounded in-flight deliveries (no aiokafka import: see kafka.py).

Each envelope is one `watcher.publish` span (kind PRODUCER) whose W3C context rides in the
Kafka headers: the translator's write span is its child.
Tenant events are keyed by tenant (the default partitioner keeps a tenant on one partition).
Cluster-scoped events and relist markers (tenant CLUSTER_TENANT) are copied to every partition
of the topic, so every translator sees them in order with its own tenants' events.
An envelope that does not fit in one message of the topic even compressed (`MessageLimit`) is
replaced by its TOO_LARGE marker: the broker would refuse it on every retry, and the watch of
its kind would stop for every tenant.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Final, Protocol

import structlog
from opentelemetry import trace

from ripple_common.envelope import CLUSTER_TENANT, Envelope
from ripple_common.telemetry import context_to_headers
from ripple_watcher.ports import PublishError
from ripple_watcher.sizing import MessageLimit

log = structlog.get_logger(__name__)

# Kafka error codes of a message the broker (or the producer) refuses for its size:
# MESSAGE_TOO_LARGE and RECORD_LIST_TOO_LARGE (aiokafka's errors carry them as `errno`).
SIZE_ERROR_CODES: Final = frozenset({10, 18})


class Producer(Protocol):
    """The part of aiokafka's AIOKafkaProducer the publisher uses."""

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        *,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Awaitable[Any]: ...

    async def partitions_for(self, topic: str) -> set[int]: ...


@dataclass(slots=True)
class SinkStats:
    """Deliveries acknowledged by Kafka, and how long after the watcher saw the change."""

    delivered: int = 0
    failed: int = 0
    # Envelopes replaced by a TOO_LARGE marker (they did not fit in one message).
    too_large: int = 0
    lag_sum_seconds: float = 0.0
    lag_max_seconds: float = 0.0


class KafkaSink:
    """One kind's window onto the shared producer: at most `max_in_flight` undelivered sends.

    `publish` returns once the envelope is queued in the producer and the window has room;
    when it is full it waits for the oldest delivery, so a slow broker slows the caller. The
    first failed delivery raises PublishError (the rest of the window is abandoned: the caller
    re-lists, which republishes everything). A delivery refused for its size (the topic's limit
    is lower than `limit` says) lowers `limit` below that size first, so the re-list publishes
    that object as a TOO_LARGE marker instead of failing on it forever."""

    def __init__(
        self,
        producer: Producer,
        *,
        topic: str,
        max_in_flight: int,
        tracer: trace.Tracer | None = None,
        limit: MessageLimit | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._producer = producer
        self._topic = topic
        self._max = max_in_flight
        # Undelivered sends and the measured size of each.
        self._pending: collections.deque[tuple[Awaitable[Any], int]] = collections.deque()
        self._tracer = tracer or trace.get_tracer("ripple.watcher")
        self._limit = limit
        self.stats = SinkStats()

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    async def publish(self, envelope: Envelope) -> None:
        with self._tracer.start_as_current_span(
            "watcher.publish",
            kind=trace.SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": self._topic,
                "ripple.event": envelope.type.value,
                "ripple.kind": envelope.kind,
                "ripple.tenant": envelope.tenant,
                "ripple.namespace": envelope.namespace or "",
                "ripple.name": envelope.name,
                "ripple.resource_version": envelope.resource_version,
                # When the watch delivered the change (the start of its propagation).
                "ripple.observed_at_ns": envelope.observed_at_ns,
                # The API's own time of the change (whole seconds), when known.
                **({} if envelope.api_at_ns is None else {"ripple.api_at_ns": envelope.api_at_ns}),
            },
        ) as span:
            if envelope.api_at_ns is not None:  # the trace's earliest point: the API change
                span.add_event("api.change", timestamp=envelope.api_at_ns)
            headers = context_to_headers()
            envelope, value, size = self._encode(envelope, span)
            if envelope.tenant == CLUSTER_TENANT:
                partitions = sorted(await self._call(self._producer.partitions_for(self._topic)))
                for partition in partitions:
                    await self._send(
                        value,
                        size=size,
                        key=envelope.key,
                        headers=headers,
                        partition=partition,
                        observed_at_ns=envelope.observed_at_ns,
                    )
            else:
                await self._send(
                    value,
                    size=size,
                    key=envelope.key,
                    headers=headers,
                    partition=None,
                    observed_at_ns=envelope.observed_at_ns,
                )

    def _encode(self, envelope: Envelope, span: trace.Span) -> tuple[Envelope, bytes, int]:
        """The envelope, its bytes and their measured size; or its TOO_LARGE marker's when
        they do not fit."""
        value = envelope.to_bytes()
        if self._limit is None:
            return envelope, value, len(value)
        size = self._limit.measure(value)
        if self._limit.fits(value, size):
            return envelope, value, size
        marker = envelope.too_large_marker(
            encoded_bytes=size, limit_bytes=self._limit.max_message_bytes
        )
        self.stats.too_large += 1
        span.set_attribute("ripple.too_large_bytes", size)
        log.warning(
            "envelope too large: publishing a TOO_LARGE marker instead",
            kind=envelope.kind,
            tenant=envelope.tenant,
            namespace=envelope.namespace,
            name=envelope.name,
            resource_version=envelope.resource_version,
            encoded_bytes=size,
            limit_bytes=self._limit.max_message_bytes,
        )
        value = marker.to_bytes()
        return marker, value, len(value)

    async def flush(self) -> None:
        """Wait until everything published so far is delivered (or raise PublishError)."""
        while self._pending:
            await self._settle(*self._pending.popleft())

    async def _send(
        self,
        value: bytes,
        *,
        size: int,
        key: bytes,
        headers: list[tuple[str, bytes]],
        partition: int | None,
        observed_at_ns: int,
    ) -> None:
        delivery = await self._call(
            self._producer.send(
                self._topic, value=value, key=key, partition=partition, headers=headers
            ),
            size=size,
        )
        if isinstance(delivery, asyncio.Future):
            delivery.add_done_callback(lambda fut: self._delivered(fut, observed_at_ns))
        self._pending.append((delivery, size))
        while len(self._pending) > self._max:
            await self._settle(*self._pending.popleft())

    async def _settle(self, delivery: Awaitable[Any], size: int) -> None:
        try:
            await delivery
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._abandon()
            self._refused(exc, size)
            raise PublishError(f"delivery to {self._topic} failed: {exc!r}") from exc

    async def _call(self, call: Awaitable[Any], *, size: int | None = None) -> Any:
        try:
            return await call
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._abandon()
            if size is not None:
                self._refused(exc, size)
            raise PublishError(f"send to {self._topic} failed: {exc!r}") from exc

    def _refused(self, exc: Exception, size: int) -> None:
        """A message refused for its size: what size no longer fits from now on."""
        if self._limit is None or getattr(exc, "errno", None) not in SIZE_ERROR_CODES:
            return
        lowered = self._limit.lowered(size)
        if lowered != self._limit:
            log.warning(
                "message refused for its size: lowering the message limit",
                topic=self._topic,
                refused_bytes=size,
                limit_bytes=lowered.max_message_bytes,
            )
            self._limit = lowered

    def _delivered(self, fut: asyncio.Future[Any], observed_at_ns: int) -> None:
        if fut.cancelled() or fut.exception() is not None:
            self.stats.failed += 1
            return
        lag = max(0.0, (time.time_ns() - observed_at_ns) / 1e9)
        self.stats.delivered += 1
        self.stats.lag_sum_seconds += lag
        self.stats.lag_max_seconds = max(self.stats.lag_max_seconds, lag)

    def _abandon(self) -> None:
        for delivery, _ in self._pending:
            if isinstance(delivery, asyncio.Future):
                delivery.add_done_callback(_consume)
        self._pending.clear()


def _consume(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()
