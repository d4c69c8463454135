"""Hostile tenant: host hijack by editing an old Ingress (issue #14, point 1).

The real translator (in process, its own Kafka topic and Redis prefix) serves tenant A's host
`a.example`. Tenant B, with an Ingress created long before A's, tries to take it:

1. B patches its old Ingress `b-old` to add A's host: the host's first claim (A's) stands,
   B gets an Error diagnostic, A keeps serving it.
2. B removes the host from `b-old` but asks for it in `b-new` (still older than A's
   Ingress): B's claim of the host is timed when B first claimed the host, never by an
   Ingress's age: B still does not get it.
3. A deletes its Ingress and re-creates it (a newer object than both of B's): within the
   grace the host stays A's, and B's next, unrelated write does not take it either.

Throughout, a poller reads both tenants' stored scopes every 5 ms: B never holds a scope for
A's host, and the host never maps to two tenants.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from ripple_common.envelope import Envelope, EventType
from ripple_common.lifecycle import Lifecycle
from ripple_common.resources import TypeUrl
from ripple_translator.app import start_translator
from ripple_translator.hosts import HostNotice
from ripple_translator.service import ConsumeLoop
from ripple_translator.store import KeyLayout, RedisHostRegistry
from ripple_translator.translate import Severity
from tests.conftest import StackEnv
from tests.integration.translator_service.conftest import PARTITIONS
from tests.integration.translator_service.support import (
    A,
    B,
    class_envelope,
    loop_settings,
    produce,
)
from tests.unit.translator_service.support import deleted, event, ingress, service
from tests.waiting import eventually

HOST_A = "a.example"
HOST_B = "b.example"
HOST_B2 = "b2.example"


@pytest.fixture
async def topic(stack: StackEnv) -> AsyncIterator[str]:
    name = f"it-hostile-{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack["RIPPLE_KAFKA_BOOTSTRAP"])
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name=name, num_partitions=PARTITIONS, replication_factor=1)]
        )
        yield name
        await admin.delete_topics([name])
    finally:
        await admin.close()


def made(ns: str, name: str, created: str, *hosts: str) -> dict[str, Any]:
    """An Ingress of `ns` created at `created` with one rule per host."""
    obj = ingress(ns, name, hosts[0])
    obj["metadata"]["creationTimestamp"] = created
    rule = obj["spec"]["rules"][0]
    obj["spec"]["rules"] = [{**rule, "host": h} for h in hosts]
    return obj


class Run:
    """The translator under test and what Redis serves: which tenants hold a scope for a
    host, their route configurations, B's diagnostics."""

    def __init__(
        self, loop: ConsumeLoop, client: aioredis.Redis, *, prefix: str, bootstrap: str, topic: str
    ) -> None:
        self.loop = loop
        self._client = client
        self._layout = KeyLayout(prefix=prefix)
        self.registry = RedisHostRegistry(client, layout=self._layout)
        self._bootstrap = bootstrap
        self._topic = topic

    async def send(self, *envelopes: Envelope) -> None:
        await produce(self._bootstrap, self._topic, list(envelopes))

    async def scopes(self, host: str) -> set[str]:
        out = set()
        for tenant in (A, B):
            key = self._layout.resources(tenant, TypeUrl.SCOPED_ROUTE)
            if await self._client.hexists(key, f"{tenant}/scope/{host}"):
                out.add(tenant)
        return out

    async def serves(self, tenants: set[str], host: str = HOST_A) -> bool:
        return await self.scopes(host) == tenants

    async def routes_name(self, tenant: str, host: str) -> bool:
        """Whether any stored route configuration of the tenant names the host."""
        bodies = await self._client.hvals(self._layout.resources(tenant, TypeUrl.ROUTE))
        return any(host.encode() in body for body in bodies)

    async def owner(self) -> str | None:
        return (await self.registry.owners([HOST_A]))[HOST_A]

    def b_reported(self, name: str) -> bool:
        """B's last write reported A's host on B's Ingress `name` (whatever the outcome)."""
        return any(
            d.split(":")[0].endswith(f" {name}") for d in host_diagnostics(self.loop, B, HOST_A)
        )

    async def wait_b_reported(self, name: str) -> None:
        """Until B's write of its change is done: it reported the host on `name`, or (the
        hijack this suite guards against) B serves the host."""

        async def reported() -> bool:
            return self.b_reported(name) or B in await self.scopes(HOST_A)

        await eventually(reported, within_s=30, every_s=0.1)
        await self.notices_crossed()

    def writes_done(self) -> bool:
        """No write of A or B scheduled or running (a write sends its notices before it
        ends)."""
        slots = [self.loop.engine.slot(t) for t in (A, B)]
        return all(s is None or s.task is None or s.task.done() for s in slots)

    async def notices_crossed(self) -> None:
        """Every host notice sent so far has been read, and the writes it woke are done.

        By a fence: with the writes done, a notice naming A (a harmless re-translation) is
        written last to the notice stream; once the follower has woken A for it, it has read
        every notice before it too, and what those woke is done when the writes are again."""
        stats = self.loop.engine.stats
        await eventually(self.writes_done, within_s=30, what="A's and B's writes done")
        woken = stats.host_notices
        await self.registry.notify([HostNotice(tenant=A, host=HOST_A, why="test fence")])
        await eventually(
            lambda: stats.host_notices > woken, within_s=30, what="the fence notice read"
        )
        await eventually(self.writes_done, within_s=30, what="the writes the notices woke done")

    async def a_keeps_the_host(self, *, b_lost_on: str) -> None:
        """A owns and alone serves a.example; B's diagnostic about it is an Error on its
        Ingress `b_lost_on`: the host belongs to A (beside the translation's own note that
        the host's rules are left out)."""
        assert await self.scopes(HOST_A) == {A}
        assert await self.owner() == A
        assert await self.routes_name(A, HOST_A)
        assert not await self.routes_name(B, HOST_A)
        diags = host_diagnostics(self.loop, B, HOST_A)
        lost = [d for d in diags if f"belongs to tenant {A}," in d]
        assert len(lost) == 1, diags
        expected = f"{Severity.ERROR} {b_lost_on}: host {HOST_A} belongs to tenant {A},"
        assert lost[0].startswith(expected), diags


