"""Fixtures of the translator service's integration tests: a fresh topic deleted afterwards
(the Redis client and key prefix come from tests/integration/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.conftest import StackEnv

PARTITIONS = 2


@pytest.fixture
async def topic(stack: StackEnv) -> AsyncIterator[str]:
    """A fresh topic of PARTITIONS partitions, deleted afterwards."""
    name = f"it-tr-{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack["RIPPLE_KAFKA_BOOTSTRAP"])
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name=name, num_partitions=PARTITIONS, replication_factor=1)]
        )
        yield name
        await admin.delete_topics([name])
    finally:
        await admin.close()
