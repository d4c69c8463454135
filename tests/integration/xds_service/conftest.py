"""Fixtures of the xds service tests: a tenant store under the shared random key prefix."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from ripple_translator.store import KeyLayout, RedisTenantStore


@pytest.fixture
def store(redis_client: aioredis.Redis, prefix: str) -> RedisTenantStore:
    return RedisTenantStore(redis_client, layout=KeyLayout(prefix=prefix))
