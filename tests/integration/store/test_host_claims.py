"""Host ownership arbitrated in Redis (the Lua scripts; tests/unit/translator/
test_host_arbitration.py runs the same rule in Python): a host belongs to the first claim of
it that still stands, timed by Redis's clock; a later claim never takes it, concurrent claims
leave exactly one owner, a withdrawn claim made again is a new one, a released host is held
for its owner for the grace and then goes to the first standing claim; only the owner
releases."""

from __future__ import annotations

import asyncio
import random
import uuid

import redis.asyncio as aioredis

from ripple_translator.hosts import ClaimStatus, HostNotice, HostState, HostView, from_micros
from ripple_translator.store import RedisTenantStore
from ripple_translator.store.redis_store import CLAIM_HOST_LUA


def _raw(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


async def redis_now(client: aioredis.Redis) -> int:
    seconds, micros = await client.time()
    return int(seconds) * 1_000_000 + int(micros)


async def test_first_claim_owns_and_a_later_claim_loses(
    store: RedisTenantStore, client: aioredis.Redis
) -> None:
    before = await redis_now(client)
    claims = await store.claim_hosts("a", ["x.example.com", "y.example.com"])
    after = await redis_now(client)
    assert {c.status for c in claims.values()} == {ClaimStatus.OWNED}
    since = claims["x.example.com"].owner_created_at
    # the claim time is Redis's clock at the claim, not any object's age
    assert from_micros(before) <= since <= from_micros(after)
    lost = await store.claim_hosts("b", ["x.example.com", "z.example.com"])
    x = lost["x.example.com"]
    assert (x.status, x.owner, x.owner_created_at, x.granted, x.held_ms) == (
        ClaimStatus.LOST,
        "a",
        since,
        False,
        None,
    )
    assert lost["z.example.com"].status is ClaimStatus.OWNED
    assert await store.owners(["x.example.com", "z.example.com", "free"]) == {
        "free": None,
        "x.example.com": "a",
        "z.example.com": "b",
    }
    claimed = await client.hgetall(store.host_keys("x.example.com")[3])
    assert set(claimed) == {b"a", b"b"}
    assert int(claimed[b"a"]) < int(claimed[b"b"])


async def test_a_later_claim_never_takes_the_host_and_keeps_its_first_time(
    store: RedisTenantStore, client: aioredis.Redis
) -> None:
    await store.claim_hosts("owner", ["h"])
    first = (await store.claim_hosts("thief", ["h"]))["h"]
    claims_key = store.host_keys("h")[3]
    thief_time = await client.hget(claims_key, "thief")
    for _ in range(3):
        again = (await store.claim_hosts("thief", ["h"]))["h"]
        assert (again.status, again.owner) == (ClaimStatus.LOST, "owner")
    assert first.status is ClaimStatus.LOST
    assert await client.hget(claims_key, "thief") == thief_time
    # even a recorded claim time before the owner's (old data, a clock step) takes nothing
    await client.hset(claims_key, "thief", "1")
    assert (await store.claim_hosts("thief", ["h"]))["h"].owner == "owner"


async def test_owner_reclaiming_is_idempotent(store: RedisTenantStore) -> None:
    first = (await store.claim_hosts("a", ["h"]))["h"]
    claim = (await store.claim_hosts("a", ["h"]))["h"]
    assert (claim.status, claim.owner, claim.owner_created_at, claim.promoted) == (
        ClaimStatus.OWNED,
        "a",
        first.owner_created_at,
        None,
    )


async def test_concurrent_claims_leave_exactly_one_owner_the_first_standing_claim(
    store: RedisTenantStore, client: aioredis.Redis
) -> None:
    hosts = [f"h{i}.example.com" for i in range(20)]
    tenants = [f"tenant-{i:02d}" for i in range(30)]
    random.Random(7).shuffle(tenants)
    results = await asyncio.gather(*(store.claim_hosts(t, hosts) for t in tenants))
    owners = await store.owners(hosts)
    for host in hosts:
        raw = await client.hgetall(store.host_keys(host)[3])
        claimed = {_raw(t): int(c) for t, c in raw.items()}
        assert len(claimed) == len(tenants)
        first = min(claimed, key=lambda t: (claimed[t], t))  # bytewise on ties
        assert owners[host] == first.decode()
        granted = [t for t, r in zip(tenants, results, strict=True) if r[host].granted]
        assert granted == [owners[host]]
        assert {r[host].owner for r in results} == {owners[host]}


async def test_equal_claim_times_go_to_the_bytewise_smaller_tenant(
    store: RedisTenantStore, client: aioredis.Redis
) -> None:
    # Redis's clock never repeats between two scripts here, so equal times are written
    _, _, _, claims = store.host_keys("h")
    await client.hset(claims, mapping={"b": "5", "a": "5", "B": "5"})
    got = (await store.claim_hosts("c", ["h"]))["h"]
    # bytewise: "B" (0x42) before "a" (0x61), whatever the server's locale
    assert (got.status, got.owner, got.promoted) == (ClaimStatus.LOST, "B", "B")


async def test_release_frees_only_the_owners_hosts(store: RedisTenantStore) -> None:
    await store.claim_hosts("a", ["h1", "h2"])
    await store.claim_hosts("b", ["h3"])
    assert await store.release_hosts("b", ["h1", "h3", "never"]) == {"h3"}
    assert await store.owners(["h1", "h3"]) == {"h1": "a", "h3": None}
    assert await store.release_hosts("a", ["h1"]) == {"h1"}
    assert (await store.claim_hosts("c", ["h1"]))["h1"].status is ClaimStatus.OWNED
    assert (await store.claim_hosts("c", ["h2"]))["h2"].owner == "a"


async def test_a_granted_claim_reports_a_tenant_still_serving_until_it_withdraws(
    store: RedisTenantStore, client: aioredis.Redis
) -> None:
    _, serving, _, _ = store.host_keys("h")
    # "old" still counted as serving (e.g. written by an older release's takeover)
    await client.sadd(serving, "old")
    got = (await store.claim("new", ["h"]))["h"]
    assert (got.status, got.others, got.servable) == (ClaimStatus.OWNED, ("old",), False)
    notices = await store.withdraw("old", stop_serving=["h"], release=[])
    assert [(n.tenant, n.host, n.why) for n in notices] == [("new", "h", "withdrawn")]
    again = (await store.claim("new", ["h"]))["h"]
    assert (again.status, again.others, again.servable) == (ClaimStatus.OWNED, (), True)
    assert await store.host_views(["h", "free"]) == {
        "h": HostView(owner="new", serving=frozenset({"new"})),
        "free": HostView(owner=None, serving=frozenset()),
    }


async def test_a_release_hands_the_host_to_the_first_standing_claim(
    store: RedisTenantStore,
) -> None:
    await store.claim("a", ["h"])
    await store.claim("b", ["h"])
    await store.claim("c", ["h"])
    notices = await store.withdraw("a", stop_serving=[], release=["h"])
    assert sorted((n.tenant, n.why) for n in notices) == [("b", "released"), ("c", "released")]
    assert (await store.owners(["h"]))["h"] is None
    # "c" is woken first, but "b" claimed first: "b" becomes the owner and is to be told
    lost = (await store.claim("c", ["h"]))["h"]
    assert (lost.status, lost.owner, lost.promoted) == (ClaimStatus.LOST, "b", "b")
    assert (await store.claim("b", ["h"]))["h"].status is ClaimStatus.OWNED
    # a non-owner's release frees nothing
    assert await store.withdraw("z", stop_serving=[], release=["h"]) == []
    assert await store.withdraw("c", stop_serving=["h"], release=[]) == []
    assert (await store.owners(["h"]))["h"] == "b"


async def test_a_withdrawn_claim_made_again_is_a_new_claim(store: RedisTenantStore) -> None:
    await store.claim("a", ["h"])
    await store.claim("b", ["h"])
    await store.claim("c", ["h"])
    # "b" stops asking for the host, then asks again: it is now behind "c"
    assert await store.withdraw("b", stop_serving=["h"], release=["h"]) == []
    await store.claim("b", ["h"])
    await store.withdraw("a", stop_serving=[], release=["h"])
    lost = (await store.claim("b", ["h"]))["h"]
    assert (lost.status, lost.owner, lost.promoted) == (ClaimStatus.LOST, "c", "c")


async def test_a_released_host_is_held_for_its_owner_for_the_grace(
    store: RedisTenantStore,
) -> None:
    first = (await store.claim("a", ["h"]))["h"]
    await store.claim("b", ["h"])
    notices = await store.withdraw("a", stop_serving=["h"], release=["h"], hold_s=30)
    assert notices == [HostNotice(tenant="b", host="h", why="released")]
    held = (await store.claim("b", ["h"]))["h"]
    assert (held.status, held.owner) == (ClaimStatus.LOST, "a")
    assert held.held_ms is not None
    assert 29_000 < held.held_ms <= 30_000
    assert await store.host_views(["h"]) == {
        "h": HostView(owner="a", serving=frozenset(), held=True)
    }
    # the owner asks again within the grace: its host, with its first claim time
    back = (await store.claim("a", ["h"]))["h"]
    assert (back.status, back.owner_created_at) == (ClaimStatus.OWNED, first.owner_created_at)
    again = (await store.claim("b", ["h"]))["h"]
    assert (again.status, again.held_ms) == (ClaimStatus.LOST, None)
    # a second release of the same hold does not extend it
    await store.withdraw("a", stop_serving=["h"], release=["h"], hold_s=0.3)
    await store.withdraw("a", stop_serving=[], release=["h"], hold_s=30)
    await asyncio.sleep(0.4)
    # the grace is over: the first standing claim ("b") gets the host
    got = (await store.claim("b", ["h"]))["h"]
    assert (got.status, got.owner) == (ClaimStatus.OWNED, "b")


async def test_host_states_and_notices_round_trip(store: RedisTenantStore) -> None:
    assert await store.load_host_states(["t"]) == {}
    await store.save_host_states("t", {"h1": HostState.SERVED, "h2": HostState.LOST})
    await store.save_host_states("u", {"h3": HostState.BLOCKED})
    await store.save_host_states("u", {"h4": HostState.SERVED})
    assert await store.load_host_states(["t", "u", "none"]) == {
        "t": {"h1": HostState.SERVED, "h2": HostState.LOST},
        "u": {"h4": HostState.SERVED},
    }
    start = await store.notices_position()
    assert start == "0-0"
    sent = [HostNotice(tenant="t", host="h1", why="taken"), HostNotice("u", "h4", "released")]
    await store.notify(sent)
    position, got = await store.read_notices(start, block_ms=100)
    assert got == sent
    assert await store.notices_position() == position
    _, none = await store.read_notices(position, block_ms=50)
    assert none == []


async def test_a_claim_may_record_the_tenants_host_states_in_the_same_round_trip(
    store: RedisTenantStore,
) -> None:
    await store.save_host_states("t", {"old": HostState.SERVED})
    claims = await store.claim("t", ["h"], record={"old": HostState.SERVED, "h": HostState.LOST})
    assert claims["h"].status is ClaimStatus.OWNED
    assert await store.load_host_states(["t"]) == {
        "t": {"old": HostState.SERVED, "h": HostState.LOST}
    }
    assert await store.claim("t", [], record={}) == {}
    assert await store.load_host_states(["t"]) == {}


async def test_host_scripts_are_loaded_again_when_the_server_lost_them(
    store: RedisTenantStore, client: aioredis.Redis
) -> None:
    # A script text the server never saw stands for a server that lost its script cache.
    store._claim = client.register_script(f"{CLAIM_HOST_LUA}\n-- {uuid.uuid4().hex}")
    store._host_scripts_loaded = True
    claims = await store.claim("t", ["h"])
    assert claims["h"].status is ClaimStatus.OWNED
    assert store._host_scripts_loaded
