"""The pieces every service wires the same way: `RedisClient` (a lifecycle resource whose
start pings) and `sealer_from` (the sealing key setting -> a Sealer or None)."""

from __future__ import annotations

import base64

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr
from redis.exceptions import ConnectionError as RedisConnectionError

from ripple_common.redis_client import RedisClient
from ripple_common.sealing import Sealer, SealingError, sealer_from


async def test_redis_client_keeps_the_pool_cap_and_its_start_pings() -> None:
    resource = RedisClient("redis://127.0.0.1:1/0", max_connections=3, pool_timeout_s=2.0)
    pool = resource.client.connection_pool
    assert isinstance(pool, aioredis.BlockingConnectionPool)
    assert pool.max_connections == 3
    with pytest.raises(RedisConnectionError):
        await resource.start()  # nothing listens on port 1: the start fails, not later
    await resource.stop()


async def test_redis_client_without_a_cap_is_redis_pys_default_pool() -> None:
    resource = RedisClient("redis://127.0.0.1:1/0")
    assert not isinstance(resource.client.connection_pool, aioredis.BlockingConnectionPool)
    await resource.stop()


def test_sealer_from_the_setting() -> None:
    key = base64.b64encode(bytes(range(32))).decode()
    sealer = sealer_from(SecretStr(key))
    assert isinstance(sealer, Sealer)
    assert sealer.key_id == Sealer(bytes(range(32))).key_id
    assert sealer_from(None) is None
    with pytest.raises(SealingError):
        sealer_from(SecretStr("not base64!"))
