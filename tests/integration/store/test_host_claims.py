"""Host ownership arbitrated in Redis: the older claim wins whatever the order, concurrent
claims leave exactly one owner, losers learn the owner, only the owner releases."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

from ripple_translator.store import ClaimStatus, HostNotice, HostState, HostView, RedisTenantStore
from ripple_translator.store.redis_store import CLAIM_HOST_LUA

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def test_first_claim_owns_and_a_younger_claim_loses(store: RedisTenantStore) -> None:
    claims = await store.claim_hosts("a", ["x.example.com", "y.example.com"], at(0))
    assert {c.status for c in claims.values()} == {ClaimStatus.OWNED}
    lost = await store.claim_hosts("b", ["x.example.com", "z.example.com"], at(5))
    x = lost["x.example.com"]
    assert (x.status, x.owner, x.owner_created_at, x.granted) == (
        ClaimStatus.LOST,
        "a",
        at(0),
        False,
    )
    assert lost["z.example.com"].status is ClaimStatus.OWNED
    assert await store.owners(["x.example.com", "z.example.com", "free"]) == {
        "free": None,
        "x.example.com": "a",
        "z.example.com": "b",
    }


async def test_an_older_claim_takes_over_and_names_the_previous_owner(
    store: RedisTenantStore,
) -> None:
    await store.claim_hosts("young", ["h"], at(10))
    taken = (await store.claim_hosts("old", ["h"], at(1)))["h"]
    assert (taken.status, taken.owner, taken.previous) == (ClaimStatus.TAKEN, "old", "young")
    again = (await store.claim_hosts("young", ["h"], at(10)))["h"]
    assert (again.status, again.owner) == (ClaimStatus.LOST, "old")


async def test_equal_times_break_ties_by_tenant_name(store: RedisTenantStore) -> None:
    await store.claim_hosts("b", ["h"], at(0))
    assert (await store.claim_hosts("a", ["h"], at(0)))["h"].status is ClaimStatus.TAKEN
    assert (await store.claim_hosts("c", ["h"], at(0)))["h"].status is ClaimStatus.LOST
    # bytewise order: "B" (0x42) < "a" (0x61), whatever the server's locale
    assert (await store.claim_hosts("B", ["h"], at(0)))["h"].status is ClaimStatus.TAKEN


async def test_owner_reclaiming_is_idempotent(store: RedisTenantStore) -> None:
    await store.claim_hosts("a", ["h"], at(0))
    claim = (await store.claim_hosts("a", ["h"], at(0)))["h"]
    assert (claim.status, claim.owner, claim.previous) == (ClaimStatus.OWNED, "a", None)


async def test_concurrent_claims_leave_exactly_one_owner_the_oldest(
    store: RedisTenantStore,
) -> None:
    rng = random.Random(7)
    hosts = [f"h{i}.example.com" for i in range(20)]
    tenants = [(f"tenant-{i:02d}", at(rng.randrange(0, 1000))) for i in range(30)]
    results = await asyncio.gather(*(store.claim_hosts(t, hosts, c) for t, c in tenants))
    oldest = min(tenants, key=lambda tc: (tc[1], tc[0].encode()))[0]
    assert set((await store.owners(hosts)).values()) == {oldest}
    # every claimer learned an answer; the oldest was granted every host
    by_tenant = dict(zip((t for t, _ in tenants), results, strict=True))
    assert all(c.granted for c in by_tenant[oldest].values())
    for _tenant, claims in by_tenant.items():
        assert set(claims) == set(hosts)
    # a fresh claim from any loser now loses to the oldest, naming it
    loser, created = next(tc for tc in tenants if tc[0] != oldest)
    final = await store.claim_hosts(loser, hosts[:1], created)
    assert (final[hosts[0]].status, final[hosts[0]].owner) == (ClaimStatus.LOST, oldest)


async def test_concurrent_claims_in_many_rounds(store: RedisTenantStore) -> None:
    for round_ in range(20):
        host = f"race-{round_}"
        contenders = [(f"t{i}", at(i % 3)) for i in range(8)]
        random.Random(round_).shuffle(contenders)
        await asyncio.gather(*(store.claim_hosts(t, [host], c) for t, c in contenders))
        assert (await store.owners([host]))[host] == "t0"


async def test_release_frees_only_the_owners_hosts(store: RedisTenantStore) -> None:
    await store.claim_hosts("a", ["h1", "h2"], at(0))
    await store.claim_hosts("b", ["h3"], at(0))
    assert await store.release_hosts("b", ["h1", "h3", "never"]) == {"h3"}
    assert await store.owners(["h1", "h3"]) == {"h1": "a", "h3": None}
    assert await store.release_hosts("a", ["h1"]) == {"h1"}
    # a younger tenant may claim a released host
    assert (await store.claim_hosts("c", ["h1"], at(99)))["h1"].status is ClaimStatus.OWNED
    assert (await store.claim_hosts("c", ["h2"], at(99)))["h2"].owner == "a"


async def test_a_takeover_reports_the_tenant_still_serving_until_it_withdraws(
    store: RedisTenantStore,
) -> None:
    young = (await store.claim("young", {"h": at(10)}))["h"]
    assert (young.status, young.others, young.servable) == (ClaimStatus.OWNED, (), True)
    taken = (await store.claim("old", {"h": at(1)}))["h"]
    assert (taken.status, taken.previous, taken.others) == (ClaimStatus.TAKEN, "young", ("young",))
    assert not taken.servable
    lost = (await store.claim("young", {"h": at(10)}))["h"]
    assert lost.status is ClaimStatus.LOST
    # the loser withdraws after writing a version without the scope: the owner is told
    notices = await store.withdraw("young", stop_serving=["h"], release=[])
    assert [(n.tenant, n.host, n.why) for n in notices] == [("old", "h", "withdrawn")]
    again = (await store.claim("old", {"h": at(1)}))["h"]
    assert (again.status, again.others, again.servable) == (ClaimStatus.OWNED, (), True)
    assert await store.host_views(["h", "free"]) == {
        "h": HostView(owner="old", serving=frozenset({"old"})),
        "free": HostView(owner=None, serving=frozenset()),
    }


async def test_a_release_hands_the_host_to_the_waiting_claimants(store: RedisTenantStore) -> None:
    await store.claim("a", {"h": at(0)})
    await store.claim("b", {"h": at(5)})
    await store.claim("c", {"h": at(6)})
    notices = await store.withdraw("a", stop_serving=[], release=["h"])
    assert sorted((n.tenant, n.why) for n in notices) == [("b", "released"), ("c", "released")]
    assert (await store.owners(["h"]))["h"] is None
    assert (await store.claim("c", {"h": at(6)}))["h"].status is ClaimStatus.OWNED
    assert (await store.claim("b", {"h": at(5)}))["h"].status is ClaimStatus.TAKEN
    # a non-owner's release frees nothing; the owner hears of it only from a tenant that
    # was still counted as serving the host ("c", displaced by "b")
    assert await store.withdraw("z", stop_serving=[], release=["h"]) == []
    assert await store.withdraw("c", stop_serving=[], release=["h"]) == [
        HostNotice(tenant="b", host="h", why="withdrawn")
    ]
    assert await store.withdraw("c", stop_serving=["h"], release=[]) == []
    assert (await store.owners(["h"]))["h"] == "b"


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
    claims = await store.claim(
        "t", {"h": at(0)}, record={"old": HostState.SERVED, "h": HostState.LOST}
    )
    assert claims["h"].status is ClaimStatus.OWNED
    assert await store.load_host_states(["t"]) == {
        "t": {"old": HostState.SERVED, "h": HostState.LOST}
    }
    assert await store.claim("t", {}, record={}) == {}
    assert await store.load_host_states(["t"]) == {}


async def test_host_scripts_are_loaded_again_when_the_server_lost_them(
    store: RedisTenantStore, client: aioredis.Redis
) -> None:
    # A script text the server never saw stands for a server that lost its script cache.
    store._claim = client.register_script(f"{CLAIM_HOST_LUA}\n-- {uuid.uuid4().hex}")
    store._host_scripts_loaded = True
    claims = await store.claim("t", {"h": at(0)})
    assert claims["h"].status is ClaimStatus.OWNED
    assert store._host_scripts_loaded
