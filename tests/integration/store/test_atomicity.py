"""No reader ever sees half a tenant version: while a writer rewrites every resource of a
tenant per version (bodies name their version), atomic reads (MULTI, and the xds side's load
script) always find every body equal to the stored version."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from ripple_common.resources import Resource, TypeUrl
from ripple_common.store_contract import LOAD_TENANT_LUA, parse_tenant_state
from ripple_translator.store import KafkaOffset, KeyLayout, RedisTenantStore

CDS, RDS = TypeUrl.CLUSTER, TypeUrl.ROUTE
NAMES = 150


async def test_readers_never_see_a_half_written_version(
    store: RedisTenantStore, client: aioredis.Redis, layout: KeyLayout
) -> None:
    versions = 40
    done = asyncio.Event()

    async def writer() -> None:
        try:
            for v in range(versions):
                body = f"v{v + 1}".encode()
                upserts = [Resource(CDS, f"c{i}", body) for i in range(NAMES)]
                upserts += [Resource(RDS, f"r{i}", body) for i in range(NAMES)]
                await store.write_version(
                    "t1",
                    upserts,
                    [],
                    offset=KafkaOffset(topic="e", partition=0, offset=v),
                    expected_version=v,
                    trace_fields={},
                )
                await asyncio.sleep(0)
        finally:
            done.set()

    async def multi_reader() -> set[int]:
        seen: set[int] = set()
        while not done.is_set():
            async with client.pipeline(transaction=True) as pipe:
                pipe.hget(layout.meta("t1"), "version")
                pipe.hgetall(layout.resources("t1", CDS))
                pipe.hgetall(layout.resources("t1", RDS))
                raw_version, clusters, routes = await pipe.execute()
            version = int(raw_version or 0)
            bodies = set(clusters.values()) | set(routes.values())
            if version:
                assert bodies == {f"v{version}".encode()}, (version, bodies)
                assert len(clusters) == len(routes) == NAMES
            else:
                assert bodies == set()
            seen.add(version)
        return seen

    async def script_reader() -> set[int]:
        load = client.register_script(LOAD_TENANT_LUA)
        seen: set[int] = set()
        while not done.is_set():
            state = parse_tenant_state("t1", await load(keys=layout.tenant_keys("t1")))
            assert {r.body for r in state.resources} <= {f"v{state.version}".encode()}
            assert len(state.resources) in (0, 2 * NAMES)
            seen.add(state.version)
        return seen

    _, multi_seen, script_seen = await asyncio.gather(writer(), multi_reader(), script_reader())
    # the readers really ran during the writes (else the test proves nothing)
    assert len(multi_seen) > 3
    assert len(script_seen) > 3
