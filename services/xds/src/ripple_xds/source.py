"""Redis follower: loads every tenant into the `SnapshotCache`, then follows `ripple.changes`.

Start: capture the stream's last id, THEN load every tenant of the `P.tenants` index (one
atomic Lua read per tenant, pipelined in batches, progress logged every `log_every` tenants),
then set `ready` and follow from the captured id. A change written during the load is either
seen by the load or arrives as an entry after the captured id (the writer appends the entry
after its tenant write); seeing it twice is harmless (`SnapshotCache.apply` and the version
rules of `tenants` are idempotent).

Follow: read the entries after our position together with XINFO STREAM in one MULTI (one
slot, so an atomic snapshot); when none are pending, wait with XREAD BLOCK. Per entry, by
version (see `tenants.plan`): skip, fetch the mentioned names, or re-read the tenant; the reads
of one batch are pipelined. Gap: we count the entries up to our position (`entries-added` at
capture plus those read since); if more than that many entries are gone from the stream's
front (`entries-added - length`), entries we never read were trimmed: re-capture the position
and reload every tenant. Never a silent skip. (Redis 7.0 does not move max-deleted-entry-id
on trimming, hence the count; Redis < 7: conservative, by `first-entry` > position.)

Redis errors while following are logged and retried after `retry_s`; the position is kept,
and the gap check covers anything trimmed meanwhile.

Gateway groups: with a tenant filter (`identity.GatewayPolicy.tenant_filter`: the tenants some
configured gateway of this replica sees) only those tenants are loaded, followed and held; an
entry of another tenant is skipped by its `tenant` field alone (no decoding of its names, no
read) and counted (`SourceStats.foreign`). Without one, every tenant."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import redis.asyncio as aioredis
import structlog
from redis.commands.core import AsyncScript

from ripple_common.redis_client import TRANSIENT_ERRORS
from ripple_common.resources import Resource
from ripple_common.store_contract import (
    FETCH_NAMES_LUA,
    LOAD_TENANT_LUA,
    ChangeEntry,
    ContractError,
    KeyLayout,
    TenantState,
    fetch_names_args,
    parse_fetch_names,
    parse_tenant_state,
)
from ripple_xds.snapshot import CacheChange, SnapshotCache
from ripple_xds.tenants import Action, TenantTracker, Update, plan

_log = structlog.get_logger(__name__)

StreamId = tuple[int, int]

# Called after each applied entry: the entry (with its trace fields) and what the cache
# changed (None: nothing). For per-push spans and propagation measurements.
AppliedCallback = Callable[[ChangeEntry, CacheChange | None], None]

# Turns a stored resource into the one served (e.g. opens a sealed private key); None: do not
# serve this upsert (the cache keeps what it had).
Prepare = Callable[[Resource], Resource | None]

# Whether this replica holds a tenant (its gateway group); None: every tenant.
TenantFilter = Callable[[str], bool]


# The planned entry of another gateway group's tenant (skipped unread).
FOREIGN: Final = ChangeEntry(tenant="", version=0)


def parse_id(raw: bytes | str) -> StreamId:
    text = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, seq = text.partition("-")
    try:
        return (int(ms), int(seq or 0))
    except ValueError:
        raise ContractError(f"bad stream id {text!r}") from None


def format_id(stream_id: StreamId) -> str:
    return f"{stream_id[0]}-{stream_id[1]}"


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What XINFO STREAM says about `P.changes`, read atomically with the entries."""

    last_id: StreamId
    length: int
    entries_added: int | None  # Redis >= 7: entries ever appended
    first_id: StreamId | None


def is_gap(position: StreamId, ordinal: int, info: StreamInfo | None) -> bool:
    """Whether entries after our position were trimmed before we read them. `ordinal` counts
    the entries ever appended up to our position (`entries-added` when it was captured, plus
    the entries read since). Redis 7: the entries gone from the front are the first
    `entries_added - length`; exact as the writer never XDELs (an XDEL only makes it
    conservative). Older Redis: conservative, by the first entry still present."""
    if info is None:
        return ordinal > 0  # the stream was deleted: what followed our position is lost
    if info.entries_added is not None:
        return info.entries_added < ordinal or info.entries_added - info.length > ordinal
    return info.first_id is not None and info.first_id > position


