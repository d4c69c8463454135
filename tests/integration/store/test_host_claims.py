"""Host ownership arbitrated in Redis (`RedisHostRegistry`, the Lua scripts;
tests/unit/translator/test_host_arbitration.py runs the same rule in Python): a host belongs
to the first claim of it that still stands, timed by Redis's clock; a later claim never takes
it, concurrent claims leave exactly one owner, a withdrawn claim made again is a new one, a
released host is held for its owner for the grace and then goes to the first standing claim;
only the owner releases."""

from __future__ import annotations

import asyncio
import random
import uuid

import redis.asyncio as aioredis

from ripple_translator.hosts import ClaimStatus, HostNotice, HostState, HostView, from_micros
from ripple_translator.store import RedisHostRegistry
from ripple_translator.store.redis_hosts import CLAIM_HOST_LUA
from tests.waiting import eventually


def _raw(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


async def redis_now(client: aioredis.Redis) -> int:
    seconds, micros = await client.time()
    return int(seconds) * 1_000_000 + int(micros)


async def test_first_claim_owns_and_a_later_claim_loses(
    registry: RedisHostRegistry, client: aioredis.Redis
) -> None:
    before = await redis_now(client)
    claims = await registry.claim("a", ["x.example.com", "y.example.com"])
    after = await redis_now(client)
    assert {c.status for c in claims.values()} == {ClaimStatus.OWNED}
    since = claims["x.example.com"].owner_created_at
    # the claim time is Redis's clock at the claim, not any object's age
    assert from_micros(before) <= since <= from_micros(after)
    lost = await registry.claim("b", ["x.example.com", "z.example.com"])
    x = lost["x.example.com"]
    assert (x.status, x.owner, x.owner_created_at, x.granted, x.held_ms) == (
        ClaimStatus.LOST,
        "a",
        since,
        False,
        None,
    )
    assert lost["z.example.com"].status is ClaimStatus.OWNED
    assert await registry.owners(["x.example.com", "z.example.com", "free"]) == {
        "free": None,
        "x.example.com": "a",
        "z.example.com": "b",
    }
    claimed = await client.hgetall(registry.host_keys("x.example.com")[3])
    assert set(claimed) == {b"a", b"b"}
    assert int(claimed[b"a"]) < int(claimed[b"b"])


async def test_a_later_claim_never_takes_the_host_and_keeps_its_first_time(
    registry: RedisHostRegistry, client: aioredis.Redis
) -> None:
    await registry.claim("owner", ["h"])
    first = (await registry.claim("thief", ["h"]))["h"]
    claims_key = registry.host_keys("h")[3]
    thief_time = await client.hget(claims_key, "thief")
    for _ in range(3):
        again = (await registry.claim("thief", ["h"]))["h"]
        assert (again.status, again.owner) == (ClaimStatus.LOST, "owner")
    assert first.status is ClaimStatus.LOST
    assert await client.hget(claims_key, "thief") == thief_time
    # even a recorded claim time before the owner's (old data, a clock step) takes nothing
    await client.hset(claims_key, "thief", "1")
    assert (await registry.claim("thief", ["h"]))["h"].owner == "owner"


async def test_owner_reclaiming_is_idempotent(registry: RedisHostRegistry) -> None:
    first = (await registry.claim("a", ["h"]))["h"]
    claim = (await registry.claim("a", ["h"]))["h"]
    assert (claim.status, claim.owner, claim.owner_created_at, claim.promoted) == (
        ClaimStatus.OWNED,
        "a",
        first.owner_created_at,
        None,
    )


async def test_concurrent_claims_leave_exactly_one_owner_the_first_standing_claim(
    registry: RedisHostRegistry, client: aioredis.Redis
) -> None:
    hosts = [f"h{i}.example.com" for i in range(20)]
    tenants = [f"tenant-{i:02d}" for i in range(30)]
    random.Random(7).shuffle(tenants)
    results = await asyncio.gather(*(registry.claim(t, hosts) for t in tenants))
    owners = await registry.owners(hosts)
    for host in hosts:
        raw = await client.hgetall(registry.host_keys(host)[3])
        claimed = {_raw(t): int(c) for t, c in raw.items()}
        assert len(claimed) == len(tenants)
        first = min(claimed, key=lambda t: (claimed[t], t))  # bytewise on ties
        assert owners[host] == first.decode()
        granted = [t for t, r in zip(tenants, results, strict=True) if r[host].granted]
        assert granted == [owners[host]]
        assert {r[host].owner for r in results} == {owners[host]}


async def test_equal_claim_times_go_to_the_bytewise_smaller_tenant(
    registry: RedisHostRegistry, client: aioredis.Redis
) -> None:
    # Redis's clock never repeats between two scripts here, so equal times are written
    _, _, _, claims = registry.host_keys("h")
    await client.hset(claims, mapping={"b": "5", "a": "5", "B": "5"})
    got = (await registry.claim("c", ["h"]))["h"]
    # bytewise: "B" (0x42) before "a" (0x61), whatever the server's locale
    assert (got.status, got.owner, got.promoted) == (ClaimStatus.LOST, "B", "B")


async def test_release_frees_only_the_owners_hosts(registry: RedisHostRegistry) -> None:
    await registry.claim("a", ["h1", "h2"])
    await registry.claim("b", ["h3"])
    assert await registry.withdraw("b", stop_serving=[], release=["h1", "h3", "never"]) == []
    assert await registry.owners(["h1", "h3", "never"]) == {"h1": "a", "h3": None, "never": None}
    assert await registry.withdraw("a", stop_serving=[], release=["h1"]) == []
    assert await registry.owners(["h1"]) == {"h1": None}
    assert (await registry.claim("c", ["h1"]))["h1"].status is ClaimStatus.OWNED
    assert (await registry.claim("c", ["h2"]))["h2"].owner == "a"


async def test_a_granted_claim_reports_a_tenant_still_serving_until_it_withdraws(
    registry: RedisHostRegistry, client: aioredis.Redis
) -> None:
    _, serving, _, _ = registry.host_keys("h")
    # "old" still counted as serving (e.g. written by an older release's takeover)
    await client.sadd(serving, "old")
    got = (await registry.claim("new", ["h"]))["h"]
    assert (got.status, got.others, got.servable) == (ClaimStatus.OWNED, ("old",), False)
    notices = await registry.withdraw("old", stop_serving=["h"], release=[])
    assert [(n.tenant, n.host, n.why) for n in notices] == [("new", "h", "withdrawn")]
    again = (await registry.claim("new", ["h"]))["h"]
    assert (again.status, again.others, again.servable) == (ClaimStatus.OWNED, (), True)
    assert await registry.host_views(["h", "free"]) == {
        "h": HostView(owner="new", serving=frozenset({"new"})),
        "free": HostView(owner=None, serving=frozenset()),
    }


async def test_a_release_hands_the_host_to_the_first_standing_claim(
    registry: RedisHostRegistry,
) -> None:
    await registry.claim("a", ["h"])
    await registry.claim("b", ["h"])
    await registry.claim("c", ["h"])
    notices = await registry.withdraw("a", stop_serving=[], release=["h"])
    assert sorted((n.tenant, n.why) for n in notices) == [("b", "released"), ("c", "released")]
    assert (await registry.owners(["h"]))["h"] is None
    # "c" is woken first, but "b" claimed first: "b" becomes the owner and is to be told
    lost = (await registry.claim("c", ["h"]))["h"]
    assert (lost.status, lost.owner, lost.promoted) == (ClaimStatus.LOST, "b", "b")
    assert (await registry.claim("b", ["h"]))["h"].status is ClaimStatus.OWNED
    # a non-owner's release frees nothing
    assert await registry.withdraw("z", stop_serving=[], release=["h"]) == []
    assert await registry.withdraw("c", stop_serving=["h"], release=[]) == []
    assert (await registry.owners(["h"]))["h"] == "b"


async def test_a_withdrawn_claim_made_again_is_a_new_claim(registry: RedisHostRegistry) -> None:
    await registry.claim("a", ["h"])
    await registry.claim("b", ["h"])
    await registry.claim("c", ["h"])
    # "b" stops asking for the host, then asks again: it is now behind "c"
    assert await registry.withdraw("b", stop_serving=["h"], release=["h"]) == []
    await registry.claim("b", ["h"])
    await registry.withdraw("a", stop_serving=[], release=["h"])
    lost = (await registry.claim("b", ["h"]))["h"]
    assert (lost.status, lost.owner, lost.promoted) == (ClaimStatus.LOST, "c", "c")


async def test_a_released_host_is_held_for_its_owner_for_the_grace(
    registry: RedisHostRegistry,
) -> None:
    first = (await registry.claim("a", ["h"]))["h"]
    await registry.claim("b", ["h"])
    notices = await registry.withdraw("a", stop_serving=["h"], release=["h"], hold_s=30)
    assert notices == [HostNotice(tenant="b", host="h", why="released")]
    held = (await registry.claim("b", ["h"]))["h"]
    assert (held.status, held.owner) == (ClaimStatus.LOST, "a")
    assert held.held_ms is not None
    assert 29_000 < held.held_ms <= 30_000
    assert await registry.host_views(["h"]) == {
        "h": HostView(owner="a", serving=frozenset(), held=True)
    }
    # the owner asks again within the grace: its host, with its first claim time
    back = (await registry.claim("a", ["h"]))["h"]
    assert (back.status, back.owner_created_at) == (ClaimStatus.OWNED, first.owner_created_at)
    again = (await registry.claim("b", ["h"]))["h"]
    assert (again.status, again.held_ms) == (ClaimStatus.LOST, None)
    # a second release of the same hold does not extend it
    await registry.withdraw("a", stop_serving=["h"], release=["h"], hold_s=0.3)
    await registry.withdraw("a", stop_serving=[], release=["h"], hold_s=30)
    await eventually(
        lambda: registry.owners(["h"]),
        until=lambda owners: owners["h"] is None,
        within_s=5,
        what="the 0.3 s hold of h over (not extended to 30 s)",
    )
    # the grace is over: the first standing claim ("b") gets the host
    got = (await registry.claim("b", ["h"]))["h"]
    assert (got.status, got.owner) == (ClaimStatus.OWNED, "b")


async def test_host_states_and_notices_round_trip(registry: RedisHostRegistry) -> None:
    assert await registry.load_host_states(["t"]) == {}
    await registry.save_host_states("t", {"h1": HostState.SERVED, "h2": HostState.LOST})
    await registry.save_host_states("u", {"h3": HostState.BLOCKED})
    await registry.save_host_states("u", {"h4": HostState.SERVED})
    assert await registry.load_host_states(["t", "u", "none"]) == {
        "t": {"h1": HostState.SERVED, "h2": HostState.LOST},
        "u": {"h4": HostState.SERVED},
    }
    start = await registry.notices_position()
    assert start == "0-0"
    sent = [HostNotice(tenant="t", host="h1", why="taken"), HostNotice("u", "h4", "released")]
    await registry.notify(sent)
    position, got = await registry.read_notices(start, block_ms=100)
    assert got == sent
    assert await registry.notices_position() == position
    _, none = await registry.read_notices(position, block_ms=50)
    assert none == []


async def test_a_claim_may_record_the_tenants_host_states_in_the_same_round_trip(
    registry: RedisHostRegistry,
) -> None:
    await registry.save_host_states("t", {"old": HostState.SERVED})
    claims = await registry.claim("t", ["h"], record={"old": HostState.SERVED, "h": HostState.LOST})
    assert claims["h"].status is ClaimStatus.OWNED
    assert await registry.load_host_states(["t"]) == {
        "t": {"old": HostState.SERVED, "h": HostState.LOST}
    }
    assert await registry.claim("t", [], record={}) == {}
    assert await registry.load_host_states(["t"]) == {}


async def test_host_scripts_are_loaded_again_when_the_server_lost_them(
    registry: RedisHostRegistry, client: aioredis.Redis
) -> None:
    # A script text the server never saw stands for a server that lost its script cache.
    registry._claim = client.register_script(f"{CLAIM_HOST_LUA}\n-- {uuid.uuid4().hex}")
    registry._scripts_loaded = True
    claims = await registry.claim("t", ["h"])
    assert claims["h"].status is ClaimStatus.OWNED
    assert registry._scripts_loaded
