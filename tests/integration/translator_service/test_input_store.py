"""`RedisInputStore` on the stack's Redis: inputs round-trip, a stale writer cannot move a
tenant's inputs backwards, and partition checkpoints round-trip."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from ripple_translator.inputs import PartitionCheckpoint, RedisInputStore
from ripple_translator.store import KafkaOffset, KeyLayout
from tests.conftest import StackEnv


@pytest.fixture
async def inputs(stack: StackEnv) -> AsyncIterator[RedisInputStore]:
    client = aioredis.from_url(stack["RIPPLE_REDIS_URL"], decode_responses=False)
    prefix = f"it-in-{uuid.uuid4().hex[:8]}"
    try:
        yield RedisInputStore(client, layout=KeyLayout(prefix=prefix))
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_inputs_round_trip_and_fencing(inputs: RedisInputStore) -> None:
    assert (await inputs.load_inputs("t1")).offset is None
    one = {"kind": "Ingress", "metadata": {"name": "one", "namespace": "t1"}}
    two = {"kind": "Service", "metadata": {"name": "two", "namespace": "t1"}}
    at = KafkaOffset(topic="e", partition=0, offset=5)
    assert await inputs.write_inputs(
        "t1", {("Ingress", "t1", "one"): one, ("Service", "t1", "two"): two}, [], offset=at
    )
    later = KafkaOffset(topic="e", partition=0, offset=9)
    assert await inputs.write_inputs("t1", {}, [("Service", "t1", "two")], offset=later)
    # A stale writer (an earlier offset of the same partition) is refused.
    assert not await inputs.write_inputs("t1", {("Service", "t1", "two"): two}, [], offset=at)
    loaded = await inputs.load_inputs("t1")
    assert loaded.offset == later
    assert dict(loaded.objects) == {("Ingress", "t1", "one"): one}
    assert inputs.input_key("t1").endswith(":{t1}:input")


async def test_partition_checkpoint_round_trip(inputs: RedisInputStore) -> None:
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
