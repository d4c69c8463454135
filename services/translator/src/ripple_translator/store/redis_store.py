"""Redis adapter of `TenantStore` (redis-py asyncio, Lua scripts). Layout and reasoning:
`contract` and docs/redis-layout.md.

One tenant version is one Lua script over the tenant's keys (one hash slot): it checks the
expected version (fencing), HSETs/HDELs the changed resources, increments the version and sets
the Kafka offset, all or nothing. The global `P.tenants` index and the `P.changes` entry live in
other slots, so they follow in a second round trip (at-least-once). If the process dies in
between, readers learn of the version at the tenant's next entry (its version jumps) or at the
`announce` the next owner sends after loading the checkpoint."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from ripple_common.resources import Resource
from ripple_common.store_contract import (
    LOAD_TENANT_LUA,
    TYPE_ORDER,
    ChangeEntry,
    KafkaOffset,
    KeyLayout,
    parse_tenant_state,
)
from ripple_translator.store.model import (
    AnnounceError,
    Checkpoint,
    ClaimStatus,
    HostClaim,
    ResourceKey,
    VersionConflictError,
    from_micros,
    to_micros,
)

# KEYS: tenant_keys(t). ARGV: expected, topic, partition, offset, then ops:
# "u", type index (0-based, TYPE_ORDER), name, body | "r", type index, name.
# Reply: {1, new version} or {0, current version} (fenced; nothing written).
# Every argument is validated before the first write, so no error can leave half a version.
WRITE_VERSION_LUA = """
local cur = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if cur ~= tonumber(ARGV[1]) then
  return {0, cur}
end
local i = 5
while i <= #ARGV do
  local key = KEYS[tonumber(ARGV[i + 1]) + 2]
  if ARGV[i] == 'u' then
    redis.call('HSET', key, ARGV[i + 2], ARGV[i + 3])
    i = i + 4
  else
    redis.call('HDEL', key, ARGV[i + 2])
    i = i + 3
  end
