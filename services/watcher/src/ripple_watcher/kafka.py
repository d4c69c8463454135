"""aiokafka adapter: the producer the publisher writes through."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaProducer

from ripple_common.kafka_security import client_kwargs
from ripple_watcher.settings import WatcherSettings


def make_producer(settings: WatcherSettings) -> Any:
    """acks=all + idempotence (ordered, no duplicates on retry), small linger for batching.
    aiokafka keeps one in-flight request per partition leader; KafkaSink bounds the number of
    undelivered sends per kind on top of that."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=settings.client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=settings.linger_ms,
        max_batch_size=settings.max_batch_bytes,
        request_timeout_ms=settings.kafka_request_timeout_ms,
        compression_type=None,
        **client_kwargs(settings.kafka_security()),
    )
