"""Every Redis call path of the translator and the xds servers on a real Redis Cluster (the HA
profile), through the one client factory: tenant writes (one slot), host claims (one host's
slot), pipelines across slots, MULTI on one slot, the change stream followed with XREAD, and
scripts in pipelines on a node whose script cache is empty (as after a failover)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ClusterDownError, SlotNotCoveredError, TryAgainError

from ripple_common.redis_client import is_cluster, redis_client
from ripple_common.resources import Resource, TypeUrl
from ripple_common.store_contract import KeyLayout
from ripple_translator.hosts import ClaimStatus, HostNotice, HostState
from ripple_translator.store import (
    InputChanges,
    KafkaOffset,
    RedisHostRegistry,
    RedisTenantStore,
)
from ripple_translator.store.inputs import RedisPartitionStore
from ripple_translator.store.loader import RedisTenantLoader
from ripple_xds.snapshot import SnapshotCache
from ripple_xds.source import RedisSource
from tests.integration.ha.conftest import HaStack

CDS, RDS = TypeUrl.CLUSTER, TypeUrl.ROUTE


def at(offset: int) -> KafkaOffset:
    return KafkaOffset(topic="ripple.events", partition=0, offset=offset)


@pytest.fixture
async def cluster(ha_stack: HaStack) -> AsyncIterator[aioredis.Redis]:
    client = redis_client(ha_stack.redis_url)
    assert is_cluster(client)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def layout(cluster: aioredis.Redis) -> AsyncIterator[KeyLayout]:
    value = KeyLayout(prefix=f"ha-{uuid.uuid4().hex[:10]}")
    try:
        yield value
    finally:
        # SCAN on a cluster goes to every master (redis-py's cluster scan_iter).
        keys = [k async for k in cluster.scan_iter(match=f"{value.prefix}*", count=1000)]
        for key in keys:
            await cluster.delete(key)


async def test_tenant_versions_hosts_and_notices_on_a_cluster(
    cluster: aioredis.Redis, layout: KeyLayout
) -> None:
    store = RedisTenantStore(cluster, layout=layout)
    registry = RedisHostRegistry(cluster, layout=layout)
    tenants = [f"t{i}" for i in range(12)]  # spread over the three masters' slots
    for i, tenant in enumerate(tenants):
        res = [Resource(CDS, f"{tenant}-c", b"c1"), Resource(RDS, f"{tenant}-r", b"r1")]
        assert await store.write_version(
            tenant, res, [], offset=at(i + 1), expected_version=0, trace_fields={}
        ) == 1  # fmt: skip
    # Fencing: a stale expected version writes nothing.
    with pytest.raises(Exception, match="expected 0"):
        await store.write_version(
            "t0", [Resource(CDS, "x", b"x")], [], offset=at(100), expected_version=0,
            trace_fields={},
        )  # fmt: skip
    checkpoint = await store.load_checkpoint("t3")
    assert (checkpoint.version, checkpoint.offset) == (1, at(4))

    # Host claims (one script per host slot, pipelined across slots) and the host states
    # written in the same round trip.
    claims = await registry.claim(
        "t0", ["a.example", "b.example", "c.example"], record={"a.example": HostState.SERVED}
    )
    assert {h: c.status for h, c in claims.items()} == dict.fromkeys(claims, ClaimStatus.OWNED)
    lost = await registry.claim("t1", ["a.example"])
    assert lost["a.example"].status is ClaimStatus.LOST
    await registry.save_host_states("t1", {"a.example": HostState.LOST})  # MULTI on one slot
    states = await registry.load_host_states(["t0", "t1"])
    assert states == {"t0": {"a.example": HostState.SERVED}, "t1": {"a.example": HostState.LOST}}
    notices = await registry.withdraw("t0", stop_serving=[], release=["a.example"])
    assert notices == [HostNotice(tenant="t1", host="a.example", why="released")]
    await registry.notify(notices)
    _, read = await registry.read_notices("0-0", block_ms=100)
    assert read == notices
    assert (await registry.owners(["a.example"]))["a.example"] is None

    # The translator's inputs (written by the version script: one slot with the version),
    # partition store and loader (scripts in a cluster pipeline).
    one = {"kind": "Service", "metadata": {"name": "web", "namespace": "t2"}}
    changes = InputChanges(upserts={("Service", "t2", "web"): one})
    v2 = await store.load_checkpoint("t2")
    await store.write_version(
        "t2", [], [], offset=at(3), expected_version=v2.version, trace_fields={}, inputs=changes
    )
    assert (await store.load_inputs("t2")).objects == {("Service", "t2", "web"): one}
    partitions = RedisPartitionStore(cluster, layout=layout)
    await partitions.add_tenant("ripple.events", 0, "t2")
    assert "t2" in (await partitions.load_partition("ripple.events", 0)).tenants
    loaded = await RedisTenantLoader(cluster, layout=layout).load_tenants(tenants)
    assert [c.tenant for c, _ in loaded] == tenants
    assert loaded[2][1].offset == at(3)


async def test_xds_source_loads_and_follows_a_cluster(
    cluster: aioredis.Redis, layout: KeyLayout
) -> None:
    store = RedisTenantStore(cluster, layout=layout)
    for i in range(6):
        await store.write_version(
            f"t{i}", [Resource(CDS, f"c{i}", b"v1")], [], offset=at(1), expected_version=0,
            trace_fields={},
        )  # fmt: skip
    cache = SnapshotCache()
    source = RedisSource(cluster, cache, layout=layout, block_ms=100)
    await source.load()
    assert sorted(cache.names(CDS)) == [f"c{i}" for i in range(6)]
    await store.write_version(
        "t4", [Resource(CDS, "c4", b"v2"), Resource(RDS, "r4", b"r")], [], offset=at(2),
        expected_version=1, trace_fields={},
    )  # fmt: skip
    handled = 0
    while n := await source.step(block_ms=100):  # XINFO + XREAD in a MULTI, then fetch
        handled += n
    assert handled == 1
    entry = cache.get(CDS, "c4")
    assert entry is not None
    assert entry.resource.body == b"v2"
    assert source.tenant_version("t4") == 2


async def test_scripts_in_pipelines_survive_an_empty_script_cache(
    cluster: aioredis.Redis, layout: KeyLayout
) -> None:
    """A promoted replica has no scripts: the pipelines of xds and of the translator's loader
    must load them (redis-py's cluster pipeline does not) and not repeat their other calls."""
    store = RedisTenantStore(cluster, layout=layout)
    for i in range(6):
        await store.write_version(
            f"t{i}", [Resource(CDS, f"c{i}", b"v1")], [], offset=at(1), expected_version=0,
            trace_fields={},
        )  # fmt: skip
    cache = SnapshotCache()
    source = RedisSource(cluster, cache, layout=layout, block_ms=100)
    await cluster.script_flush()  # every master
    await source.load()
    assert len(cache.names(CDS)) == 6
    await cluster.script_flush()
    loaded = await RedisTenantLoader(cluster, layout=layout).load_tenants(
        [f"t{i}" for i in range(6)]
    )
    assert [c.version for c, _ in loaded] == [1] * 6
    await cluster.script_flush()
    claims = await RedisHostRegistry(cluster, layout=layout).claim("t0", ["x.example", "y.example"])
    assert len(claims) == 2


async def test_a_new_client_may_start_with_a_transaction(
    ha_stack: HaStack, layout: KeyLayout
) -> None:
    """xds starts with the stream's MULTI snapshot: the slot map is learnt first."""
    fresh = redis_client(ha_stack.redis_url)
    try:
        source = RedisSource(fresh, SnapshotCache(), layout=layout, block_ms=100)
        await source.load()
        assert source.ready.is_set()
    finally:
        await fresh.aclose()


async def test_xds_follow_outlives_a_failovers_errors(
    cluster: aioredis.Redis, layout: KeyLayout
) -> None:
    """While a master fails over, the cluster answers CLUSTERDOWN and a slot has no master:
    the follow loop waits and goes on (the fault test saw it die on CLUSTERDOWN)."""
    source = RedisSource(cluster, SnapshotCache(), layout=layout, block_ms=50, retry_s=0.01)
    await source.load()
    real = source.step
    failures: list[Exception] = [
        ClusterDownError("CLUSTERDOWN The cluster is down"),
        SlotNotCoveredError("slot 1234 is not covered"),
        TryAgainError("TRYAGAIN"),
    ]
    calls = 0

    async def flaky(*, block_ms: int | None = None) -> int:
        nonlocal calls
        calls += 1
        if failures:
            raise failures.pop(0)
        if calls > 5:
            source.stop()
        return await real(block_ms=block_ms)

    source.step = flaky  # type: ignore[method-assign]
    await asyncio.wait_for(source.follow(), 10)
    assert source.stats.errors == 3
