"""aiokafka adapter: the producer the publisher writes through, and the events topic's message
limit (read, and raised when allowed, at start)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Final

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from ripple_common.kafka_security import client_kwargs
from ripple_common.kafka_sizes import MAX_UNCOMPRESSED_BYTES
from ripple_watcher.settings import Compression, WatcherSettings
from ripple_watcher.sizing import Compressor, MessageLimit

log = structlog.get_logger(__name__)

MAX_MESSAGE_BYTES_CONFIG: Final = "max.message.bytes"
# DescribeConfigs v1+ config_source of a topic's own (dynamic) override.
_DYNAMIC_TOPIC_CONFIG: Final = 1
_TOPIC_TIMEOUT_S: Final = 15.0


def make_producer(settings: WatcherSettings) -> Any:
    """acks=all + idempotence (ordered, no duplicates on retry), small linger for batching,
    compressed batches (zstd by default: what `compressor` measures with). aiokafka keeps one
    in-flight request per partition leader; KafkaSink bounds the number of undelivered sends
    per kind on top of that. max_request_size only bounds the uncompressed record (aiokafka
    checks it before compressing): the publisher checks the compressed size against the topic."""
    compression = settings.kafka_compression
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=settings.client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=settings.linger_ms,
        max_batch_size=settings.max_batch_bytes,
        max_request_size=MAX_UNCOMPRESSED_BYTES,
        request_timeout_ms=settings.kafka_request_timeout_ms,
        compression_type=None if compression is Compression.NONE else compression.value,
        **client_kwargs(settings.kafka_security()),
    )


def compressor(compression: Compression) -> Compressor | None:
    """The codec the producer uses, as a function (aiokafka's own, so sizes match)."""
    if compression is Compression.NONE:
        return None
    from aiokafka import codec  # noqa: PLC0415 (cramjam is only needed when compressing)

    if compression is Compression.ZSTD:
        if not codec.has_zstd():
            raise RuntimeError("zstd compression needs the cramjam package")
        return lambda value: bytes(codec.zstd_encode(value))
    if compression is Compression.LZ4:
        if not codec.has_lz4():
            raise RuntimeError("lz4 compression needs the cramjam package")
        return lambda value: bytes(codec.lz4_encode(value))
    return lambda value: bytes(codec.gzip_encode(value))


async def message_limit(settings: WatcherSettings, producer: Any) -> MessageLimit:
    """The limit the publisher checks envelopes against: KAFKA_MAX_MESSAGE_BYTES, or the
    topic's max.message.bytes when that is lower (and could not be raised)."""
    wanted = settings.kafka_max_message_bytes
    topic_limit = await topic_message_limit(settings, producer)
    effective = wanted if topic_limit is None else min(wanted, topic_limit)
    if effective < wanted:
        log.warning(
            "the topic takes smaller messages than configured: objects above its limit are "
            "published as TOO_LARGE markers",
            topic=settings.topic,
            topic_max_message_bytes=topic_limit,
            wanted=wanted,
        )
    return MessageLimit(
        max_message_bytes=effective,
        max_uncompressed_bytes=MAX_UNCOMPRESSED_BYTES,
        compress=compressor(settings.kafka_compression),
    )


async def topic_message_limit(settings: WatcherSettings, producer: Any) -> int | None:
    """The topic's max.message.bytes, raised first to KAFKA_MAX_MESSAGE_BYTES when it is lower
    and KAFKA_CONFIGURE_TOPIC is on; None when it cannot be read (logged: the configured
    limit is then assumed, and a refusal by the broker lowers it)."""
    topic, wanted = settings.topic, settings.kafka_max_message_bytes
    try:
        async with asyncio.timeout(_TOPIC_TIMEOUT_S):
            # A metadata request: auto-creates the topic where the broker does that.
            await producer.partitions_for(topic)
            admin = AIOKafkaAdminClient(
                bootstrap_servers=settings.kafka_bootstrap,
                client_id=settings.client_id,
                **client_kwargs(settings.kafka_security()),
            )
            await admin.start()
            try:
                configs = await _describe(admin, topic)
                current = int(configs[MAX_MESSAGE_BYTES_CONFIG][0])
                if current < wanted and settings.kafka_configure_topic:
                    overrides = {k: v for k, (v, dynamic) in configs.items() if dynamic}
                    overrides[MAX_MESSAGE_BYTES_CONFIG] = str(wanted)
                    try:
                        await _alter(admin, topic, overrides)
                    except Exception as exc:  # no AlterConfigs permission: keep what it is
                        log.warning(
                            "could not raise the topic's max.message.bytes",
                            topic=topic,
                            error=repr(exc),
                        )
                        return current
                    current = int((await _describe(admin, topic))[MAX_MESSAGE_BYTES_CONFIG][0])
                    log.info("raised the topic's max.message.bytes", topic=topic, to=current)
                return current
            finally:
                await admin.close()
    except Exception as exc:  # no permission, no topic yet, an old broker: keep going
        log.warning(
            "could not read (or raise) the topic's max.message.bytes",
            topic=topic,
            error=repr(exc),
        )
        return None


async def _describe(admin: Any, topic: str) -> dict[str, tuple[str, bool]]:
    """name -> (value, is the topic's own override)."""
    (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    doc = response.to_object()
    out: dict[str, tuple[str, bool]] = {}
    for resource in doc["resources"]:
        _raise_for(resource)
        for entry in resource["config_entries"]:
            out[entry["config_names"]] = (entry["config_value"], _is_override(entry))
    return out


def _is_override(entry: Mapping[str, Any]) -> bool:
    if "config_source" in entry:
        return bool(entry["config_source"] == _DYNAMIC_TOPIC_CONFIG)
    return not entry.get("is_default", True)


async def _alter(admin: Any, topic: str, configs: Mapping[str, str]) -> None:
    """AlterConfigs replaces every override of the topic: `configs` holds them all."""
    responses = await admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, configs=dict(configs))]
    )
    for response in responses:
        for resource in response.to_object()["resources"]:
            _raise_for(resource)


def _raise_for(resource: Mapping[str, Any]) -> None:
    if resource.get("error_code"):
        raise RuntimeError(
            f"{resource.get('resource_name')}: Kafka error {resource['error_code']} "
            f"{resource.get('error_message') or ''}".strip()
        )
