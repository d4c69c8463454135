"""Diagnostics as Kubernetes Events, off the write path: `EventReporter` takes each written
tenant's diagnostics (never blocking: a bounded queue), drops repeats of a problem already
reported recently, and posts the rest at a bounded rate from a background task through an
`EventPoster` (`events.KubeEventPoster` in production). Failures are logged and counted, never
raised into the writer. Pure but for asyncio; the Kubernetes client lives in `events`."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from ripple_translator.metrics import TranslatorStats
from ripple_translator.translate import Diagnostic

log = structlog.get_logger("ripple_translator.reporting")

# API group/version of the kinds diagnostics name (the Event's `regarding`).
API_VERSIONS = {
    "Ingress": "networking.k8s.io/v1",
    "IngressClass": "networking.k8s.io/v1",
    "HTTPRoute": "gateway.networking.k8s.io/v1",
    "Gateway": "gateway.networking.k8s.io/v1",
    "EndpointSlice": "discovery.k8s.io/v1",
}
MAX_NOTE = 1000  # events.k8s.io/v1 limits `note` to 1 kB
# Namespaces the translator never writes Events into, whatever it is told: the cluster's own.
# Its RBAC (a ClusterRole for Events, see deploy/k8s/base/rbac-translator.yaml) cannot leave
# one namespace out, so the code does; an object there is no tenant's.
PROTECTED_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})


@dataclass(frozen=True, slots=True, kw_only=True)
class EventSpec:
    """One Event to post: about `kind namespace/name`; `name` is deterministic (the same
    problem on the same object always gets the same Event name), so any translator instance
    updates the one Event instead of creating another."""

    name: str
    namespace: str
    kind: str
    api_version: str
    object_name: str
    type: str  # Warning (every diagnostic is a problem)
    reason: str
    note: str


def event_spec(diag: Diagnostic) -> EventSpec | None:
    """The Event for a diagnostic; None for cluster-scoped objects (Events are namespaced) and
    for objects in the cluster's own namespaces (`PROTECTED_NAMESPACES`)."""
    ref = diag.object
    if not ref.namespace or ref.namespace in PROTECTED_NAMESPACES:
        return None
    digest = hashlib.sha256(
        f"{ref.kind}/{ref.namespace}/{ref.name}/{diag.reason}/{diag.message}".encode()
    ).hexdigest()[:16]
    base = ref.name[: 253 - 18]
    return EventSpec(
        name=f"{base}.{digest}",
        namespace=ref.namespace,
        kind=ref.kind,
        api_version=API_VERSIONS.get(ref.kind, "v1"),
        object_name=ref.name,
        type="Warning",
        reason=str(diag.reason),
        note=f"{diag.severity}: {diag.message}"[:MAX_NOTE],
    )


class EventPoster(Protocol):
    async def post(self, spec: EventSpec, *, count: int) -> None:
        """Create the Event, or (it exists) record one more occurrence (series count)."""
        ...


class EventReporter:
    """Deduplicating, rate-bounded, non-blocking Event reporting (a lifecycle resource)."""

    def __init__(
        self,
        poster: EventPoster,
        *,
        stats: TranslatorStats | None = None,
        queue_size: int = 10_000,
        rate_per_s: float = 20.0,
        repeat_after_s: float = 600.0,
        remember: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._poster = poster
        self.stats = stats or TranslatorStats()
        self._queue: asyncio.Queue[EventSpec] = asyncio.Queue(maxsize=queue_size)
        self._interval = 1.0 / rate_per_s
        self._repeat_after_s = repeat_after_s
        self._remember = remember
        self._clock = clock
        # Event name -> (last reported at, occurrences reported): LRU-bounded.
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._task: asyncio.Task[None] | None = None

    def report(self, tenant: str, diagnostics: Sequence[Diagnostic]) -> None:
        """Queue the diagnostics not reported within `repeat_after_s` (never blocks)."""
        now = self._clock()
        for diag in diagnostics:
            spec = event_spec(diag)
            if spec is None:
                continue
            seen = self._seen.get(spec.name)
            if seen is not None and now - seen[0] < self._repeat_after_s:
                continue
            try:
                self._queue.put_nowait(spec)
            except asyncio.QueueFull:
                self.stats.k8s_events_dropped += 1
                continue
            count = seen[1] + 1 if seen else 1
            self._seen[spec.name] = (now, count)
            self._seen.move_to_end(spec.name)
            while len(self._seen) > self._remember:
                self._seen.popitem(last=False)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="k8s events")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def flush(self, *, timeout_s: float) -> bool:
        """Wait until the queue is empty (tests)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._queue.join()
                return True
        return False

    async def _run(self) -> None:
        while True:
            spec = await self._queue.get()
            try:
                count = self._seen.get(spec.name, (0.0, 1))[1]
                await self._poster.post(spec, count=count)
                self.stats.k8s_events_posted += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats.k8s_events_failed += 1
                log.warning(
                    "k8s_event.failed",
                    namespace=spec.namespace,
                    object=f"{spec.kind}/{spec.object_name}",
                    reason=spec.reason,
                    error=repr(exc),
                )
            finally:
                self._queue.task_done()
            await asyncio.sleep(self._interval)
