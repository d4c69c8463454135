"""A real 410 Gone from a restarted kube-apiserver, with deletions the watch never saw.

The apiserver serves watches from its watch cache, which keeps recent events whatever etcd
compacted; a restarted apiserver's caches start at etcd's current revision, so any older
resourceVersion gets an ERROR event with code 410 (stack/components/apiserver.sh).

Why the Ingress watch is held back while the apiserver restarts: when a watch connection
*drops*, this watcher re-lists at once (it does not resume a watch from its resourceVersion
after an error), so an apiserver restart under a live watch alone never produces a 410 for
it. A watcher whose reconnect is late (slow network, long backoff, a stalled event loop)
does: `HeldWatch` parks the Ingress watcher's next watch call until the new apiserver is up,
then sends it, unchanged, to the real apiserver. Nothing is faked: the 410 is the new
apiserver's answer to the watcher's own resourceVersion.

The restart interrupts every client of the stack's apiserver (other tests running against the
same stack at the same time see connection errors): about 4 s, or up to about 25 s when the
old apiserver's graceful shutdown hangs on open connections and stop_proc waits its 20 s
before SIGKILL. The test waits until /readyz is ok again before it ends, whatever happens.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from ripple_common.envelope import Envelope, EventType
from ripple_watcher.ports import KindApi, ListPage, RawEvent
from tests.conftest import StackEnv
from tests.integration.watcher.support import (
    Downstream,
    EnvelopeLog,
    Kube,
    envelope_log,
    running_watcher,
    unique,
    watcher_settings,
)
from tests.waiting import eventually

REPO = Path(__file__).resolve().parents[3]
STACK_SH = (
    "source stack/lib.sh && source stack/components/etcd.sh && source stack/components/apiserver.sh"
)
READY_WITHIN_S = 120.0
FINISHED = EventType.RELIST_FINISHED


def _stack_bash(
    stack: StackEnv, script: str, *, timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f"{STACK_SH} && {script}"],
        cwd=REPO,
        env=_restart_env(stack),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _restart_env(stack: StackEnv) -> dict[str, str]:
    """This environment with the stack's run dir, and the apiserver started as the stack does."""
    env = {k: v for k, v in os.environ.items() if k != "RIPPLE_APISERVER_EXTRA_ARGS"}
    env["RIPPLE_RUN"] = stack["RIPPLE_RUN"]
    return env


async def restart_apiserver(stack: StackEnv) -> float:
    """stop_proc + apiserver_start (which waits for /readyz); the seconds it took."""
    t0 = time.monotonic()
    done = await asyncio.to_thread(
        _stack_bash, stack, "stop_proc apiserver && apiserver_start", timeout=READY_WITHIN_S + 30
    )
    assert done.returncode == 0, f"apiserver restart failed:\n{done.stdout}\n{done.stderr}"
    return time.monotonic() - t0


async def ensure_apiserver_ready(stack: StackEnv) -> None:
    """/readyz ok; if the apiserver is not even running (a restart failed half way), start it."""

    async def ready() -> bool:
        probe = await asyncio.to_thread(_stack_bash, stack, "apiserver_probe", timeout=10)
        if probe.returncode == 0:
            return True
        running = await asyncio.to_thread(_stack_bash, stack, "is_running apiserver", timeout=10)
        if running.returncode != 0:
            await asyncio.to_thread(
                _stack_bash, stack, "apiserver_start", timeout=READY_WITHIN_S + 30
            )
        return False

    await eventually(
        ready, within_s=READY_WITHIN_S, every_s=0.5, what="the stack's apiserver ready again"
    )


@dataclass
class HeldWatch:
    """Passes through to the real API; once `hold` is set, the next watch call waits for
    `release` before it goes to the apiserver (with the resourceVersion it was given)."""

    inner: KindApi
    hold: bool = False
    held: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    held_resource_version: str = ""
    watch_errors: list[dict[str, object]] = field(default_factory=list)

    async def available(self) -> bool:
        return await self.inner.available()

    def list_pages(self, *, page_size: int) -> AsyncIterator[ListPage]:
        return self.inner.list_pages(page_size=page_size)

    async def watch(
        self, *, resource_version: str, timeout_seconds: int
    ) -> AsyncIterator[RawEvent]:
        if self.hold:
            self.hold = False
            self.held_resource_version = resource_version
            self.held.set()
            await self.release.wait()
        async for event in self.inner.watch(
            resource_version=resource_version, timeout_seconds=timeout_seconds
        ):
            if event.type == "ERROR":
                self.watch_errors.append(dict(event.object))
            yield event


def _ingresses(log: EnvelopeLog, tenant: str) -> list[Envelope]:
    return [e for e in log.of_tenant(tenant) if e.kind == "Ingress"]


async def _ingress_names(kube: Kube, ns: str) -> set[str]:
    listed = await kube.net.list_namespaced_ingress(ns)
    return {str(i.metadata.name) for i in listed.items}