end
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], 'topic', ARGV[2], 'partition', ARGV[3], 'offset', ARGV[4])
return {1, v}
"""

# KEYS: host key. ARGV: tenant, claim micros.
# Reply: {status, owner, owner micros, previous owner or ''}.
CLAIM_HOST_LUA = """
local function older(t1, c1, t2, c2)
  if c1 ~= c2 then return c1 < c2 end
  local n = math.min(#t1, #t2)
  for i = 1, n do
    local a, b = string.byte(t1, i), string.byte(t2, i)
    if a ~= b then return a < b end
  end
  return #t1 < #t2
end
local owner = redis.call('HMGET', KEYS[1], 'tenant', 'created')
local me, at = ARGV[1], tonumber(ARGV[2])
if (not owner[1]) or owner[1] == me then
  redis.call('HSET', KEYS[1], 'tenant', me, 'created', ARGV[2])
  return {'owned', me, ARGV[2], ''}
end
if older(me, at, owner[1], tonumber(owner[2])) then
  redis.call('HSET', KEYS[1], 'tenant', me, 'created', ARGV[2])
  return {'taken', me, ARGV[2], owner[1]}
end
return {'lost', owner[1], owner[2], ''}
"""

# KEYS: host key. ARGV: tenant. Reply: 1 released, 0 not the owner.
RELEASE_HOST_LUA = """
if redis.call('HGET', KEYS[1], 'tenant') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

_TYPE_INDEX = {t: i for i, t in enumerate(TYPE_ORDER)}


def write_args(
    upserts: Sequence[Resource],
    removals: Sequence[ResourceKey],
    *,
    offset: KafkaOffset,
    expected_version: int,
) -> list[bytes | str]:
    """ARGV of WRITE_VERSION_LUA. Rejects a (type, name) given twice before anything runs."""
    seen: set[ResourceKey] = set()
    args: list[bytes | str] = [
        str(expected_version),
        offset.topic,
        str(offset.partition),
        str(offset.offset),
    ]
    for resource in upserts:
        key = (resource.type_url, resource.name)
        if key in seen:
            raise ValueError(f"{resource.type_url.short} {resource.name!r} given twice")
        seen.add(key)
        args += ["u", str(_TYPE_INDEX[resource.type_url]), resource.name, resource.body]
    for type_url, name in removals:
        if (type_url, name) in seen:
            raise ValueError(f"{type_url.short} {name!r} given twice")
        seen.add((type_url, name))
        args += ["r", str(_TYPE_INDEX[type_url]), name]
    return args


def change_entry(
    tenant: str,
    version: int,
    upserts: Sequence[Resource],
    removals: Sequence[ResourceKey],
    trace_fields: Mapping[str, str],
) -> ChangeEntry:
    up: dict[Any, list[str]] = {}
    for resource in upserts:
        up.setdefault(resource.type_url, []).append(resource.name)
    rm: dict[Any, list[str]] = {}
    for type_url, name in removals:
        rm.setdefault(type_url, []).append(name)
    return ChangeEntry(
        tenant=tenant,
        version=version,
        upserts={t: tuple(n) for t, n in up.items()},
        removals={t: tuple(n) for t, n in rm.items()},
        trace=dict(trace_fields),
    )


class RedisTenantStore:
    """`TenantStore` on Redis. The client must not decode responses (bodies are bytes).
    `stream_maxlen` bounds `P.changes` (XADD MAXLEN ~): readers further behind than that
    reload everything, so size it to a few minutes of changes."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        layout: KeyLayout | None = None,
        stream_maxlen: int = 100_000,
    ) -> None:
        self._client = client
        self._layout = layout or KeyLayout()
        self._maxlen = stream_maxlen
        self._write: AsyncScript = client.register_script(WRITE_VERSION_LUA)
        self._load: AsyncScript = client.register_script(LOAD_TENANT_LUA)
        self._claim: AsyncScript = client.register_script(CLAIM_HOST_LUA)
        self._release: AsyncScript = client.register_script(RELEASE_HOST_LUA)

    @property
    def layout(self) -> KeyLayout:
        return self._layout

    async def write_version(
        self,
        tenant: str,
        upserts: Sequence[Resource],
        removals: Sequence[ResourceKey],
        *,
        offset: KafkaOffset,
        expected_version: int,
        trace_fields: Mapping[str, str],
    ) -> int:
        keys = self._layout.tenant_keys(tenant)
        if not upserts and not removals:
            current = await self._current_version(tenant)
            if current != expected_version:
                raise VersionConflictError(tenant, expected=expected_version, actual=current)
            return current
        args = write_args(upserts, removals, offset=offset, expected_version=expected_version)
        ok, version = await self._write(keys=keys, args=args)
        if not ok:
            raise VersionConflictError(tenant, expected=expected_version, actual=int(version))
        entry = change_entry(tenant, int(version), upserts, removals, trace_fields)
        try:
            await self._publish(entry)
        except aioredis.RedisError as exc:
            raise AnnounceError(tenant, int(version), exc) from exc
        return int(version)

    async def announce(self, tenant: str, *, trace_fields: Mapping[str, str]) -> int:
        version = await self._current_version(tenant)
        if version:
            await self._publish(
                ChangeEntry(tenant=tenant, version=version, full=True, trace=dict(trace_fields))
            )
        return version

    async def load_checkpoint(self, tenant: str) -> Checkpoint:
        reply = await self._load(keys=self._layout.tenant_keys(tenant), args=[])
        state = parse_tenant_state(tenant, reply)
        return Checkpoint(
            tenant=tenant,
            version=state.version,
            offset=state.offset,
            resource_versions={(r.type_url, r.name): r.version for r in state.resources},
        )

    async def claim_hosts(
        self, tenant: str, hosts: Iterable[str], created_at: datetime
    ) -> dict[str, HostClaim]:
        micros = str(to_micros(created_at))
        wanted = sorted(set(hosts))
        async with self._client.pipeline(transaction=False) as pipe:
            for host in wanted:
                await self._claim(
                    keys=[self._layout.host(host)], args=[tenant, micros], client=pipe
                )
            replies = await pipe.execute()
        out: dict[str, HostClaim] = {}
        for host, (status, owner, owner_micros, previous) in zip(wanted, replies, strict=True):
            out[host] = HostClaim(
                host=host,
                status=ClaimStatus(_text(status)),
                owner=_text(owner),
                owner_created_at=from_micros(int(owner_micros)),
                previous=_text(previous) or None,
            )
        return out

    async def release_hosts(self, tenant: str, hosts: Iterable[str]) -> set[str]:
        wanted = sorted(set(hosts))
        async with self._client.pipeline(transaction=False) as pipe:
            for host in wanted:
                await self._release(keys=[self._layout.host(host)], args=[tenant], client=pipe)
            replies = await pipe.execute()
        return {host for host, released in zip(wanted, replies, strict=True) if released}

    async def owners(self, hosts: Iterable[str]) -> dict[str, str | None]:
        """The current owner of each host (None: unclaimed). For status reports and tests."""
        wanted = sorted(set(hosts))
        async with self._client.pipeline(transaction=False) as pipe:
            for host in wanted:
                pipe.hget(self._layout.host(host), "tenant")
            replies = await pipe.execute()
        return {
            h: (_text(o) if o is not None else None) for h, o in zip(wanted, replies, strict=True)
        }

    async def _current_version(self, tenant: str) -> int:
        raw = await self._client.hget(self._layout.meta(tenant), "version")
        return int(raw) if raw is not None else 0

    async def _publish(self, entry: ChangeEntry) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.sadd(self._layout.tenants, entry.tenant)
            pipe.xadd(
                self._layout.changes,
                dict[Any, Any](entry.encode()),
                maxlen=self._maxlen,
                approximate=True,
            )
            await pipe.execute()


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return str(value)
