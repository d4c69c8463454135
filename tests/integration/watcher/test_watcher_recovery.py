"""Recovery: a restarted watcher and an expired watch both leave downstream equal to the cluster."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from ripple_common.envelope import EventType
from ripple_watcher.ports import KindApi, ListPage, RawEvent
from tests.conftest import StackEnv
from tests.integration.watcher.support import (
    Downstream,
    EnvelopeLog,
    Kube,
    RunningWatcher,
    envelope_log,
    running_watcher,
    unique,
    watcher_settings,
)


async def test_restarted_watcher_converges_downstream(
    stack: StackEnv, topic: str, kube: Kube
) -> None:
    ns = await kube.namespace(unique("rw-r"))
    settings = watcher_settings(stack, topic)
    async with envelope_log(settings.kafka_bootstrap, topic) as log:
        async with running_watcher(settings):
            await kube.ingress(ns, "keep", host="k.example.test")
            await kube.ingress(ns, "gone", host="g.example.test")
            await log.wait_for(lambda: len(log.of_tenant(ns)) == 2)
        # The watcher is down: a deletion, a change and a creation it does not see.
        await kube.delete_ingress(ns, "gone")
        await kube.set_ingress_host(ns, "keep", host="k2.example.test")
        await kube.ingress(ns, "new", host="n.example.test")

        def ingress_relists_finished() -> int:
            return sum(
                1
                for r in log.records
                if r.envelope.type is EventType.RELIST_FINISHED and r.envelope.kind == "Ingress"
            )

        async with running_watcher(settings):
            await log.wait_for(lambda: ingress_relists_finished() == 2 * 3)

    downstream = Downstream()
    for r in log.records:
        downstream.apply(r.partition, r.envelope)
    state = downstream.names(ns, "Ingress")
    assert sorted(state) == ["keep", "new"]
    assert state["keep"].object is not None
    assert state["keep"].object["spec"]["rules"][0]["host"] == "k2.example.test"


@dataclass
class FaultyApi:
    """Passes through to the real API. When `fault_next` is set, the next watch call parks
    until `gate` is set (the watch is down), then either asks the apiserver for
    resourceVersion "1" (`stale=True`) or yields the ERROR event the apiserver sends for an
    expired resourceVersion (this apiserver's watch cache holds its whole short history, so
    "1" is still served here and cannot be made to expire without restarting it)."""

    inner: KindApi
    stale: bool = False
    fault_next: bool = False
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    parked: asyncio.Event = field(default_factory=asyncio.Event)

    async def available(self) -> bool:
        return await self.inner.available()

    def list_pages(self, *, page_size: int) -> AsyncIterator[ListPage]:
        return self.inner.list_pages(page_size=page_size)

    async def watch(
        self, *, resource_version: str, timeout_seconds: int
    ) -> AsyncIterator[RawEvent]:
        if self.fault_next:
            self.fault_next = False
            self.parked.set()
            await self.gate.wait()
            if not self.stale:
                yield RawEvent(type="ERROR", object=EXPIRED_STATUS)
                return
            resource_version = "1"
        async for event in self.inner.watch(
            resource_version=resource_version, timeout_seconds=timeout_seconds
        ):
            yield event


EXPIRED_STATUS = {
    "kind": "Status",
    "apiVersion": "v1",
    "status": "Failure",
    "message": "too old resource version: 217 (233)",
    "reason": "Expired",
    "code": 410,
}


@asynccontextmanager
async def faulty_ingress_watch(
    stack: StackEnv, topic: str, *, stale: bool
) -> AsyncIterator[tuple[RunningWatcher, FaultyApi, EnvelopeLog]]:
    # Short server timeout: the running watch ends within a second and the next one parks.
    settings = watcher_settings(stack, topic, watch_timeout_seconds=1)
    faults: list[FaultyApi] = []

    def wrap(api: KindApi) -> KindApi:
        fault = FaultyApi(api, stale=stale)
        faults.append(fault)
        return fault

    async with (
        envelope_log(settings.kafka_bootstrap, topic) as log,
        running_watcher(settings, wrap_api=wrap) as watcher,
    ):
        kinds = [w.kind for w in watcher.group.watchers]
        yield watcher, faults[kinds.index("Ingress")], log


async def _down_while_changed(kube: Kube, ns: str, fault: FaultyApi, log: EnvelopeLog) -> None:
    await kube.ingress(ns, "keep", host="k.example.test")
    await kube.ingress(ns, "gone", host="g.example.test")
    await log.wait_for(lambda: len(log.of_tenant(ns)) == 2)
    fault.fault_next = True
    await asyncio.wait_for(fault.parked.wait(), 10)
    await kube.delete_ingress(ns, "gone")
    await kube.set_ingress_host(ns, "keep", host="k2.example.test")
    fault.gate.set()
    await log.wait_for(lambda: len(log.of_tenant(ns)) >= 4)
    await log.fence(kube, ns)  # written last in the tenant: nothing else came before it


async def test_expired_watch_relists_and_publishes_deletions(
    stack: StackEnv, topic: str, kube: Kube
) -> None:
    ns = await kube.namespace(unique("rw-x"))
    async with faulty_ingress_watch(stack, topic, stale=False) as (watcher, fault, log):
        await _down_while_changed(kube, ns, fault, log)
        reasons = dict(watcher.group.watcher("Ingress").stats.restart_reasons)

    assert [(e.type.value, e.name) for e in log.of_tenant(ns)[2:]] == [
        ("MODIFIED", "keep"),
        ("DELETED", "gone"),
    ]
    assert reasons == {"expired": 1}


async def test_stale_resource_version_loses_and_repeats_nothing(
    stack: StackEnv, topic: str, kube: Kube
) -> None:
    ns = await kube.namespace(unique("rw-v"))
    async with faulty_ingress_watch(stack, topic, stale=True) as (_watcher, fault, log):
        await _down_while_changed(kube, ns, fault, log)

    # Replayed from the watch cache (unchanged objects deduplicated) or answered 410 and
    # re-listed: either way exactly the two changes, once each.
    after = log.of_tenant(ns)[2:]
    assert sorted((e.type.value, e.name) for e in after) == [
        ("DELETED", "gone"),
        ("MODIFIED", "keep"),
    ]
