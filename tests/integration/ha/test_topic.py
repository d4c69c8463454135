"""scripts/pipeline.py makes the events topic with a replica on each of 3 brokers (2 in sync)
on the HA profile's Kafka cluster (on the single-broker stack: 1 replica)."""

from __future__ import annotations

import uuid
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from scripts.pipeline import ensure_topic
from tests.integration.ha.conftest import HaStack
from tests.waiting import eventually


async def test_pipeline_topic_is_replicated_on_the_cluster(ha_stack: HaStack) -> None:
    topic = f"ha-topic-{uuid.uuid4().hex[:8]}"
    _, made = await ensure_topic(ha_stack.bootstrap, topic, 3)
    assert made
    admin = AIOKafkaAdminClient(bootstrap_servers=ha_stack.bootstrap)
    await admin.start()
    try:

        async def described_topic() -> Any:
            (described,) = await admin.describe_topics([topic])
            return described

        described = await eventually(  # the new topic's metadata reaches every broker
            described_topic,
            until=lambda described: len(described["partitions"]) == 3,
            within_s=5,
            every_s=0.1,
        )
        assert [len(p["replicas"]) for p in described["partitions"]] == [3, 3, 3]
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)]
        )
        (resource,) = response.to_object()["resources"]
        values = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
        assert values["min.insync.replicas"] == "2"
        await admin.delete_topics([topic])
    finally:
        await admin.close()