def host_diagnostics(loop: ConsumeLoop, tenant: str, host: str) -> list[str]:
    """The tenant's last write's diagnostics about `host`: "<severity> <object>: <message>"."""
    slot = loop.engine.slot(tenant)
    if slot is None:
        return []
    return sorted(
        f"{d.severity} {d.object.name}: {d.message}" for d in slot.diagnostics if host in d.message
    )


def modified(tenant: str, obj: dict[str, Any]) -> Envelope:
    return event(tenant, obj, type_=EventType.MODIFIED)


async def b_patches_its_old_ingress(run: Run) -> None:
    """1. B patches b-old (created 2024, long before A's Ingress) to add a.example."""
    await run.send(modified(B, made(B, "b-old", "2024-01-01T00:00:00Z", HOST_B, HOST_A)))
    await run.wait_b_reported("b-old")
    await run.a_keeps_the_host(b_lost_on="b-old")


async def b_moves_the_host_into_a_newer_ingress(run: Run) -> None:
    """2. B asks for a.example in b-new (still older than A's Ingress) and no longer in
    b-old: its claim is as old as its first claim of the host, not as its Ingresses."""
    await run.send(
        event(B, made(B, "b-new", "2025-01-01T00:00:00Z", HOST_A)),
        modified(B, made(B, "b-old", "2024-01-01T00:00:00Z", HOST_B)),
    )
    await run.wait_b_reported("b-new")
    await run.a_keeps_the_host(b_lost_on="b-new")


async def a_recreates_its_ingress(run: Run) -> None:
    """3. A deletes its Ingress and re-creates it (a newer object than both of B's): held
    for A meanwhile, A's again after; B's next, unrelated write does not get it."""
    await run.send(deleted(A, "Ingress", A, "a-web"))

    async def a_gone() -> bool:
        return A not in await run.scopes(HOST_A)

    await eventually(a_gone, within_s=30, every_s=0.1)
    await run.notices_crossed()  # B, told of the release, has claimed again by now
    assert await run.scopes(HOST_A) == set()
    assert await run.owner() == A  # held for A for the grace
    await run.send(event(A, made(A, "a-web", "2026-12-01T00:00:00Z", HOST_A)))
    await eventually(lambda: run.serves({A}), within_s=30, every_s=0.1)
    await run.send(modified(B, made(B, "b-old", "2024-01-01T00:00:00Z", HOST_B, HOST_B2)))
    await eventually(lambda: run.serves({B}, HOST_B2), within_s=30, every_s=0.1)
    await run.notices_crossed()
    await run.a_keeps_the_host(b_lost_on="b-new")


async def test_a_tenant_cannot_take_another_tenants_host_by_editing_an_old_ingress(
    stack: StackEnv, redis_client: aioredis.Redis, prefix: str, topic: str
) -> None:
    settings = loop_settings(
        stack,
        topic=topic,
        prefix=prefix,
        group=f"it-hostile-{uuid.uuid4().hex[:8]}",
        notice_block_ms=100,
        host_release_grace_s=60,
    )
    seen: list[set[str]] = []
    # The poller is stopped by an event, not cancelled: redis-py may swallow a cancellation
    # that lands inside a command, and the poller then ran (and the test waited) forever.
    watching = asyncio.Event()
    lc = Lifecycle()
    watcher: asyncio.Task[None] | None = None
    try:
        run = Run(
            await start_translator(lc, settings),
            redis_client,
            prefix=prefix,
            bootstrap=stack["RIPPLE_KAFKA_BOOTSTRAP"],
            topic=topic,
        )

        async def watch() -> None:
            while not watching.is_set():
                seen.append(await run.scopes(HOST_A))
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch())
        # B's old Ingress for its own host; then A's Ingress for a.example, created later
        await run.send(
            class_envelope(),
            event(B, service(B)),
            event(B, made(B, "b-old", "2024-01-01T00:00:00Z", HOST_B)),
        )
        await eventually(lambda: run.serves({B}, HOST_B), within_s=30, every_s=0.1)
        await run.send(
            event(A, service(A)), event(A, made(A, "a-web", "2025-06-01T00:00:00Z", HOST_A))
        )
        await eventually(lambda: run.serves({A}), within_s=30, every_s=0.1)

        await b_patches_its_old_ingress(run)
        await b_moves_the_host_into_a_newer_ingress(run)
        await a_recreates_its_ingress(run)
    finally:
        watching.set()
        if watcher is not None:
            await watcher
        await lc.aclose()
    assert seen, "the poller never ran"
    assert all(B not in tenants for tenants in seen), "B held a scope for A's host"
