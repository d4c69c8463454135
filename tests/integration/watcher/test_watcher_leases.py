"""Two replicas: one publishes each kind (a Lease per kind), the other takes over on stop."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack

from ripple_common.envelope import EventType
from tests.conftest import StackEnv
from tests.integration.watcher.support import (
    FENCE,
    Downstream,
    Kube,
    envelope_log,
    running_watcher,
    unique,
    watcher_settings,
)


async def test_one_replica_publishes_and_the_other_takes_over(
    stack: StackEnv, topic: str, kube: Kube
) -> None:
    lease_ns = await kube.namespace(unique("rw-lease"))
    ns = await kube.namespace(unique("rw-ha"))
    common = {
        "kinds": ("Namespace", "Ingress"),
        "lease_namespace": lease_ns,
        "lease_duration_seconds": 4,
        "lease_renew_seconds": 0.5,
    }
    settings_a = watcher_settings(stack, topic, identity="replica-a", **common)
    settings_b = watcher_settings(stack, topic, identity="replica-b", **common)
    async with envelope_log(settings_a.kafka_bootstrap, topic) as log:
        replica_a = AsyncExitStack()
        try:
            a = await replica_a.enter_async_context(running_watcher(settings_a))
            await asyncio.wait_for(a.group.watcher("Ingress").synced.wait(), 10)
            async with running_watcher(settings_b) as b:
                await kube.ingress(ns, "x", host="x.example.test")
                await log.wait_for(lambda: len(log.of_tenant(ns)) == 1)
                # Nothing else of a's: its fence, written last in the tenant, came after. And
                # no second publisher: the standby b has not listed Ingresses at all.
                await log.fence(kube, ns)
                published_once = len(log.of_tenant(ns)) == 1
                standby_listed = b.group.watcher("Ingress").started
                leaders = (a.group.electors["Ingress"].leading, b.group.electors["Ingress"].leading)

                stopped = time.monotonic()
                await replica_a.aclose()  # SIGTERM-like: stop, flush, release the leases
                await asyncio.wait_for(b.group.watcher("Ingress").synced.wait(), 10)
                takeover_s = time.monotonic() - stopped
                await kube.ingress(ns, "y", host="y.example.test")
                await log.wait_for(lambda: any(e.name == "y" for e in log.of_tenant(ns)))
        finally:
            await replica_a.aclose()

    assert published_once
    assert not standby_listed
    assert leaders == (True, False)
    assert takeover_s < 5.0
    downstream = Downstream()
    for r in log.records:
        downstream.apply(r.partition, r.envelope)
    assert sorted(downstream.names(ns, "Ingress")) == ["x", "y", FENCE]
    finished = [
        r
        for r in log.records
        if r.envelope.type is EventType.RELIST_FINISHED and r.envelope.kind == "Ingress"
    ]
    assert len(finished) == 2 * 3  # a's first list and b's full list after the takeover