def stream_info(raw: object) -> StreamInfo:
    if not isinstance(raw, dict):
        raise ContractError(f"unexpected XINFO STREAM reply {type(raw).__name__}")
    info = {_text(k): v for k, v in raw.items()}
    first = info.get("first-entry")
    added = info.get("entries-added")
    return StreamInfo(
        last_id=parse_id(_as_id(info["last-generated-id"])),
        length=int(str(info["length"])),
        entries_added=int(str(added)) if added is not None else None,
        first_id=parse_id(_as_id(first[0])) if isinstance(first, list | tuple) else None,
    )


@dataclass(slots=True)
class SourceStats:
    tenants_loaded: int = 0
    full_loads: int = 0
    gaps: int = 0
    entries: int = 0
    skipped: int = 0
    fetched: int = 0
    reloaded: int = 0
    malformed: int = 0
    errors: int = 0
    foreign: int = 0  # entries of tenants outside this replica's gateway group, skipped


class RedisSource:
    """Feeds a `SnapshotCache` from Redis. `run()` = `load()` then `follow()` (until
    `stop()`). The client must not decode responses. `block_ms` must stay below the client's
    socket timeout (redis-py 8 defaults to 5 s), or an idle XREAD BLOCK times out."""

    def __init__(
        self,
        client: aioredis.Redis,
        cache: SnapshotCache,
        *,
        layout: KeyLayout | None = None,
        block_ms: int = 1_000,
        read_count: int = 500,
        load_batch: int = 200,
        log_every: int = 1_000,
        on_applied: AppliedCallback | None = None,
        prepare: Prepare | None = None,
        retry_s: float = 1.0,
        tenants: TenantFilter | None = None,
    ) -> None:
        self._client = client
        self._cache = cache
        self._layout = layout or KeyLayout()
        self._block_ms = block_ms
        self._read_count = read_count
        self._load_batch = load_batch
        self._log_every = log_every
        self._on_applied = on_applied
        self._prepare = prepare
        self._retry_s = retry_s
        self._holds = tenants
        self._tracker = TenantTracker()
        self._position: StreamId = (0, 0)
        self._ordinal = 0
        self._stopping = False
        self._load: AsyncScript = client.register_script(LOAD_TENANT_LUA)
        self._fetch: AsyncScript = client.register_script(FETCH_NAMES_LUA)
        self.ready = asyncio.Event()
        self.stats = SourceStats()

    @property
    def position(self) -> StreamId:
        """The last `ripple.changes` id covered by the cache."""
        return self._position

    def tenant_version(self, tenant: str) -> int:
        return self._tracker.version(tenant)

    def tenant_versions(self) -> dict[str, int]:
        """Every tenant held, with its version (read by the /debug/nodes status view)."""
        tracker = self._tracker
        return {tenant: tracker.version(tenant) for tenant in tracker.tenants}

    async def run(self) -> None:
        await self.load()
        if not self._stopping:
            await self.follow()

    async def load(self) -> None:
        """Capture the stream position, then load every tenant; sets `ready`."""
        await self._reload()
        self.ready.set()

    async def _reload(self) -> None:
        info, _ = await self._snapshot(read=False)
        await self._load_all()
        self._position = info.last_id if info else (0, 0)
        self._ordinal = (info.entries_added or 0) if info else 0

    def stop(self) -> None:
        """Make `follow` (and `run`) return after the current round (at most `block_ms`).
        Prefer this to cancelling: redis-py 8.1 (as installed here) can swallow a task
        cancellation that lands inside a command, leaving the task running."""
        self._stopping = True

    async def follow(self) -> None:
        while not self._stopping:
            try:
                await self.step()
            except TRANSIENT_ERRORS as exc:  # also a cluster failover's CLUSTERDOWN
                self.stats.errors += 1
                _log.warning("redis unavailable; retrying", error=str(exc), retry_s=self._retry_s)
                await asyncio.sleep(self._retry_s)

    async def step(self, *, block_ms: int | None = None) -> int:
        """Handle what is pending, else wait up to `block_ms` (XREAD BLOCK) for more and
        handle that. Returns the entries handled."""
        handled = await self._read_once()
        if handled:
            return handled
        await self._client.xread(
            {self._layout.changes: format_id(self._position)},
            count=1,
            block=self._block_ms if block_ms is None else block_ms,
        )
        return await self._read_once()

    async def _read_once(self) -> int:
        """One atomic snapshot (XINFO STREAM + XREAD, MULTI on the stream's slot): check for
        a gap, then apply the entries read."""
        info, raw_entries = await self._snapshot()
        if is_gap(self._position, self._ordinal, info):
            self.stats.gaps += 1
            _log.warning(
                "change stream trimmed past our position; reloading every tenant",
                position=format_id(self._position),
            )
            await self._reload()
            return max(len(raw_entries), 1)
        if raw_entries:
            await self._apply_entries(raw_entries)
        return len(raw_entries)

    # -- loading ----------------------------------------------------------------------------

    async def _load_all(self) -> None:
        started = time.monotonic()
        members = {_text(m) for m in await self._client.smembers(self._layout.tenants)}
        if self._holds is not None:
            members = {t for t in members if self._holds(t)}
        tenants = sorted(members | self._tracker.tenants)
        for i in range(0, len(tenants), self._load_batch):
            batch = tenants[i : i + self._load_batch]
            states = await self._read_tenants(batch)
            for state in states:
                self._apply(self._tracker.replace(state))
            done = i + len(batch)
            if done // self._log_every != i // self._log_every or done == len(tenants):
                _log.info("loading tenants", loaded=done, total=len(tenants))
        self.stats.tenants_loaded = len(tenants)
        self.stats.full_loads += 1
        _log.info(
            "tenants loaded",
            tenants=len(tenants),
            resources=len(self._cache),
            seconds=round(time.monotonic() - started, 3),
        )

    async def _read_tenants(self, tenants: Sequence[str]) -> list[TenantState]:
        async with self._client.pipeline(transaction=False) as pipe:
            for tenant in tenants:
                await self._load(keys=self._layout.tenant_keys(tenant), args=[], client=pipe)
            replies = await pipe.execute()
        return [parse_tenant_state(t, r) for t, r in zip(tenants, replies, strict=True)]

    # -- following --------------------------------------------------------------------------

    def _plan(
        self, raw_entries: Sequence[tuple[bytes, dict[bytes, bytes]]]
    ) -> list[tuple[StreamId, ChangeEntry, Action]]:
        """What to do with each entry, against the versions the batch will have reached."""
        held: dict[str, int] = {}
        planned: list[tuple[StreamId, ChangeEntry, Action]] = []
        for raw_id, fields in raw_entries:
            stream_id = parse_id(raw_id)
            if self._foreign(fields):
                planned.append((stream_id, FOREIGN, Action.SKIP))
                continue
            try:
                entry = ChangeEntry.decode(fields)
                self._layout.meta(entry.tenant)  # a tenant usable in keys
            except ContractError as exc:
                self.stats.malformed += 1
                _log.error(
                    "malformed change entry skipped", id=format_id(stream_id), error=str(exc)
                )
                planned.append((stream_id, ChangeEntry(tenant="", version=0), Action.SKIP))
                continue
            if self._holds is not None and not self._holds(entry.tenant):
                planned.append((stream_id, FOREIGN, Action.SKIP))  # str fields: a decoding client
                continue
            version = held.get(entry.tenant, self._tracker.version(entry.tenant))
            action = plan(entry, version)
            if action is not Action.SKIP:
                held[entry.tenant] = entry.version
            planned.append((stream_id, entry, action))
        return planned

    async def _apply_entries(self, raw_entries: Sequence[tuple[bytes, dict[bytes, bytes]]]) -> None:
        # Plan against the versions the batch will have reached, then pipeline every read.
        planned = self._plan(raw_entries)
        async with self._client.pipeline(transaction=False) as pipe:
            for _, entry, action in planned:
                keys = self._layout.tenant_keys(entry.tenant) if entry.tenant else []
                if action is Action.FETCH:
                    args = fetch_names_args({t: sorted(n) for t, n in entry.names().items()})
                    await self._fetch(keys=keys, args=args, client=pipe)
                elif action is Action.RELOAD:
                    await self._load(keys=keys, args=[], client=pipe)
            replies = iter(await pipe.execute())

        for stream_id, entry, action in planned:
            self.stats.entries += 1
            change: CacheChange | None = None
            if entry is FOREIGN:
                self.stats.foreign += 1
            elif action is Action.SKIP:
                self.stats.skipped += 1
            elif action is Action.FETCH:
                self.stats.fetched += 1
                names = {t: sorted(n) for t, n in entry.names().items()}
                _, present, absent = parse_fetch_names(names, next(replies))
                change = self._apply(
                    self._tracker.merge(
                        entry.tenant, version=entry.version, present=present, absent=absent
                    )
                )
            else:
                self.stats.reloaded += 1
                state = parse_tenant_state(entry.tenant, next(replies))
                change = self._apply(self._tracker.replace(state))
            self._position = stream_id
            self._ordinal += 1
            if entry.tenant:
                _log.debug(
                    "change applied",
                    tenant=entry.tenant,
                    version=entry.version,
                    action=action.value,
                    changed=sum(len(n) for n in change.names.values()) if change else 0,
                )
                if self._on_applied is not None:
                    self._on_applied(entry, change)

    def _foreign(self, fields: Mapping[bytes, bytes]) -> bool:
        """Whether an entry is of a tenant this replica does not hold, by its raw `tenant`
        field (a malformed entry is not foreign: decoding reports it)."""
        if self._holds is None:
            return False
        tenant = fields.get(b"tenant")
        return tenant is not None and not self._holds(tenant.decode(errors="replace"))

    def _apply(self, update: Update) -> CacheChange | None:
        upserts: tuple[Resource, ...] | list[Resource] = update.upserts
        if self._prepare is not None:
            prepare = self._prepare
            upserts = [p for r in update.upserts if (p := prepare(r)) is not None]
        return self._cache.apply(upserts=upserts, removals=update.removals)

    # -- stream position --------------------------------------------------------------------

    async def _snapshot(
        self, *, read: bool = True
    ) -> tuple[StreamInfo | None, Sequence[tuple[bytes, dict[bytes, bytes]]]]:
        key = self._layout.changes
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.xinfo_stream(key)
            if read:
                pipe.xread({key: format_id(self._position)}, count=self._read_count)
            replies = await pipe.execute(raise_on_error=False)
        raw_info = replies[0]
        if isinstance(raw_info, aioredis.ResponseError):
            if "no such key" not in str(raw_info).lower():
                raise raw_info
            return None, ()
        if isinstance(raw_info, Exception):
            raise raw_info
        return stream_info(raw_info), (_entries(replies[1]) if read and replies[1] else ())


def _entries(reply: object) -> Sequence[tuple[bytes, dict[bytes, bytes]]]:
    """The entries of a one-stream XREAD reply (RESP2 list or RESP3 map)."""
    if isinstance(reply, dict):
        (entries,) = reply.values()
        first = entries[0] if entries else None
        return first if isinstance(first, list) else entries
    if isinstance(reply, list):
        return reply[0][1]  # type: ignore[no-any-return]
    raise ContractError(f"unexpected XREAD reply {type(reply).__name__}")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _as_id(value: object) -> str:
    if isinstance(value, bytes | str):
        return _text(value)
    raise ContractError(f"unexpected stream id {value!r}")
