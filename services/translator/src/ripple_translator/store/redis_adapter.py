"""What the translator's Redis adapters that append to a stream share: the client, the key
layout (`KeyLayout`: every key they touch) and the bound of the stream they append to.
`redis_store.RedisTenantStore` (the change stream) and `redis_hosts.RedisHostRegistry` (the
host notices) are built on one client and layout."""

from __future__ import annotations

from typing import TypedDict, Unpack

import redis.asyncio as aioredis

from ripple_common.store_contract import KeyLayout

DEFAULT_STREAM_MAXLEN = 100_000


class AdapterOptions(TypedDict, total=False):
    """The options of every such adapter besides its client."""

    layout: KeyLayout | None  # default: KeyLayout() (the default prefix)
    stream_maxlen: int  # the stream's bound (XADD MAXLEN ~); default DEFAULT_STREAM_MAXLEN


class RedisAdapter:
    """A Redis adapter's client (it must not decode responses: bodies are bytes), its key
    layout and the bound of the stream it appends to."""

    def __init__(self, client: aioredis.Redis, **options: Unpack[AdapterOptions]) -> None:
        self._client = client
        self._layout = options.get("layout") or KeyLayout()
        self._maxlen = options.get("stream_maxlen", DEFAULT_STREAM_MAXLEN)

    @property
    def layout(self) -> KeyLayout:
        return self._layout
