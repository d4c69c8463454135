"""Redis adapter of `TenantStore` (redis-py asyncio, Lua scripts). Every key comes from
`KeyLayout` (ripple_common.store_contract); reasoning: docs/redis-layout.md. (Host ownership,
on the same client and layout: `redis_hosts.RedisHostRegistry`.)

One tenant version is one Lua script over the tenant's keys (one hash slot): it checks the
expected version (fencing), HSETs/HDELs the changed resources, increments the version and sets
the Kafka offset, and applies the changed inputs with the position they cover, all or
nothing. The global `P.tenants` index and the `P.changes` entry live in other slots, so they
follow in a second round trip (at-least-once). If the process dies in
between, readers learn of the version at the tenant's next entry (its version jumps) or at the
`announce` the next owner sends after loading the checkpoint."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Unpack

import redis.asyncio as aioredis
import structlog
from redis.commands.core import AsyncScript

from ripple_common.resources import Resource
from ripple_common.store_contract import (
    LOAD_TENANT_LUA,
    TYPE_ORDER,
    ChangeEntry,
    KafkaOffset,
    parse_tenant_state,
)
from ripple_translator.store.inputs import InputChanges, InputCheckpoint, input_ops, parse_inputs
from ripple_translator.store.model import (
    AnnounceError,
    Checkpoint,
    PositionFencedError,
    ResourceKey,
    VersionConflictError,
)
from ripple_translator.store.redis_adapter import AdapterOptions, RedisAdapter

# KEYS: tenant_keys(t), then the tenant's input key (same slot). ARGV: expected, topic,
# partition, offset, inputs ('1': write the inputs' position, '0': leave the input key alone),
# then ops: "u", type index (0-based, TYPE_ORDER), name, body | "r", type
# index, name (resources) | "i", field, body | "d", field (inputs).
# Reply: {1, version, inputs written (1/0)}: the version is new if any resource changed (else
# the current one: nothing but the inputs written); the inputs are left alone when they cover a
# later offset of the same partition (a stale writer). Or nothing written and {0, current
# version} (fenced: not at the expected version) or {2, current version, stored offset} (fenced
# by position: the stored version covers a later offset of the same topic and partition than
# this write; an equal offset passes: a re-translation at the stored position).
# Every argument is validated before the first write, so no error can leave half a version.
WRITE_VERSION_LUA = """
local at = redis.call('HMGET', KEYS[1], 'version', 'topic', 'partition', 'offset')
local cur = tonumber(at[1] or '0')
if at[2] == ARGV[2] and at[3] == ARGV[3] and tonumber(at[4]) > tonumber(ARGV[4]) then
  return {2, cur, tonumber(at[4])}
end
if cur ~= tonumber(ARGV[1]) then
  return {0, cur}
