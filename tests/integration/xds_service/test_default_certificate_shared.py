"""Replicas serve one generated default certificate: the first stores it in the real Redis
(its key sealed), the others serve that one; without a sealing key nothing is stored."""

from __future__ import annotations

import base64
import datetime
import os

import redis.asyncio as aioredis

from ripple_common.sealing import Sealer
from ripple_common.store_contract import KeyLayout
from ripple_xds.default_certificate import generate_fake
from ripple_xds.default_certificate_store import shared_pair


async def test_every_replica_serves_the_first_stored_pair(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    layout = KeyLayout(prefix=prefix)
    sealer = Sealer.from_base64(base64.b64encode(os.urandom(32)).decode())
    first, second = generate_fake(), generate_fake()
    assert first != second
    assert await shared_pair(redis_client, layout, sealer, first) == first
    assert await shared_pair(redis_client, layout, sealer, second) == first
    stored = await redis_client.get(layout.default_certificate)
    assert stored is not None
    assert b"PRIVATE KEY" not in stored


async def test_a_pair_near_its_expiry_is_replaced(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    layout = KeyLayout(prefix=prefix)
    sealer = Sealer.from_base64(base64.b64encode(os.urandom(32)).decode())
    old = generate_fake(datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=350))
    fresh = generate_fake()
    assert await shared_pair(redis_client, layout, sealer, old) == old
    assert await shared_pair(redis_client, layout, sealer, fresh) == fresh
    assert await shared_pair(redis_client, layout, sealer, generate_fake()) == fresh
