"""The translator's stored inputs on the stack's Redis: a tenant's inputs are written by its
version script (`RedisTenantStore.write_version`, one slot with the version), round-trip, and a
stale writer cannot move them backwards; partition checkpoints (`RedisPartitionStore`)
round-trip."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from ripple_common.resources import Resource, TypeUrl
from ripple_translator.store import (
    InputChanges,
    KafkaOffset,
    KeyLayout,
    PartitionCheckpoint,
    RedisPartitionStore,
    RedisTenantStore,
)
from tests.conftest import StackEnv


@pytest.fixture
async def client(stack: StackEnv) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(stack["RIPPLE_REDIS_URL"], decode_responses=False)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def layout(client: aioredis.Redis) -> AsyncIterator[KeyLayout]:
    prefix = f"it-in-{uuid.uuid4().hex[:8]}"
    try:
        yield KeyLayout(prefix=prefix)
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)


@pytest.fixture
def inputs(client: aioredis.Redis, layout: KeyLayout) -> RedisPartitionStore:
    return RedisPartitionStore(client, layout=layout)


async def test_inputs_are_written_with_the_version_and_fenced(
    client: aioredis.Redis, layout: KeyLayout
) -> None:
    store = RedisTenantStore(client, layout=layout)
    assert (await store.load_inputs("t1")).offset is None
    one = {"kind": "Ingress", "metadata": {"name": "one", "namespace": "t1"}}
    two = {"kind": "Service", "metadata": {"name": "two", "namespace": "t1"}}
    at = KafkaOffset(topic="e", partition=0, offset=5)
    both = InputChanges(upserts={("Ingress", "t1", "one"): one, ("Service", "t1", "two"): two})
    resource = Resource(TypeUrl.CLUSTER, "t1-c", b"c1")
    assert await store.write_version(
        "t1", [resource], [], offset=at, expected_version=0, trace_fields={}, inputs=both
    ) == 1  # fmt: skip
    assert (await store.load_inputs("t1")).offset == at
    # Inputs alone (an empty resource diff): no new version, the inputs move on.
    later = KafkaOffset(topic="e", partition=0, offset=9)
    gone = InputChanges(removals=(("Service", "t1", "two"),))
    assert await store.write_version(
        "t1", [], [], offset=later, expected_version=1, trace_fields={}, inputs=gone
    ) == 1  # fmt: skip
    # A stale writer (an earlier offset of the same partition) leaves the inputs alone.
    again = InputChanges(upserts={("Service", "t1", "two"): two})
    await store.write_version(
        "t1", [], [], offset=at, expected_version=1, trace_fields={}, inputs=again
    )
    loaded = await store.load_inputs("t1")
    assert loaded.offset == later
    assert dict(loaded.objects) == {("Ingress", "t1", "one"): one}
    assert layout.inputs("t1").endswith(":{t1}:input")
    # One slot with the version: the script may write both (Redis Cluster refuses otherwise).
    assert key_slot(layout.inputs("t1").encode()) == key_slot(layout.meta("t1").encode())


async def test_partition_checkpoint_round_trip(inputs: RedisPartitionStore) -> None:
    empty = await inputs.load_partition("e", 3)
    assert empty == PartitionCheckpoint(topic="e", partition=3)
    klass = {"kind": "IngressClass", "metadata": {"name": "ripple"}}
    await inputs.save_partition(
        PartitionCheckpoint(
            topic="e",
            partition=3,
            classes_offset=7,
            classes={"ripple": klass},
            relists=(("Ingress", 4),),
        )
    )
    await inputs.add_tenant("e", 3, "t1")
    await inputs.add_tenant("e", 3, "t2")
    loaded = await inputs.load_partition("e", 3)
    assert loaded.classes_offset == 7
    assert dict(loaded.classes) == {"ripple": klass}
    assert loaded.relists == (("Ingress", 4),)
    assert loaded.tenants == {"t1", "t2"}
    assert (await inputs.load_partition("e", 4)).tenants == frozenset()
