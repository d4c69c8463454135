"""Per-tenant fairness against the stack's Kafka and Redis (issue #15 point 1): while one tenant
floods (thousands of Ingresses, each of its writes re-translating all of them), neighbours'
single changes are written while the flood is still pending, typically (the median) within a
quarter of one of the flooding tenant's writes (ratios, not absolute times: the machine is
shared). Before
the fix a neighbour's change waited for the flooding tenant's translation in progress (it ran
on the event loop, and so did the Kafka consumer's polls and heartbeats)."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid

import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from structlog.testing import capture_logs

from ripple_common.envelope import Envelope
from ripple_common.lifecycle import Lifecycle
from ripple_translator.app import start_translator
from ripple_translator.store import KeyLayout
from tests.conftest import StackEnv
from tests.integration.translator_service.support import (
    class_envelope,
    eventually,
    loop_settings,
    produce,
)
from tests.unit.translator_service.support import event, ingress, service

FLOOD = "flood"
LOADED = 3000  # the flooding tenant's Ingresses before the neighbours' probes
PROBES = 8


async def send_all(bootstrap: str, topic: str, envelopes: list[Envelope]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        sent = [await producer.send(topic, value=e.to_bytes(), key=e.key) for e in envelopes]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def flood_events(start: int, n: int) -> list[Envelope]:
    return [
        event(FLOOD, ingress(FLOOD, f"i{i:05d}", f"h{i:05d}.flood.example.com"))
        for i in range(start, start + n)
    ]


async def test_neighbours_are_written_within_a_fraction_of_a_flooding_tenants_write(
    stack: StackEnv, redis_client: aioredis.Redis, prefix: str, topic: str
) -> None:
    bootstrap = stack["RIPPLE_KAFKA_BOOTSTRAP"]
    layout = KeyLayout(prefix=prefix)
    group = f"it-fair-{uuid.uuid4().hex[:8]}"
    await produce(bootstrap, topic, [class_envelope(), event(FLOOD, service(FLOOD))])
    await send_all(bootstrap, topic, flood_events(0, LOADED))
    # No pacing: the flooding tenant translates all the time (the worst case for the loop).
    settings = loop_settings(stack, topic=topic, prefix=prefix, group=group, write_pace_factor=0)
    lc = Lifecycle()
    latencies: list[float] = []
    with capture_logs() as logs:
        await start_translator(lc, settings)
        try:

            async def loaded() -> bool:
                raw = await redis_client.hget(layout.meta(FLOOD), "version")
                return raw is not None

            await eventually(loaded, timeout_s=120)
            flooding = asyncio.create_task(keep_flooding(bootstrap, topic))
            began = time.monotonic()
            for p in range(PROBES):
                # Each probe is due at a fixed time: a late wake-up (the event loop held by a
                # translation) counts, as it would for a record arriving then.
                due = began + 0.3 * (p + 1)
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                name = f"n{p}"
                latencies.append(await probe(bootstrap, topic, redis_client, layout, name, due=due))
            pending_after_probes = not flooding.done()
            await flooding
        finally:
            await lc.aclose()

    writes = [
        e["duration_ms"] / 1000
        for e in logs
        if e.get("event") == "tenant.write" and e.get("tenant") == FLOOD
    ]
    assert pending_after_probes, "the flood ended before the probes: nothing was shown"
    assert len(writes) >= 3, writes
    flood_write = statistics.median(writes)
    assert flood_write > 0.2, f"the flooding tenant's writes are too quick to tell: {writes}"
    assert statistics.median(latencies) < 0.25 * flood_write, (
        f"neighbours {[round(x, 3) for x in latencies]} s vs the flood's writes "
        f"{[round(x, 3) for x in writes]} s"
    )


async def keep_flooding(bootstrap: str, topic: str) -> None:
    """The flooding tenant keeps creating Ingresses: 30 every 0.1 s for 3 s."""
    start = LOADED
    for _ in range(30):
        await send_all(bootstrap, topic, flood_events(start, 30))
        start += 30
        await asyncio.sleep(0.1)


async def probe(
    bootstrap: str,
    topic: str,
    client: aioredis.Redis,
    layout: KeyLayout,
    tenant: str,
    *,
    due: float,
) -> float:
    """A neighbour's single change, due at `due`: seconds from then to its version in Redis."""
    started = due
    await send_all(bootstrap, topic, [event(tenant, ingress(tenant, "web", f"{tenant}.io"))])
    while await client.hget(layout.meta(tenant), "version") is None:
        if time.monotonic() - started > 30:
            raise AssertionError(f"{tenant} not written in 30 s")
        await asyncio.sleep(0.005)
    return time.monotonic() - started
