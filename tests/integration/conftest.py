"""Fixtures shared by the integration tests: a client of the stack's Redis (bytes, not decoded),
a random key prefix whose keys are deleted afterwards, and an HTTP backend on loopback."""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import ThreadingHTTPServer

import pytest
import redis.asyncio as aioredis

from tests.conftest import StackEnv
from tests.integration.loopback import Backend


@pytest.fixture
async def redis_client(stack: StackEnv) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(stack["RIPPLE_REDIS_URL"], decode_responses=False)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def prefix(redis_client: aioredis.Redis) -> AsyncIterator[str]:
    value = f"it-{uuid.uuid4().hex[:10]}"
    try:
        yield value
    finally:
        keys = [k async for k in redis_client.scan_iter(match=f"{value}*", count=1000)]
        if keys:
            await redis_client.delete(*keys)


@pytest.fixture
def backend_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
