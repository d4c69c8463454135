"""Loading many tenants at once (a partition's tenants on assignment).

`TenantLoader.load_tenants` returns each tenant's stored checkpoint (tenant version and
resource content versions) and stored inputs. `RedisTenantLoader` reads a batch in one
pipelined round trip (the tenant store's load script and the inputs hash of every tenant);
`StoreTenantLoader` falls back to one call per tenant and store (the in-memory fakes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from ripple_common.store_contract import LOAD_TENANT_LUA, KeyLayout, parse_tenant_state
from ripple_translator.inputs import InputCheckpoint, InputStore, RedisInputStore, parse_inputs
from ripple_translator.store import Checkpoint, TenantStore

TenantLoad = tuple[Checkpoint, InputCheckpoint]


class TenantLoader(Protocol):
    async def load_tenants(self, tenants: Sequence[str]) -> list[TenantLoad]:
        """The checkpoint and inputs of each tenant, in the order given."""
        ...


class StoreTenantLoader:
    """One `load_checkpoint` and one `load_inputs` per tenant, all at once."""

    def __init__(self, store: TenantStore, inputs: InputStore) -> None:
        self._store = store
        self._inputs = inputs

    async def load_tenants(self, tenants: Sequence[str]) -> list[TenantLoad]:
        checkpoints, inputs = await asyncio.gather(
            asyncio.gather(*(self._store.load_checkpoint(t) for t in tenants)),
            asyncio.gather(*(self._inputs.load_inputs(t) for t in tenants)),
        )
        return list(zip(checkpoints, inputs, strict=True))


class RedisTenantLoader:
    """Both reads of every tenant of a batch in one pipeline (one connection, one round trip).
    The same reads as `RedisTenantStore.load_checkpoint` and `RedisInputStore.load_inputs`."""

    def __init__(self, client: aioredis.Redis, *, layout: KeyLayout | None = None) -> None:
        self._client = client
        self._layout = layout or KeyLayout()
        self._inputs = RedisInputStore(client, layout=self._layout)
        self._load: AsyncScript = client.register_script(LOAD_TENANT_LUA)

    async def load_tenants(self, tenants: Sequence[str]) -> list[TenantLoad]:
        if not tenants:
            return []
        async with self._client.pipeline(transaction=False) as pipe:
            for tenant in tenants:
                await self._load(keys=self._layout.tenant_keys(tenant), args=[], client=pipe)
                pipe.hgetall(self._inputs.input_key(tenant))
            replies = await pipe.execute()
        out: list[TenantLoad] = []
        for i, tenant in enumerate(tenants):
            state = parse_tenant_state(tenant, replies[2 * i])
            checkpoint = Checkpoint(
                tenant=tenant,
                version=state.version,
                offset=state.offset,
                resource_versions={(r.type_url, r.name): r.version for r in state.resources},
            )
            raw = replies[2 * i + 1]
            out.append(
                (checkpoint, parse_inputs(tenant, {_raw(k): _raw(v) for k, v in raw.items()}))
            )
        return out


def _raw(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()
