"""Redis from Python (redis-py asyncio): atomic MULTI writes and a stream round trip."""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis

from tests.conftest import StackEnv


async def test_atomic_write_and_stream_round_trip(stack: StackEnv) -> None:
    client = aioredis.from_url(stack["RIPPLE_REDIS_URL"], decode_responses=True)
    tenant = f"it-{uuid.uuid4().hex[:8]}"
    stream = f"it-stream-{{{tenant}}}"
    try:
        async with client.pipeline(transaction=True) as pipe:
            pipe.hset(f"res:{{{tenant}}}", mapping={"cluster/a": "1", "route/b": "2"})
            pipe.set(f"ver:{{{tenant}}}", 7)
            pipe.xadd(stream, {"tenant": tenant, "version": "7"})
            results = await pipe.execute()
        assert results[:2] == [2, True]
        assert await client.hgetall(f"res:{{{tenant}}}") == {"cluster/a": "1", "route/b": "2"}
        entries = await client.xrange(stream)
        assert entries is not None
        assert [fields for _, fields in entries] == [{"tenant": tenant, "version": "7"}]
        assert entries[0][0] == results[2]
    finally:
        await client.delete(f"res:{{{tenant}}}", f"ver:{{{tenant}}}", stream)
        await client.aclose()
