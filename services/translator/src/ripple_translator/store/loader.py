"""Loading many tenants at once (a partition's tenants on assignment).

`TenantLoader.load_tenants` returns each tenant's stored checkpoint (tenant version and
resource content versions) and stored inputs. `RedisTenantLoader` reads a batch in one
pipelined round trip (the tenant store's load script and the inputs hash of every tenant);
`StoreTenantLoader` falls back to two calls per tenant (the in-memory fakes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from ripple_common.store_contract import LOAD_TENANT_LUA, KeyLayout
from ripple_translator.store.inputs import InputCheckpoint, parse_inputs
from ripple_translator.store.model import Checkpoint, TenantStore
from ripple_translator.store.redis_store import checkpoint_of

TenantLoad = tuple[Checkpoint, InputCheckpoint]


class TenantLoader(Protocol):
    async def load_tenants(self, tenants: Sequence[str]) -> list[TenantLoad]:
        """The checkpoint and inputs of each tenant, in the order given."""
        ...


class StoreTenantLoader:
    """One `load_checkpoint` and one `load_inputs` per tenant, all at once."""

    def __init__(self, store: TenantStore) -> None:
        self._store = store

    async def load_tenants(self, tenants: Sequence[str]) -> list[TenantLoad]:
        checkpoints, inputs = await asyncio.gather(
            asyncio.gather(*(self._store.load_checkpoint(t) for t in tenants)),
            asyncio.gather(*(self._store.load_inputs(t) for t in tenants)),
        )
        return list(zip(checkpoints, inputs, strict=True))


class RedisTenantLoader:
    """Both reads of every tenant of a batch in one pipeline (one connection, one round trip).
    The same reads as `RedisTenantStore.load_checkpoint` and `load_inputs`."""

    def __init__(self, client: aioredis.Redis, *, layout: KeyLayout | None = None) -> None:
        self._client = client
        self._layout = layout or KeyLayout()
        self._load: AsyncScript = client.register_script(LOAD_TENANT_LUA)

    async def load_tenants(self, tenants: Sequence[str]) -> list[TenantLoad]:
        if not tenants:
            return []
        async with self._client.pipeline(transaction=False) as pipe:
            for tenant in tenants:
                await self._load(keys=self._layout.tenant_keys(tenant), args=[], client=pipe)
                pipe.hgetall(self._layout.inputs(tenant))
            replies = await pipe.execute()
        out: list[TenantLoad] = []
        for i, tenant in enumerate(tenants):
            checkpoint = checkpoint_of(tenant, replies[2 * i])
            out.append((checkpoint, parse_inputs(tenant, replies[2 * i + 1])))
        return out
