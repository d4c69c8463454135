"""Redis adapter of `TenantStore` and `HostRegistry` (redis-py asyncio, Lua scripts). Every key
comes from `KeyLayout` (ripple_common.store_contract); reasoning: docs/redis-layout.md.

One tenant version is one Lua script over the tenant's keys (one hash slot): it checks the
expected version (fencing), HSETs/HDELs the changed resources, increments the version and sets
the Kafka offset, and applies the changed inputs with the position they cover, all or
nothing. The global `P.tenants` index and the `P.changes` entry live in other slots, so they
follow in a second round trip (at-least-once). If the process dies in
between, readers learn of the version at the tenant's next entry (its version jumps) or at the
`announce` the next owner sends after loading the checkpoint."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from ripple_common.resources import Resource
from ripple_common.store_contract import (
    LOAD_TENANT_LUA,
    TYPE_ORDER,
    ChangeEntry,
    KafkaOffset,
    KeyLayout,
    parse_tenant_state,
)
from ripple_translator.hosts.model import (
    ClaimOutcome,
    ClaimStatus,
    HostNotice,
    HostState,
    HostView,
)
from ripple_translator.hosts.rules import from_micros
from ripple_translator.store.inputs import InputChanges, InputCheckpoint, input_ops, parse_inputs
from ripple_translator.store.model import (
    AnnounceError,
    Checkpoint,
    PositionFencedError,
    ResourceKey,
    VersionConflictError,
)

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

# KEYS: host hash, its serving, waiting and claims keys (one slot: the host's hash tag).
# ARGV: tenant. Reply: {status, owner, owner's claim time (epoch µs), promoted tenant or '',
# other tenants serving, ms the owner's hold lasts (-1: not held)}.
# `hosts.claim_host` is the same rule in Python: the claim time is Redis's clock when the
# tenant first claims the host (kept in :claims while the claim stands); the owner keeps the
# host (a loser never takes it); a host without owner goes to the first standing claim. A
# granted claim adds the tenant to the serving set (before its scope is written) and reports
# who else is in it; a lost one adds it to the waiting set.
CLAIM_HOST_LUA = """
local function before(t1, c1, t2, c2)
  if c1 ~= c2 then return c1 < c2 end
  local n = math.min(#t1, #t2)
  for i = 1, n do
    local a, b = string.byte(t1, i), string.byte(t2, i)
    if a ~= b then return a < b end
  end
  return #t1 < #t2
end
local me = ARGV[1]
local clock = redis.call('TIME')
local now = clock[1] .. string.sub('00000' .. clock[2], -6)
local owner = redis.call('HMGET', KEYS[1], 'tenant', 'created', 'held')
if owner[1] == me then
  redis.call('HSET', KEYS[4], me, owner[2])
  if owner[3] then
    redis.call('HDEL', KEYS[1], 'held')
    redis.call('PERSIST', KEYS[1])
  end
else
  redis.call('HSETNX', KEYS[4], me, now)
end
local promoted = ''
if not owner[1] then
  local all = redis.call('HGETALL', KEYS[4])
  local best, at = nil, nil
  for i = 1, #all, 2 do
    local c = tonumber(all[i + 1])
    if best == nil or before(all[i], c, best, at) then best, at = all[i], c end
  end
  owner = {best, redis.call('HGET', KEYS[4], best), false}
  redis.call('HSET', KEYS[1], 'tenant', best, 'created', owner[2])
  redis.call('SREM', KEYS[3], best)
  if best ~= me then promoted = best end
end
if owner[1] ~= me then
  redis.call('SADD', KEYS[3], me)
  local held = -1
  if owner[3] then held = redis.call('PTTL', KEYS[1]) end
  return {'lost', owner[1], owner[2], promoted, {}, held}
end
redis.call('SREM', KEYS[3], me)
redis.call('SADD', KEYS[2], me)
local others = {}
for _, t in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if t ~= me then table.insert(others, t) end
end
return {'owned', me, owner[2], '', others, -1}
"""

# KEYS: as CLAIM_HOST_LUA. ARGV: tenant, release ('1': withdraw the claim, '0': only stop
# serving the host), hold (ms an owned host released here is held for the tenant; 0: freed
# at once). Reply: {released (1/0), tenants to notify: the waiting claimants of a released
# host, or the owner if the tenant was in the serving set (the owner may serve now)}. Called
# after the tenant's version without the host's scope is written. `hosts.withdraw_host` is
# the same in Python. A hold is the owner hash's expiry: when it ends the host has no owner
# and the next claim gives it to the first standing claim.
WITHDRAW_HOST_LUA = """
local me = ARGV[1]
local removed = redis.call('SREM', KEYS[2], me)
local owner = redis.call('HGET', KEYS[1], 'tenant')
if ARGV[2] == '1' then
  redis.call('SREM', KEYS[3], me)
  redis.call('HDEL', KEYS[4], me)
  if owner == me then
    if tonumber(ARGV[3]) > 0 then
      local clock = redis.call('TIME')
      local now = clock[1] .. string.sub('00000' .. clock[2], -6)
      if redis.call('HSETNX', KEYS[1], 'held', now) == 1 then
        redis.call('PEXPIRE', KEYS[1], ARGV[3])
      end
    else
      redis.call('DEL', KEYS[1])
    end
    return {1, redis.call('SMEMBERS', KEYS[3])}
  end
end
if removed == 1 and owner and owner ~= me then
  return {0, {owner}}
end
return {0, {}}
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
        self._withdraw: AsyncScript = client.register_script(WITHDRAW_HOST_LUA)
        self._host_scripts_loaded = False

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

    async def claim_hosts(self, tenant: str, hosts: Iterable[str]) -> dict[str, ClaimOutcome]:
        return await self.claim(tenant, hosts)

    async def release_hosts(self, tenant: str, hosts: Iterable[str]) -> set[str]:
        released, _ = await self._withdraw_all(tenant, [(h, True) for h in sorted(set(hosts))])
        return released

    # -- HostRegistry (docs/host-ownership.md) --------------------------------------------------

    def host_keys(self, host: str) -> list[str]:
        """The host's owner hash, serving set, waiting set and claims hash (one slot)."""
        return self._layout.host_keys(host)

    async def claim(
        self,
        tenant: str,
        hosts: Iterable[str],
        *,
        record: Mapping[str, HostState] | None = None,
    ) -> dict[str, ClaimOutcome]:
        wanted = sorted(set(hosts))
        if not wanted and record is None:
            return {}
        replies = await self._run_scripts(
            self._claim,
            [(self.host_keys(h), [tenant]) for h in wanted],
            before=None
            if record is None
            else partial(self._save_states, tenant=tenant, states=record),
        )
        if record is not None:
            replies = replies[2 if record else 1 :]
        out: dict[str, ClaimOutcome] = {}
        for host, (status, owner, owner_micros, promoted, others, held_ms) in zip(
            wanted, replies, strict=True
        ):
            out[host] = ClaimOutcome(
                host=host,
                status=ClaimStatus(_text(status)),
                owner=_text(owner),
                owner_created_at=from_micros(int(owner_micros)),
                others=tuple(sorted(_text(o) for o in others)),
                promoted=_text(promoted) or None,
                held_ms=int(held_ms) if int(held_ms) >= 0 else None,
            )
        return out

    async def withdraw(
        self,
        tenant: str,
        *,
        stop_serving: Iterable[str],
        release: Iterable[str],
        hold_s: float = 0.0,
    ) -> list[HostNotice]:
        gone = set(release)
        ops = [(h, True) for h in sorted(gone)]
        ops += [(h, False) for h in sorted(set(stop_serving) - gone)]
        _, notify = await self._withdraw_all(tenant, ops, hold_ms=round(hold_s * 1000))
        return notify

    async def _withdraw_all(
        self, tenant: str, ops: Sequence[tuple[str, bool]], *, hold_ms: int = 0
    ) -> tuple[set[str], list[HostNotice]]:
        if not ops:
            return set(), []
        if hold_ms < 0:
            raise ValueError(f"hold must not be negative: {hold_ms} ms")
        replies = await self._run_scripts(
            self._withdraw,
            [
                (self.host_keys(h), [tenant, "1" if release else "0", str(hold_ms)])
                for h, release in ops
            ],
        )
        released: set[str] = set()
        notify: list[HostNotice] = []
        for (host, _), (done, tenants) in zip(ops, replies, strict=True):
            if int(done):
                released.add(host)
            why = "released" if int(done) else "withdrawn"
            notify.extend(
                HostNotice(tenant=t, host=host, why=why)
                for t in sorted(_text(t) for t in tenants)
                if t != tenant
            )
        return released, notify

    async def load_host_states(self, tenants: Sequence[str]) -> dict[str, dict[str, HostState]]:
        if not tenants:
            return {}
        async with self._client.pipeline(transaction=False) as pipe:
            for tenant in tenants:
                pipe.hgetall(self._layout.host_states(tenant))
            replies = await pipe.execute()
        return {
            tenant: {_text(h): HostState(_text(s)) for h, s in raw.items()}
            for tenant, raw in zip(tenants, replies, strict=True)
            if raw
        }

    async def save_host_states(self, tenant: str, states: Mapping[str, HostState]) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            self._save_states(pipe, tenant=tenant, states=states)
            await pipe.execute()

    async def _run_scripts(
        self,
        script: AsyncScript,
        calls: Sequence[tuple[list[str], list[str]]],
        *,
        before: Callable[[Any], None] | None = None,
    ) -> list[Any]:
        """One pipelined round trip of EVALSHA calls (after `before` adds its commands).
        The host scripts are loaded once (redis-py's own script pipelines ask the server
        whether they exist on every execute: a second round trip); a server that lost them
        (restart, SCRIPT FLUSH) answers NOSCRIPT, and they are loaded again."""
        for attempt in (1, 2):
            if not self._host_scripts_loaded:
                for s in (self._claim, self._withdraw):
                    await self._client.script_load(s.script)
                self._host_scripts_loaded = True
            async with self._client.pipeline(transaction=False) as pipe:
                if before is not None:
                    before(pipe)
                for keys, args in calls:
                    pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
                try:
                    return list(await pipe.execute())
                except NoScriptError:
                    if attempt == 2:
                        raise
                    self._host_scripts_loaded = False
        raise AssertionError("unreachable")

    def _save_states(self, pipe: Any, *, tenant: str, states: Mapping[str, HostState]) -> None:
        """DEL + HSET of the tenant's host states (one key: atomic on a MULTI pipeline;
        on a plain one, a crash between leaves the record empty, which only makes the next
        host check re-translate the tenant)."""
        key = self._layout.host_states(tenant)
        pipe.delete(key)
        if states:
            pipe.hset(key, mapping={h: str(s) for h, s in states.items()})

    async def host_views(self, hosts: Iterable[str]) -> dict[str, HostView]:
        wanted = sorted(set(hosts))
        async with self._client.pipeline(transaction=False) as pipe:
            for host in wanted:
                key, serving, _, _ = self.host_keys(host)
                pipe.hmget(key, ["tenant", "held"])
                pipe.smembers(serving)
            replies = await pipe.execute()
        out: dict[str, HostView] = {}
        for i, host in enumerate(wanted):
            (owner, held), serving = replies[2 * i], replies[2 * i + 1]
            out[host] = HostView(
                owner=_text(owner) if owner is not None else None,
                serving=frozenset(_text(t) for t in serving),
                held=owner is not None and held is not None,
            )
        return out

    async def notify(self, notices: Sequence[HostNotice]) -> None:
        if not notices:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for n in notices:
                pipe.xadd(
                    self._layout.host_notices,
                    {"tenant": n.tenant, "host": n.host, "why": n.why},
                    maxlen=self._maxlen,
                    approximate=True,
                )
            await pipe.execute()

    async def notices_position(self) -> str:
        """The id of the last notice (where a new follower starts), "0-0" if none."""
        last = await self._client.xrevrange(self._layout.host_notices, count=1)
        return _text(last[0][0]) if last else "0-0"

    async def read_notices(
        self, position: str, *, block_ms: int, count: int = 1000
    ) -> tuple[str, list[HostNotice]]:
        """Notices after `position` (waiting up to `block_ms`); returns the new position."""
        reply: Any = await self._client.xread(
            {self._layout.host_notices: position}, block=block_ms, count=count
        )
        out: list[HostNotice] = []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                position = _text(entry_id)
                f = {_text(k): _text(v) for k, v in fields.items()}
                out.append(
                    HostNotice(
                        tenant=f.get("tenant", ""), host=f.get("host", ""), why=f.get("why", "")
                    )
                )
        return position, out

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


def checkpoint_of(tenant: str, reply: Sequence[object]) -> Checkpoint:
    """A LOAD_TENANT_LUA reply as the translator's checkpoint."""
    state = parse_tenant_state(tenant, reply)
    return Checkpoint(
        tenant=tenant,
        version=state.version,
        offset=state.offset,
        resource_versions={(r.type_url, r.name): r.version for r in state.resources},
    )


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return str(value)
