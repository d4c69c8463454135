"""The xds side against the stack's Redis: load, follow, duplicates, lost entries, trimmed
stream, and writes racing the load. The translator's store writes; the cache must always end
equal to what Redis holds."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from ripple_common.resources import Resource, TypeUrl
from ripple_common.store_contract import KeyLayout as XdsKeyLayout
from ripple_translator.store import ChangeEntry, KafkaOffset, KeyLayout, RedisTenantStore
from ripple_xds.snapshot import CacheChange, SnapshotCache
from ripple_xds.source import RedisSource

CDS, RDS, SDS = TypeUrl.CLUSTER, TypeUrl.ROUTE, TypeUrl.SECRET
OFFSET = KafkaOffset(topic="ripple.events", partition=0, offset=1)


def r(type_url: TypeUrl, name: str, body: str = "v1") -> Resource:
    return Resource(type_url, name, f"{name}:{body}".encode())


async def write(
    store: RedisTenantStore,
    tenant: str,
    upserts: Sequence[Resource] = (),
    removals: Sequence[tuple[TypeUrl, str]] = (),
    *,
    expected: int,
) -> int:
    return await store.write_version(
        tenant, upserts, removals, offset=OFFSET, expected_version=expected, trace_fields={}
    )


def cache_state(cache: SnapshotCache) -> dict[tuple[TypeUrl, str], bytes]:
    out: dict[tuple[TypeUrl, str], bytes] = {}
    for type_url in TypeUrl:
        for name in cache.names(type_url):
            entry = cache.get(type_url, name)
            assert entry is not None
            out[(type_url, name)] = entry.resource.body
    return out


async def redis_state(
    client: aioredis.Redis, layout: KeyLayout
) -> dict[tuple[TypeUrl, str], bytes]:
    """Every stored resource, read straight from the hashes (not through the contract)."""
    out: dict[tuple[TypeUrl, str], bytes] = {}
    for tenant in await client.smembers(layout.tenants):
        for type_url in TypeUrl:
            hashed = await client.hgetall(layout.resources(as_str(tenant), type_url))
            out.update({(type_url, as_str(k)): as_bytes(v) for k, v in hashed.items()})
    return out


def as_str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def as_bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


async def append(client: aioredis.Redis, layout: KeyLayout, fields: dict[str, str]) -> None:
    """An entry appended by hand (a duplicate, or junk)."""
    await client.xadd(layout.changes, dict[Any, Any](fields))


def make_source(
    client: aioredis.Redis,
    layout: KeyLayout,
    cache: SnapshotCache,
    *,
    block_ms: int = 1_000,
    load_batch: int = 200,
    log_every: int = 1_000,
) -> RedisSource:
    return RedisSource(
        client,
        cache,
        layout=XdsKeyLayout(prefix=layout.prefix),
        block_ms=block_ms,
        load_batch=load_batch,
        log_every=log_every,
    )


async def drain(source: RedisSource) -> int:
    handled = 0
    while n := await source.step(block_ms=50):
        handled += n
    return handled


async def test_load_gives_exactly_what_redis_holds(
    store: RedisTenantStore, client: aioredis.Redis, layout: KeyLayout
) -> None:
    for i in range(25):
        await write(store, f"t{i}", [r(CDS, f"t{i}-c"), r(RDS, f"t{i}-r")], expected=0)
        await write(store, f"t{i}", [r(SDS, f"t{i}-s")], [(RDS, f"t{i}-r")], expected=1)
    cache = SnapshotCache()
    source = make_source(client, layout, cache, load_batch=7, log_every=10)
    assert not source.ready.is_set()
    await source.load()
    assert source.ready.is_set()
    assert cache_state(cache) == await redis_state(client, layout)
    assert len(cache) == 50
    assert source.tenant_version("t3") == 2
    assert source.stats.tenants_loaded == 25
    assert await drain(source) == 0  # the load covered every entry before it


async def test_follower_applies_exactly_a_later_write(
    store: RedisTenantStore, client: aioredis.Redis, layout: KeyLayout
) -> None:
    await write(store, "t1", [r(CDS, "a"), r(CDS, "b"), r(RDS, "rt")], expected=0)
    await write(store, "t2", [r(CDS, "other")], expected=0)
    cache = SnapshotCache()
    source = make_source(client, layout, cache)
    await source.load()
    seen: list[CacheChange] = []
    cache.subscribe(seen.append)

    await write(store, "t1", [r(CDS, "a", "v2"), r(SDS, "s")], [(RDS, "rt")], expected=1)
    assert await drain(source) == 1
    assert len(seen) == 1
    assert seen[0].names == {CDS: {"a"}, SDS: {"s"}, RDS: {"rt"}}
    assert cache_state(cache) == await redis_state(client, layout)
    assert source.tenant_version("t1") == 2
    assert (source.stats.fetched, source.stats.reloaded) == (1, 0)


async def test_run_follows_in_the_background(
    store: RedisTenantStore, client: aioredis.Redis, layout: KeyLayout
) -> None:
    cache = SnapshotCache()
    source = make_source(client, layout, cache, block_ms=100)
    task = asyncio.create_task(source.run())
    try:
        await asyncio.wait_for(source.ready.wait(), 5)
        arrived = asyncio.Event()
        cache.subscribe(lambda change: arrived.set() if CDS in change.names else None)
        await write(store, "t1", [r(CDS, "late")], expected=0)
        await asyncio.wait_for(arrived.wait(), 5)
        assert cache.get(CDS, "late") is not None
    finally:
        source.stop()
        await asyncio.wait_for(task, 2)


async def test_duplicate_and_stale_entries_are_harmless(
    store: RedisTenantStore, client: aioredis.Redis, layout: KeyLayout
) -> None:
    cache = SnapshotCache()
    source = make_source(client, layout, cache)
    await source.load()
    await write(store, "t1", [r(CDS, "a")], expected=0)
    await write(store, "t1", [r(CDS, "a", "v2")], expected=1)
    # the same entries again (at-least-once delivery): one stale, one duplicate
    for version in (1, 2):
        entry = ChangeEntry(tenant="t1", version=version, upserts={CDS: ("a",)})
        await append(client, layout, entry.encode())
    seen: list[CacheChange] = []
    cache.subscribe(seen.append)
    assert await drain(source) == 4
    assert source.stats.skipped == 2
    assert cache_state(cache) == {(CDS, "a"): b"a:v2"}


async def test_malformed_entry_is_counted_and_skipped(
    store: RedisTenantStore, client: aioredis.Redis, layout: KeyLayout
) -> None:
    cache = SnapshotCache()
    source = make_source(client, layout, cache)
    await source.load()
    await append(client, layout, {"junk": "1"})
    await append(client, layout, ChangeEntry(tenant="a{b", version=1).encode())
    await write(store, "t1", [r(CDS, "a")], expected=0)
    assert await drain(source) == 3
    assert source.stats.malformed == 2
    assert cache_state(cache) == {(CDS, "a"): b"a:v1"}


async def test_a_lost_entry_makes_the_next_one_reload_the_tenant(
    store: RedisTenantStore, client: aioredis.Redis, layout: KeyLayout
) -> None:
    class Silent(RedisTenantStore):
        async def _publish(self, entry: ChangeEntry) -> None:
            return None  # the writer died between its tenant write and the append

    cache = SnapshotCache()
    source = make_source(client, layout, cache)
    await write(store, "t1", [r(CDS, "a"), r(CDS, "b")], expected=0)
    await source.load()
    await write(Silent(client, layout=layout), "t1", [r(CDS, "c")], [(CDS, "b")], expected=1)
    await write(store, "t1", [r(RDS, "d")], expected=2)
    assert await drain(source) == 1
    assert source.stats.reloaded == 1
    assert cache_state(cache) == {(CDS, "a"): b"a:v1", (CDS, "c"): b"c:v1", (RDS, "d"): b"d:v1"}
    assert source.tenant_version("t1") == 3


async def test_announcement_after_takeover_reloads_only_readers_behind(
    store: RedisTenantStore, client: aioredis.Redis, layout: KeyLayout
) -> None:
    class Silent(RedisTenantStore):
        async def _publish(self, entry: ChangeEntry) -> None:
            return None

    cache = SnapshotCache()
    source = make_source(client, layout, cache)
    await source.load()
    await write(Silent(client, layout=layout), "t1", [r(CDS, "a")], expected=0)
    await store.announce("t1", trace_fields={})  # the next owner, after load_checkpoint
    await store.announce("t1", trace_fields={})  # again: nothing left to do
    assert await drain(source) == 2
    assert (source.stats.reloaded, source.stats.skipped) == (1, 1)
    assert cache_state(cache) == {(CDS, "a"): b"a:v1"}


async def test_a_trimmed_stream_triggers_a_reload(
    store: RedisTenantStore, client: aioredis.Redis, layout: KeyLayout
) -> None:
    await write(store, "t1", [r(CDS, "a")], expected=0)
    cache = SnapshotCache()
    source = make_source(client, layout, cache)
    await source.load()
    for version in range(1, 6):
        await write(store, "t1", [r(CDS, f"n{version}")], expected=version)
    await write(store, "t2", [r(CDS, "t2")], expected=0)
    await client.xtrim(layout.changes, maxlen=1, approximate=False)  # drops t1's entries
    assert await drain(source) == 1
    assert source.stats.gaps == 1
    assert source.stats.full_loads == 2
    assert cache_state(cache) == await redis_state(client, layout)
    # and it follows on from the new position
    await write(store, "t1", [], [(CDS, "a")], expected=6)
    assert await drain(source) == 1
    assert source.stats.gaps == 1
    assert cache.get(CDS, "a") is None


async def test_trimming_only_what_was_read_is_no_gap(
    store: RedisTenantStore, client: aioredis.Redis, layout: KeyLayout
) -> None:
    cache = SnapshotCache()
    source = make_source(client, layout, cache)
    await source.load()
    await write(store, "t1", [r(CDS, "a")], expected=0)
    assert await drain(source) == 1
    await client.xtrim(layout.changes, maxlen=0, approximate=False)
    await write(store, "t1", [r(CDS, "b")], expected=1)
    assert await drain(source) == 1
    assert (source.stats.gaps, source.stats.full_loads) == (0, 1)
    assert cache_state(cache) == {(CDS, "a"): b"a:v1", (CDS, "b"): b"b:v1"}


async def test_writes_racing_the_load_are_never_lost(
    store: RedisTenantStore, client: aioredis.Redis, layout: KeyLayout
) -> None:
    tenants = [f"t{i}" for i in range(40)]
    for tenant in tenants:
        await write(store, tenant, [r(CDS, f"{tenant}-c", "0")], expected=0)

    async def writer() -> None:
        for round_ in range(1, 6):
            for tenant in tenants:
                upserts = [r(CDS, f"{tenant}-c", str(round_)), r(RDS, f"{tenant}-r{round_}")]
                removals = [(RDS, f"{tenant}-r{round_ - 1}")] if round_ > 1 else []
                await write(store, tenant, upserts, removals, expected=round_)
            await asyncio.sleep(0)

    cache = SnapshotCache()
    source = make_source(client, layout, cache, load_batch=3)
    await asyncio.gather(writer(), source.load())
    await drain(source)
    assert cache_state(cache) == await redis_state(client, layout)
    assert all(source.tenant_version(t) == 6 for t in tenants)


async def test_a_write_landing_right_after_the_load_is_followed(
    store: RedisTenantStore, client: aioredis.Redis, layout: KeyLayout
) -> None:
    """The position is captured before the load: a write that lands after a tenant was read
    (here: right after the whole load) is still ahead of the position, so it is followed."""
    await write(store, "t1", [r(CDS, "a")], expected=0)

    class Racing(RedisSource):
        raced = False

        async def _load_all(self) -> None:
            await super()._load_all()
            if not self.raced:
                self.raced = True
                await write(store, "t1", [r(CDS, "raced")], expected=1)

    cache = SnapshotCache()
    source = Racing(client, cache, layout=XdsKeyLayout(prefix=layout.prefix))
    await source.load()
    assert cache.get(CDS, "raced") is None
    assert await drain(source) == 1
    assert cache.get(CDS, "raced") is not None
    assert source.tenant_version("t1") == 2