async def _change_across_restart(
    stack: StackEnv, kube: Kube, held: HeldWatch, a: str, b: str
) -> float:
    """With the Ingress watch down (its next reconnect held back): delete and change objects
    (etcd moves past the watcher's resourceVersion), restart the apiserver (which forgets that
    history), delete and create more; then let the held watch go to the new apiserver."""
    held.hold = True
    await asyncio.wait_for(held.held.wait(), 15)
    await kube.delete_ingress(a, "gone-0")
    await kube.delete_ingress(b, "gone-0")
    await kube.set_ingress_host(a, "keep-0", host="k0-v2.example.test")
    try:
        restart_s = await restart_apiserver(stack)
        await kube.delete_ingress(a, "gone-1")
        await kube.delete_ingress(b, "gone-1")
        await kube.delete_ingress(b, "gone-2")
        await kube.ingress(b, "new-0", host="n0.example.test")
    finally:
        held.release.set()
    return restart_s


def _assert_downstream_equals(
    log: EnvelopeLog, cluster: dict[str, set[str]], *, changed: str
) -> None:
    """What a translator holds after applying the log equals what the apiserver lists (and
    keep-0 has the host it was changed to in namespace `changed`)."""
    downstream = Downstream()
    for r in log.records:
        downstream.apply(r.partition, r.envelope)
    for ns, names in cluster.items():
        state = downstream.names(ns, "Ingress")
        assert set(state) == names, (ns, sorted(state), sorted(names))
        keep0 = state["keep-0"].object
        assert keep0 is not None
        host = keep0["spec"]["rules"][0]["host"]
        assert host == ("k0-v2.example.test" if ns == changed else f"k0.{ns}.example.test")


async def test_apiserver_restart_410_relists_and_publishes_deletions(
    stack: StackEnv, topic: str, kube: Kube
) -> None:
    a = await kube.namespace(unique("rw-410a"))
    b = await kube.namespace(unique("rw-410b"))
    for ns in (a, b):
        for i in range(3):
            await kube.ingress(ns, f"keep-{i}", host=f"k{i}.{ns}.example.test")
            await kube.ingress(ns, f"gone-{i}", host=f"g{i}.{ns}.example.test")
    # A short server timeout: the running watch ends within a second and the next one is held.
    settings = watcher_settings(
        stack, topic, kinds=("Namespace", "Ingress"), watch_timeout_seconds=1
    )
    holds: list[HeldWatch] = []

    def wrap(api: KindApi) -> KindApi:
        holds.append(HeldWatch(api))
        return holds[-1]

    try:
        async with (
            envelope_log(settings.kafka_bootstrap, topic) as log,
            running_watcher(settings, wrap_api=wrap) as watcher,
        ):
            ingresses = watcher.group.watcher("Ingress")
            held = holds[[w.kind for w in watcher.group.watchers].index("Ingress")]
            await log.wait_for(lambda: len(_ingresses(log, a)) == len(_ingresses(log, b)) == 6)
            relists_before = ingresses.stats.relists
            assert "expired" not in ingresses.stats.restart_reasons

            restart_s = await _change_across_restart(stack, kube, held, a, b)

            def converged() -> bool:
                deleted = {
                    ns: {e.name for e in _ingresses(log, ns) if e.type is EventType.DELETED}
                    for ns in (a, b)
                }
                return (
                    ingresses.stats.relists > relists_before
                    and deleted == {a: {"gone-0", "gone-1"}, b: {"gone-0", "gone-1", "gone-2"}}
                    and any(e.name == "new-0" for e in _ingresses(log, b))
                )

            await log.wait_for(converged, within=60)
            for ns in (a, b):  # written last in each tenant: nothing else came before it
                await log.fence(kube, ns)
            stats = ingresses.stats
            cluster = {ns: await _ingress_names(kube, ns) for ns in (a, b)}
    finally:
        await ensure_apiserver_ready(stack)

    # The 410 path was taken for real: the new apiserver answered the held resourceVersion
    # with a 410 (an ERROR event, or an HTTP 410 the adapter raises as the same error), the
    # watcher counted an "expired" restart and re-listed.
    assert stats.restart_reasons.get("expired", 0) >= 1, (stats, held.watch_errors)
    assert all(err.get("code") == 410 for err in held.watch_errors), held.watch_errors
    assert stats.relists >= relists_before + 1
    assert restart_s > 0

    # The watcher trusted its memory, so the re-list after the 410 is a diff: no new relist
    # markers (only the startup's, one per partition), just the changes since, once each.
    finished = [
        r for r in log.records if r.envelope.kind == "Ingress" and r.envelope.type is FINISHED
    ]
    assert len(finished) == 3
    assert sorted((e.type.value, e.name) for e in _ingresses(log, a)[6:]) == [
        ("DELETED", "gone-0"),
        ("DELETED", "gone-1"),
        ("MODIFIED", "keep-0"),
    ]
    assert sorted((e.type.value, e.name) for e in _ingresses(log, b)[6:]) == [
        ("ADDED", "new-0"),
        ("DELETED", "gone-0"),
        ("DELETED", "gone-1"),
        ("DELETED", "gone-2"),
    ]
    _assert_downstream_equals(log, cluster, changed=a)