end
local input = KEYS[#KEYS]
local stored = redis.call('HMGET', input, '~topic', '~partition', '~offset')
local fresh = ARGV[5] == '1' and not (stored[1] == ARGV[2] and stored[2] == ARGV[3]
  and tonumber(stored[3]) > tonumber(ARGV[4]))
local changed = false
local i = 6
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'u' then
    redis.call('HSET', KEYS[tonumber(ARGV[i + 1]) + 2], ARGV[i + 2], ARGV[i + 3])
    changed = true
    i = i + 4
  elseif op == 'r' then
    redis.call('HDEL', KEYS[tonumber(ARGV[i + 1]) + 2], ARGV[i + 2])
    changed = true
    i = i + 3
  elseif op == 'i' then
    if fresh then redis.call('HSET', input, ARGV[i + 1], ARGV[i + 2]) end
    i = i + 3
  else
    if fresh then redis.call('HDEL', input, ARGV[i + 1]) end
    i = i + 2
  end
end
local v = cur
if changed then
  v = redis.call('HINCRBY', KEYS[1], 'version', 1)
  redis.call('HSET', KEYS[1], 'topic', ARGV[2], 'partition', ARGV[3], 'offset', ARGV[4])
end
if fresh then
  redis.call('HSET', input, '~topic', ARGV[2], '~partition', ARGV[3], '~offset', ARGV[4])
  return {1, v, 1}
end
return {1, v, 0}
"""

_TYPE_INDEX = {t: i for i, t in enumerate(TYPE_ORDER)}
log = structlog.get_logger("ripple_translator.store")


def write_args(
    upserts: Sequence[Resource],
    removals: Sequence[ResourceKey],
    *,
    offset: KafkaOffset,
    expected_version: int,
    inputs: InputChanges | None = None,
) -> list[bytes | str]:
    """ARGV of WRITE_VERSION_LUA. Rejects a (type, name) given twice before anything runs."""
    seen: set[ResourceKey] = set()
    args: list[bytes | str] = [
        str(expected_version),
        offset.topic,
        str(offset.partition),
        str(offset.offset),
        "0" if inputs is None else "1",
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
    if inputs is not None:
        args += input_ops(inputs)
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


class RedisTenantStore(RedisAdapter):
    """`TenantStore` on Redis. `stream_maxlen` bounds `P.changes`: readers further behind
    than that reload everything, so size it to a few minutes of changes."""

    def __init__(self, client: aioredis.Redis, **options: Unpack[AdapterOptions]) -> None:
        super().__init__(client, **options)
        self._write: AsyncScript = client.register_script(WRITE_VERSION_LUA)
        self._load: AsyncScript = client.register_script(LOAD_TENANT_LUA)

    async def write_version(
        self,
        tenant: str,
        upserts: Sequence[Resource],
        removals: Sequence[ResourceKey],
        *,
        offset: KafkaOffset,
        expected_version: int,
        trace_fields: Mapping[str, str],
        inputs: InputChanges | None = None,
    ) -> int:
        keys = [*self._layout.tenant_keys(tenant), self._layout.inputs(tenant)]
        args = write_args(
            upserts, removals, offset=offset, expected_version=expected_version, inputs=inputs
        )
        reply = await self._write(keys=keys, args=args)
        status, version = int(reply[0]), int(reply[1])
        if status == 2:
            raise PositionFencedError(
                tenant,
                offset=offset.offset,
                stored_offset=int(reply[2]),
                expected=expected_version,
                actual=version,
            )
        if not status:
            raise VersionConflictError(tenant, expected=expected_version, actual=version)
        if inputs is not None and not int(reply[2]):
            log.warning("tenant.inputs_stale", tenant=tenant, offset=offset.offset)
        if not upserts and not removals:
            return version  # nothing but the inputs written: no new version to announce
        entry = change_entry(tenant, version, upserts, removals, trace_fields)
        try:
            await self._publish(entry)
        except aioredis.RedisError as exc:
            raise AnnounceError(tenant, version, exc) from exc
        return version

    async def announce(self, tenant: str, *, trace_fields: Mapping[str, str]) -> int:
        version = await self._current_version(tenant)
        if version:
            await self._publish(
                ChangeEntry(tenant=tenant, version=version, full=True, trace=dict(trace_fields))
            )
        return version

    async def load_checkpoint(self, tenant: str) -> Checkpoint:
        reply = await self._load(keys=self._layout.tenant_keys(tenant), args=[])
        return checkpoint_of(tenant, reply)

    async def load_inputs(self, tenant: str) -> InputCheckpoint:
        return parse_inputs(tenant, await self._client.hgetall(self._layout.inputs(tenant)))

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


def checkpoint_of(tenant: str, reply: Sequence[object]) -> Checkpoint:
    """A LOAD_TENANT_LUA reply as the translator's checkpoint."""
    state = parse_tenant_state(tenant, reply)
    return Checkpoint(
        tenant=tenant,
        version=state.version,
        offset=state.offset,
        resource_versions={(r.type_url, r.name): r.version for r in state.resources},
    )
