"""Per-tenant fairness against the stack's Kafka and Redis (issue #15 point 1): while one tenant
floods (thousands of Ingresses, each of its writes re-translating all of them), a neighbour's
single change is not held back by the flooding tenant's translation in progress. Before the
fix it was: the translation ran on the event loop, and so did the Kafka consumer's polls and
the neighbours' writes, so a neighbour's change waited for the flood's whole translation.

Judged by order, not by CPU time. Each probe is one of the flooding tenant's translations (its
real work, in whatever thread the writer runs it): as it begins, a neighbour's change is sent
(from a thread and event loop of the test's own, which run whatever the translator's loop
does); once its work is done, the translation returns only when the neighbour's version is in
Redis, or after HOLD_S. With the translation in the writer's translation thread (the fix) the
neighbour is written while it is held, every time: nothing the neighbour needs waits for that
thread (a single change is translated on the event loop, a write slot is free), and the
flood's stored version cannot move meanwhile (one write in flight per tenant). With the
translation on the event loop nothing else runs while it is held, so the neighbour is written
only after it: the probe fails after HOLD_S. HOLD_S bounds liveness only (a neighbour is
written in tens of milliseconds here), not a ratio.

How long neighbours take during a flood (create -> served through Envoy, medians and tails)
is measured by `python -m bench.flood_served`, not here."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from ripple_common.envelope import Envelope
from ripple_common.lifecycle import Lifecycle
from ripple_translator import writer
from ripple_translator.app import start_translator
from ripple_translator.partition_state import TenantObjects
from ripple_translator.store import KeyLayout
from ripple_translator.writer import WritePlan
from tests import waiting
from tests.conftest import StackEnv
from tests.integration.translator_service.support import (
    class_envelope,
    committed,
    end_offsets,
    loop_settings,
    produce,
)
from tests.unit.translator_service.support import event, ingress, service

FLOOD = "flood"
LOADED = 3000  # the flooding tenant's Ingresses before the neighbours' probes
PROBES = 6
HOLD_S = 10.0  # how long a probe holds the flood's translation for its neighbour, at most
WRITTEN_S = 60.0  # how long a neighbour may take at all (after a hold that gave up, too)

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Written:
    """A neighbour's change as the test's own loop saw it."""

    flood_at_send: int  # the flood's stored version when the change was sent
    flood_at_written: int  # ... when the neighbour's version appeared in Redis
    seconds: float  # from the send to the neighbour's version


@dataclass(frozen=True, slots=True, kw_only=True)
class Probe:
    """One of the flood's translations and the neighbour's change sent as it began."""

    tenant: str
    flood_ingresses: int  # in the translation
    work_s: float  # the translation's own work (not asserted)
    # The neighbour was written before the translation's own work ended (timing: not asserted).
    within_work: bool
    # ... before the held translation returned (the order asserted).
    within_hold: bool
    written: concurrent.futures.Future[Written]


class Neighbours:
    """Sends neighbours' changes and waits for their versions on an event loop of its own, in a
    thread of its own: it runs whether or not the translator's event loop is free."""

    def __init__(self, *, bootstrap: str, redis_url: str, topic: str, layout: KeyLayout) -> None:
        self._bootstrap, self._redis_url, self._topic = bootstrap, redis_url, topic
        self._layout = layout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="neighbours", daemon=True
        )
        self._producer: AIOKafkaProducer | None = None
        self._redis: aioredis.Redis | None = None

    def start(self) -> None:
        self._thread.start()
        self._run(self._open()).result(timeout=30)

    def stop(self) -> None:
        try:
            self._run(self._close()).result(timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._loop.close()

    def change(self, tenant: str) -> concurrent.futures.Future[Written]:
        """Send `tenant`'s single change; the future: once its version is in Redis."""
        return self._run(self._change(tenant))

    def _run(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    async def _open(self) -> None:
        self._producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, linger_ms=0)
        await self._producer.start()
        self._redis = aioredis.from_url(self._redis_url, decode_responses=False)

    async def _close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
        if self._redis is not None:
            await self._redis.aclose()

    async def _change(self, tenant: str) -> Written:
        assert self._producer is not None
        envelope = event(tenant, ingress(tenant, "web", f"{tenant}.io"))
        flood_at_send = await self._version(FLOOD)
        sent = time.monotonic()
        await self._producer.send_and_wait(self._topic, value=envelope.to_bytes(), key=envelope.key)
        while await self._version(tenant) == 0:
            if time.monotonic() - sent > WRITTEN_S:
                raise AssertionError(f"{tenant} not written in {WRITTEN_S} s")
            await asyncio.sleep(0.002)
        seconds = time.monotonic() - sent
        return Written(
            flood_at_send=flood_at_send,
            flood_at_written=await self._version(FLOOD),
            seconds=seconds,
        )

    async def _version(self, tenant: str) -> int:
        assert self._redis is not None
        raw = await self._redis.hget(self._layout.meta(tenant), "version")
        return 0 if raw is None else int(raw)


class HeldTranslations:
    """The writer's `plan_write`: once armed, each of the flooding tenant's translations (PROBES
    of them) sends a neighbour's change as it begins and, its real work done, returns once that
    neighbour is written or after HOLD_S. A hold that gives up ends the probes."""

    def __init__(self, real: Callable[..., WritePlan], neighbours: Neighbours) -> None:
        self._real = real
        self._neighbours = neighbours
        self.armed = False
        self.probes: list[Probe] = []
        self.over = threading.Event()  # all probes done, or one failed

    def __call__(self, objects: TenantObjects, **kwargs: Any) -> WritePlan:
        if objects.tenant != FLOOD or not self.armed or self.over.is_set():
            return self._real(objects, **kwargs)
        tenant = f"n{len(self.probes)}"
        written = self._neighbours.change(tenant)
        began = time.perf_counter()
        plan = self._real(objects, **kwargs)
        work_s = time.perf_counter() - began
        within_work = written.done()
        try:
            written.result(timeout=HOLD_S)
        except Exception:  # not written in time (or failed: the test reports it, not the writer)
            within_hold = False
        else:
            within_hold = True
        ingresses = sum(1 for kind, _, _ in objects.objects if kind == "Ingress")
        self.probes.append(
            Probe(
                tenant=tenant,
                flood_ingresses=ingresses,
                work_s=work_s,
                within_work=within_work,
                within_hold=within_hold,
                written=written,
            )
        )
        if not within_hold or len(self.probes) == PROBES:
            self.over.set()
        return plan


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


async def test_a_neighbour_is_written_while_a_flooding_tenants_translation_is_in_progress(
    stack: StackEnv,
    prefix: str,
    topic: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bootstrap = stack["RIPPLE_KAFKA_BOOTSTRAP"]
    layout = KeyLayout(prefix=prefix)
    group = f"it-fair-{uuid.uuid4().hex[:8]}"
    await produce(bootstrap, topic, [class_envelope(), event(FLOOD, service(FLOOD))])
    await send_all(bootstrap, topic, flood_events(0, LOADED))
    # No pacing: the flooding tenant translates all the time (the worst case for the loop).
    settings = loop_settings(stack, topic=topic, prefix=prefix, group=group, write_pace_factor=0)
    assert settings.offload_objects <= LOADED, "the flood must be big by the writer's measure"
    neighbours = Neighbours(
        bootstrap=bootstrap, redis_url=stack["RIPPLE_REDIS_URL"], topic=topic, layout=layout
    )
    held = HeldTranslations(writer.plan_write, neighbours)
    monkeypatch.setattr(writer, "plan_write", held)
    neighbours.start()
    lc = Lifecycle()
    try:
        await start_translator(lc, settings)
        try:
            # All of the flood's Ingresses are in its stored version once their offsets are
            # committed (a write is durable before its offsets can be).
            ends = await end_offsets(bootstrap, topic)

            async def loaded() -> bool:
                return await committed(bootstrap, group) == ends

            await waiting.eventually(loaded, within_s=120, what="the flood's Ingresses written")
            held.armed = True
            flooding = asyncio.create_task(keep_flooding(bootstrap, topic, held.over))
            await waiting.eventually(
                held.over.is_set, within_s=PROBES * HOLD_S + 120, what="the probes"
            )
            await flooding
            written = [await asyncio.wrap_future(p.written) for p in held.probes]
        finally:
            await lc.aclose()
    finally:
        held.over.set()  # no probe starts while the neighbours' loop stops
        neighbours.stop()

    probes = held.probes
    table = "\n".join(
        f"{p.tenant}: flood Ingresses {p.flood_ingresses}, flood version at send "
        f"{w.flood_at_send} -> at written {w.flood_at_written}; written in {w.seconds:.3f} s, "
        f"within the translation's work ({p.work_s:.3f} s) {p.within_work}, within the hold "
        f"{p.within_hold}"
        for p, w in zip(probes, written, strict=True)
    )
    # The order: each neighbour was written while the flood's translation was in progress,
    # so before the flood's write that translation belongs to (its version did not move).
    assert all(p.within_hold for p in probes), f"a neighbour waited for the flood:\n{table}"
    assert all(w.flood_at_written == w.flood_at_send for w in written), table
    # The probes show something: each held a later write of the flood (its version moved
    # between them) with more of its Ingresses (they kept coming), so the flood was still
    # pending when each neighbour, the last one too, was written (its held write had new
    # Ingresses, its stored version had not moved).
    assert len(probes) == PROBES, table
    flood_versions = [w.flood_at_send for w in written]
    assert flood_versions == sorted(set(flood_versions)), table
    flood_ingresses = [p.flood_ingresses for p in probes]
    assert flood_ingresses == sorted(set(flood_ingresses)), table
    assert flood_ingresses[0] > LOADED, table


async def keep_flooding(bootstrap: str, topic: str, over: threading.Event) -> None:
    """The flooding tenant keeps creating Ingresses, 30 every 0.1 s, until the probes are over."""
    start = LOADED
    while not over.is_set():
        await send_all(bootstrap, topic, flood_events(start, 30))
        start += 30
        await asyncio.sleep(0.1)
