"""The translator's side against the stack's Redis: versioned writes, checkpoints, fencing,
the change entry, stream trimming. Behaviour shared with the fake store runs on both."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
import redis.asyncio as aioredis

from ripple_common.resources import Resource, TypeUrl
from ripple_translator.store import (
    AnnounceError,
    ChangeEntry,
    KafkaOffset,
    KeyLayout,
    RedisTenantStore,
    TenantStore,
    VersionConflictError,
)
from tests.unit.store.fake_store import FakeTenantStore

CDS, RDS, SDS = TypeUrl.CLUSTER, TypeUrl.ROUTE, TypeUrl.SECRET
TRACE = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


def r(type_url: TypeUrl, name: str, body: str = "v1") -> Resource:
    return Resource(type_url, name, f"{name}:{body}".encode())


def off(offset: int) -> KafkaOffset:
    return KafkaOffset(topic="ripple.events", partition=2, offset=offset)


async def write(
    store: TenantStore,
    tenant: str,
    upserts: Sequence[Resource] = (),
    removals: Sequence[tuple[TypeUrl, str]] = (),
    *,
    expected: int,
    offset: int = 1,
) -> int:
    return await store.write_version(
        tenant,
        upserts,
        removals,
        offset=off(offset),
        expected_version=expected,
        trace_fields=TRACE,
    )


async def changes(client: aioredis.Redis, layout: KeyLayout) -> list[ChangeEntry]:
    entries = await client.xrange(layout.changes)
    assert entries is not None
    return [ChangeEntry.decode(fields or {}) for _, fields in entries]


@pytest.fixture(params=["redis", "fake"])
def any_store(request: pytest.FixtureRequest, store: RedisTenantStore) -> TenantStore:
    return store if request.param == "redis" else FakeTenantStore()


async def test_write_then_load_gives_identical_resources(any_store: TenantStore) -> None:
    resources = [r(CDS, "t1-c"), r(RDS, "t1-r"), Resource(SDS, "t1-s", bytes(range(256)))]
    assert await write(any_store, "t1", resources, expected=0, offset=42) == 1
    checkpoint = await any_store.load_checkpoint("t1")
    assert checkpoint.version == 1
    assert checkpoint.offset == off(42)
    assert checkpoint.resource_versions == {(x.type_url, x.name): x.version for x in resources}


async def test_removals_and_upserts_of_a_later_version(any_store: TenantStore) -> None:
    await write(any_store, "t1", [r(CDS, "a"), r(CDS, "b")], expected=0)
    assert await write(any_store, "t1", [r(CDS, "a", "v2")], [(CDS, "b")], expected=1) == 2
    checkpoint = await any_store.load_checkpoint("t1")
    assert checkpoint.resource_versions == {(CDS, "a"): r(CDS, "a", "v2").version}


async def test_empty_diff_writes_nothing_and_returns_the_current_version(
    any_store: TenantStore,
) -> None:
    assert await write(any_store, "t1", expected=0) == 0
    await write(any_store, "t1", [r(CDS, "a")], expected=0, offset=5)
    assert await write(any_store, "t1", expected=1, offset=9) == 1
    checkpoint = await any_store.load_checkpoint("t1")
    assert (checkpoint.version, checkpoint.offset) == (1, off(5))


async def test_fencing_rejects_a_stale_writer(any_store: TenantStore) -> None:
    await write(any_store, "t1", [r(CDS, "a")], expected=0, offset=10)
    await write(any_store, "t1", [r(CDS, "a", "v2")], expected=1, offset=11)  # new owner
    with pytest.raises(VersionConflictError) as info:
        await write(any_store, "t1", [r(CDS, "a", "stale")], [(CDS, "x")], expected=1, offset=7)
    assert (info.value.expected, info.value.actual) == (1, 2)
    with pytest.raises(VersionConflictError):
        await write(any_store, "t1", expected=1)  # even an empty diff tells it
    checkpoint = await any_store.load_checkpoint("t1")
    assert checkpoint.version == 2
    assert checkpoint.offset == off(11)
    assert checkpoint.resource_versions == {(CDS, "a"): r(CDS, "a", "v2").version}


async def test_fenced_write_appends_no_change_entry(
    store: RedisTenantStore, client: aioredis.Redis, layout: KeyLayout
) -> None:
    await write(store, "t1", [r(CDS, "a")], expected=0)
    with pytest.raises(VersionConflictError):
        await write(store, "t1", [r(CDS, "b")], expected=0)
    assert [(e.tenant, e.version) for e in await changes(client, layout)] == [("t1", 1)]


async def test_concurrent_writers_of_one_version_exactly_one_wins(
    store: RedisTenantStore,
) -> None:
    await write(store, "t1", [r(CDS, "base")], expected=0)
    results = await asyncio.gather(
        *(write(store, "t1", [r(CDS, f"w{i}")], expected=1) for i in range(10)),
        return_exceptions=True,
    )
    winners = [x for x in results if x == 2]
    assert len(winners) == 1
    assert all(isinstance(x, VersionConflictError) for x in results if x != 2)
    checkpoint = await store.load_checkpoint("t1")
    assert len(checkpoint.resource_versions) == 2  # base + the winner's only


async def test_invalid_write_is_rejected_before_anything_is_written(
    store: RedisTenantStore,
) -> None:
    with pytest.raises(ValueError, match="twice"):
        await write(store, "t1", [r(CDS, "a")], [(CDS, "a")], expected=0)
    assert (await store.load_checkpoint("t1")).version == 0


async def test_change_entry_names_exactly_the_diff_with_trace_context(
    store: RedisTenantStore, client: aioredis.Redis, layout: KeyLayout
) -> None:
    await write(store, "t1", [r(CDS, "a"), r(RDS, "b")], expected=0)
    await write(store, "t1", [r(RDS, "b", "v2")], [(CDS, "a")], expected=1)
    entries = await changes(client, layout)
    assert entries == [
        ChangeEntry(tenant="t1", version=1, upserts={CDS: ("a",), RDS: ("b",)}, trace=TRACE),
        ChangeEntry(
            tenant="t1", version=2, upserts={RDS: ("b",)}, removals={CDS: ("a",)}, trace=TRACE
        ),
    ]
    assert await client.smembers(layout.tenants) == {b"t1"}


async def test_announce_appends_a_full_entry_at_the_current_version(
    store: RedisTenantStore, client: aioredis.Redis, layout: KeyLayout
) -> None:
    assert await store.announce("t1", trace_fields={}) == 0  # nothing stored: no entry
    await write(store, "t1", [r(CDS, "a")], expected=0)
    assert await store.announce("t1", trace_fields=TRACE) == 1
    assert (await changes(client, layout))[-1] == ChangeEntry(
        tenant="t1", version=1, full=True, trace=TRACE
    )


async def test_stream_is_trimmed_to_about_maxlen(client: aioredis.Redis, layout: KeyLayout) -> None:
    store = RedisTenantStore(client, layout=layout, stream_maxlen=10)
    for version in range(400):
        await write(store, "t1", [r(CDS, "a", str(version))], expected=version)
    length = await client.xlen(layout.changes)
    assert 10 <= length < 400  # approximate: whole stream nodes (100 entries) are dropped


async def test_write_survives_a_failed_announcement(
    client: aioredis.Redis, layout: KeyLayout
) -> None:
    class Failing(RedisTenantStore):
        async def _publish(self, entry: ChangeEntry) -> None:
            raise aioredis.ConnectionError("injected")

    failing = Failing(client, layout=layout)
    with pytest.raises(AnnounceError) as info:
        await write(failing, "t1", [r(CDS, "a")], expected=0)
    assert info.value.version == 1
    assert (await failing.load_checkpoint("t1")).version == 1  # durable regardless
