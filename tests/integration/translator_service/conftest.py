"""Fixtures of the translator service's integration tests: a Redis client (bytes), a random
key prefix cleaned up afterwards, and a fresh topic deleted afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.conftest import StackEnv

PARTITIONS = 2


@pytest.fixture
async def redis_client(stack: StackEnv) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(stack["RIPPLE_REDIS_URL"], decode_responses=False)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def prefix(redis_client: aioredis.Redis) -> AsyncIterator[str]:
    prefix = f"it-tr-{uuid.uuid4().hex[:8]}"
    try:
        yield prefix
    finally:
        keys = [k async for k in redis_client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await redis_client.delete(*keys)


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
