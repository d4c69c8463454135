"""Fixtures of the xds service tests: the stack's Redis under a random key prefix (deleted
afterwards) and an HTTP backend on loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest
import redis.asyncio as aioredis

from ripple_translator.store import KeyLayout, RedisTenantStore
from tests.integration.xds_service.support import Backend


@pytest.fixture
def store(redis_client: aioredis.Redis, prefix: str) -> RedisTenantStore:
    return RedisTenantStore(redis_client, layout=KeyLayout(prefix=prefix))


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
