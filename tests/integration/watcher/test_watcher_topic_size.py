"""The watcher raises the events topic's max.message.bytes at start (keeping the topic's other
overrides: AlterConfigs replaces them all), or only reads it when told not to."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from ripple_common.kafka_sizes import MAX_MESSAGE_BYTES
from ripple_watcher.kafka import message_limit
from tests.conftest import StackEnv
from tests.integration.watcher.support import watcher_settings


@pytest.fixture
async def admin(stack: StackEnv) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=stack["RIPPLE_KAFKA_BOOTSTRAP"])
    await client.start()
    try:
        yield client
    finally:
        await client.close()


async def topic_configs(admin: AIOKafkaAdminClient, topic: str) -> dict[str, str]:
    (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    (resource,) = response.to_object()["resources"]
    return {e["config_names"]: e["config_value"] for e in resource["config_entries"]}


@pytest.mark.parametrize("configure", [True, False])
async def test_the_topic_limit_is_raised_or_read(
    stack: StackEnv, admin: AIOKafkaAdminClient, configure: bool
) -> None:
    topic = f"it-size-{uuid.uuid4().hex[:10]}"
    await admin.create_topics(
        [
            NewTopic(
                name=topic,
                num_partitions=1,
                replication_factor=1,
                topic_configs={"max.message.bytes": "300000", "retention.ms": "3600000"},
            )
        ]
    )
    settings = watcher_settings(stack, topic, kafka_configure_topic=configure)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        limit = await message_limit(settings, producer)
        configs = await topic_configs(admin, topic)
    finally:
        await producer.stop()
        await admin.delete_topics([topic])
    if configure:
        assert limit.max_message_bytes == MAX_MESSAGE_BYTES
        assert configs["max.message.bytes"] == str(MAX_MESSAGE_BYTES)
    else:
        assert limit.max_message_bytes == 300_000
        assert configs["max.message.bytes"] == "300000"
    assert configs["retention.ms"] == "3600000"  # the other override is kept
    assert limit.compress is not None  # zstd by default
