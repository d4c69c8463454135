"""Reading tenants' stored snapshots from Redis (read-only: one atomic Lua read per tenant,
the same script the xds servers load with, and the host states its translator recorded)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from redis.exceptions import RedisError

from ripple_cli.replay.model import ReplayError
from ripple_common.redis_client import redis_client
from ripple_common.store_contract import (
    LOAD_TENANT_LUA,
    ContractError,
    KeyLayout,
    TenantState,
    parse_tenant_state,
)
from ripple_translator.hosts import HostState
from ripple_translator.store import RedisHostRegistry


@dataclass(frozen=True, slots=True)
class Stored:
    """Per tenant: the stored snapshot, and the hosts arbitration withheld from it (recorded
    BLOCKED or LOST by its translator)."""

    states: Mapping[str, TenantState]
    withheld: Mapping[str, frozenset[str]]


async def load_tenants(url: str, *, prefix: str, tenants: Sequence[str]) -> Stored:
    layout = KeyLayout(prefix=prefix)
    client = redis_client(url, decode_responses=False)
    try:
        load = client.register_script(LOAD_TENANT_LUA)
        out: dict[str, TenantState] = {}
        for tenant in tenants:
            try:
                keys = layout.tenant_keys(tenant)
            except ContractError as exc:
                raise ReplayError(str(exc)) from None
            reply = await load(keys=keys)
            out[tenant] = parse_tenant_state(tenant, reply)
        recorded = await RedisHostRegistry(client, layout=layout).load_host_states(list(tenants))
        withheld = {
            tenant: frozenset(h for h, s in hosts.items() if s is not HostState.SERVED)
            for tenant, hosts in recorded.items()
        }
        return Stored(states=out, withheld=withheld)
    except RedisError as exc:
        raise ReplayError(f"cannot read Redis at {url}: {exc}") from None
    finally:
        await client.aclose()
