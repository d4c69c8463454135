"""Batched loads and the bounded connection pool on the stack's Redis: `RedisTenantLoader`
reads what the per-tenant calls read, in one pipeline; the translator's Redis client waits for
a free connection instead of failing when more calls run than the pool holds."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from ripple_common.redis_client import RedisClient
from ripple_translator.partition_state import JsonObject, ObjectKey, TenantObjects
from ripple_translator.store import KafkaOffset, KeyLayout, RedisTenantStore
from ripple_translator.store.loader import RedisTenantLoader
from ripple_translator.translate import TranslateOptions
from ripple_translator.writer import plan_write
from tests.conftest import StackEnv
from tests.unit.translator_service.support import ingress, ingress_class, service


async def test_batched_loads_equal_the_per_tenant_loads(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    layout = KeyLayout(prefix=prefix)
    store = RedisTenantStore(redis_client, layout=layout)
    written = [f"t{i}" for i in range(5)]
    for i, tenant in enumerate(written):
        objects: dict[ObjectKey, JsonObject] = {
            ("Service", tenant, "web"): service(tenant),
            ("Ingress", tenant, "web"): ingress(tenant, "web", f"{tenant}.example.com"),
        }
        plan = plan_write(
            TenantObjects(tenant, objects),
            changed=objects,
            classes=(ingress_class(),),
            resource_versions={},
            options=TranslateOptions(),
        )
        assert plan.diff.upserts
        offset = KafkaOffset(topic="e", partition=i % 2, offset=10 + i)
        await store.write_version(
            tenant,
            plan.diff.upserts,
            plan.diff.removals,
            offset=offset,
            expected_version=0,
            trace_fields={},
            inputs=plan.inputs,
        )
    tenants = [*written, "never-written"]
    loader = RedisTenantLoader(redis_client, layout=layout)
    batched = await loader.load_tenants(tenants)
    one_by_one = [(await store.load_checkpoint(t), await store.load_inputs(t)) for t in tenants]
    assert batched == one_by_one
    assert [cp.tenant for cp, _ in batched] == tenants
    assert batched[0][0].version == 1
    assert batched[0][0].resource_versions
    assert batched[-1][0].version == 0
    assert batched[-1][1].offset is None
    assert await loader.load_tenants([]) == []


async def test_the_client_waits_for_a_free_connection(stack: StackEnv) -> None:
    redis = RedisClient(stack["RIPPLE_REDIS_URL"], max_connections=2, pool_timeout_s=10)
    await redis.start()
    try:
        replies = await asyncio.gather(*(redis.client.ping() for _ in range(50)))
        assert all(replies)
        pool = redis.client.connection_pool
        assert pool.max_connections == 2
    finally:
        await redis.stop()
