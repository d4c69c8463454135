"""Fixtures of the Redis contract tests: a client of the stack's Redis (bytes, not decoded) and
a key layout under a random prefix whose keys are deleted afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from ripple_translator.store import KeyLayout, RedisTenantStore
from tests.conftest import StackEnv


@pytest.fixture
async def client(stack: StackEnv) -> AsyncIterator[aioredis.Redis]:
    redis = aioredis.from_url(stack["RIPPLE_REDIS_URL"], decode_responses=False)
    try:
        yield redis
    finally:
        await redis.aclose()


@pytest.fixture
async def layout(client: aioredis.Redis) -> AsyncIterator[KeyLayout]:
    prefix = f"it-{uuid.uuid4().hex[:10]}"
    try:
        yield KeyLayout(prefix=prefix)
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)


@pytest.fixture
def store(client: aioredis.Redis, layout: KeyLayout) -> RedisTenantStore:
    return RedisTenantStore(client, layout=layout)
