"""Fixtures of the Redis contract tests: the shared Redis client and a key layout under the
shared random prefix (tests/integration/conftest.py)."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from ripple_translator.store import KeyLayout, RedisHostRegistry, RedisTenantStore


@pytest.fixture
def client(redis_client: aioredis.Redis) -> aioredis.Redis:
    return redis_client


@pytest.fixture
def layout(prefix: str) -> KeyLayout:
    return KeyLayout(prefix=prefix)


@pytest.fixture
def store(client: aioredis.Redis, layout: KeyLayout) -> RedisTenantStore:
    return RedisTenantStore(client, layout=layout)


@pytest.fixture
def registry(client: aioredis.Redis, layout: KeyLayout) -> RedisHostRegistry:
    return RedisHostRegistry(client, layout=layout)
