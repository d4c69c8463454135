"""Redis adapter of `hosts.HostRegistry` (redis-py asyncio, Lua scripts): cross-tenant host
ownership with hand-over (docs/host-ownership.md). Every key comes from `KeyLayout`
(ripple_common.store_contract; docs/redis-layout.md): each host's owner hash, serving set,
waiting set and claims hash share one hash slot (the host's hash tag), so one script per host
decides a claim or a withdrawal atomically; a batch of hosts is one pipelined round trip.
The tenant's versions are `redis_store.RedisTenantStore`'s (the same client and layout)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, Unpack

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from ripple_translator.hosts.model import (
    ClaimOutcome,
    ClaimStatus,
    HostNotice,
    HostState,
    HostView,
)
from ripple_translator.hosts.rules import from_micros
from ripple_translator.store.redis_adapter import AdapterOptions, RedisAdapter

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


class RedisHostRegistry(RedisAdapter):
    """`HostRegistry` on Redis. `stream_maxlen` bounds `P.hostevents`."""

    def __init__(self, client: aioredis.Redis, **options: Unpack[AdapterOptions]) -> None:
        super().__init__(client, **options)
        self._claim: AsyncScript = client.register_script(CLAIM_HOST_LUA)
        self._withdraw: AsyncScript = client.register_script(WITHDRAW_HOST_LUA)
        self._scripts_loaded = False

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
        if not ops:
            return []
        hold_ms = round(hold_s * 1000)
        if hold_ms < 0:
            raise ValueError(f"hold must not be negative: {hold_ms} ms")
        replies = await self._run_scripts(
            self._withdraw,
            [
                (self.host_keys(h), [tenant, "1" if release else "0", str(hold_ms)])
                for h, release in ops
            ],
        )
        notify: list[HostNotice] = []
        for (host, _), (done, tenants) in zip(ops, replies, strict=True):
            why = "released" if int(done) else "withdrawn"
            notify.extend(
                HostNotice(tenant=t, host=host, why=why)
                for t in sorted(_text(t) for t in tenants)
                if t != tenant
            )
        return notify

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
            if not self._scripts_loaded:
                for s in (self._claim, self._withdraw):
                    await self._client.script_load(s.script)
                self._scripts_loaded = True
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
                    self._scripts_loaded = False
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


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return str(value)
