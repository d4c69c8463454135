"""The watch loop of one kind (the kopf shape), pure apart from the Protocols it is given.

list -> publish every item between relist markers -> watch from the list's resourceVersion with
bookmarks and a server timeout, tracking the latest resourceVersion. A stream the server ends
normally is resumed from there. 410 Gone (raised, or an ERROR event), a stream idle past the
bookmark interval, a dropped connection or a failed publish: back off, re-list, reconcile.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from ripple_common.backoff import Backoff
from ripple_common.envelope import Envelope
from ripple_watcher.ports import EventSink, KindApi, PublishError, RawEvent, ResourceExpiredError
from ripple_watcher.reconcile import Reconciler

log = structlog.get_logger(__name__)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchOptions:
    page_size: int = 500
    # Server-side watch timeout; the stream is then resumed from the last resourceVersion.
    watch_timeout_seconds: int = 300
    # No event and no bookmark for this long: the connection is presumed dead. The apiserver
    # sends a bookmark about every minute on a quiet watch.
    idle_timeout_seconds: float = 90.0
    backoff_initial_seconds: float = 0.2
    backoff_max_seconds: float = 30.0
    # How often to look again for a kind that is not served (CRD not installed).
    absent_poll_seconds: float = 30.0


class WatchError(Exception):
    """An ERROR event other than 410, or a stream that makes no sense."""


class IdleWatchError(Exception):
    """No event and no bookmark within the idle timeout."""


class RelistRequestedError(Exception):
    """Someone (a namespace relabel) asked for a re-list."""


@dataclass(slots=True)
class WatchStats:
    relists: int = 0
    restarts: int = 0
    events: int = 0
    published: int = 0
    last_resource_version: str = ""
    restart_reasons: dict[str, int] = field(default_factory=dict)


class KindWatcher:
    """Runs forever (until cancelled): one kind from the API into the sink."""

    def __init__(
        self,
        api: KindApi,
        reconciler: Reconciler,
        sink: EventSink,
        *,
        options: WatchOptions,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._api = api
        self._rec = reconciler
        self._sink = sink
        self._opts = options
        self._sleep = sleep
        self._backoff = Backoff(
            initial=options.backoff_initial_seconds, maximum=options.backoff_max_seconds, rng=rng
        )
        self.kind = reconciler.spec.kind
        self.stats = WatchStats()
        self.synced = asyncio.Event()  # set after the first complete re-list
        self.started = False  # the first re-list has begun
        self._relist_requested = False
        self._watch_task: asyncio.Task[None] | None = None
        self._log = log.bind(kind=self.kind)

    @property
    def known_objects(self) -> int:
        return len(self._rec)

    @property
    def optional(self) -> bool:
        return self._rec.spec.optional

    @property
    def ready(self) -> bool:
        """Synced once, or a kind whose API is not served (yet)."""
        return self.synced.is_set() or (self.optional and not self.started)

    def distrust(self) -> None:
        """Someone else may have published this kind: the next re-list is a full one."""
        self._rec.distrust()

    def request_relist(self) -> None:
        """Re-list soon (diff mode when trusted): used when tenants of namespaces change."""
        self._relist_requested = True
        if self._watch_task is not None and not self._watch_task.done():
            self._watch_task.cancel()

    async def run(self) -> None:
        await self._wait_until_served()
        reason = "start"
        while True:
            try:
                self.started = True
                rv = await self._relist(reason)
                if self._relist_requested:  # asked for while listing: what we listed may be stale
                    raise RelistRequestedError()
                self._watch_task = asyncio.create_task(self._watch_from(rv))
                try:
                    await self._watch_task
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if (task is not None and task.cancelling()) or not self._relist_requested:
                        raise
                    raise RelistRequestedError() from None
                finally:
                    self._watch_task = None
            except RelistRequestedError:
                reason = "requested"
                self._relist_requested = False
                self._count_restart(reason)
                continue
            except PublishError as exc:
                self._rec.distrust()
                reason = "publish-failed"
                self._restart_log(reason, exc)
            except ResourceExpiredError as exc:
                reason = "expired"
                self._restart_log(reason, exc)
            except IdleWatchError as exc:
                reason = "idle"
                self._restart_log(reason, exc)
            except Exception as exc:  # WatchError, a dropped connection, any client error
                reason = "error"
                self._restart_log(reason, exc)
            await self._sleep(self._backoff.next())

    async def _wait_until_served(self) -> None:
        while True:
            try:
                if await self._api.available():
                    return
                self._log.info("kind not served, waiting", poll_s=self._opts.absent_poll_seconds)
                await self._sleep(self._opts.absent_poll_seconds)
            except Exception as exc:  # the API server is unreachable: try again later
                self._log.warning("discovery failed", error=repr(exc))
                await self._sleep(self._backoff.next())

    async def _relist(self, reason: str) -> str:
        started = time.perf_counter()
        relist = None
        published = 0
        async for page in self._api.list_pages(page_size=self._opts.page_size):
            if relist is None:
                relist = self._rec.begin_relist(page.resource_version)
                published += await self._publish(relist.start())
            for item in page.items:
                published += await self._publish(relist.item(item))
        if relist is None:
            raise WatchError("list returned no page")
        published += await self._publish(relist.finish())
        self.stats.relists += 1
        self.stats.last_resource_version = relist.resource_version
        self._log.info(
            "relist",
            reason=reason,
            full=relist.full,
            listed=relist.listed,
            published=published,
            known=len(self._rec),
            resource_version=relist.resource_version,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        self.synced.set()
        return relist.resource_version

    async def _watch_from(self, resource_version: str) -> None:
        rv = resource_version
        loop = asyncio.get_running_loop()
        while True:
            stream = self._api.watch(
                resource_version=rv, timeout_seconds=self._opts.watch_timeout_seconds
            )
            try:
                async with asyncio.timeout(self._opts.idle_timeout_seconds) as idle:
                    async for event in stream:
                        rv = await self._handle(event) or rv
                        self.stats.last_resource_version = rv
                        idle.reschedule(loop.time() + self._opts.idle_timeout_seconds)
            except TimeoutError as exc:
                raise IdleWatchError(f"no event for {self._opts.idle_timeout_seconds}s") from exc
            finally:
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    await aclose()
            # The server ended the stream (its timeout): resume where we are.

    async def _handle(self, event: RawEvent) -> str | None:
        """Publish what `event` means; the resourceVersion to resume from, if it has one."""
        obj = event.object
        if event.type == "ERROR":
            code = obj.get("code")
            if code == 410:
                raise ResourceExpiredError(str(obj.get("message", "410 Gone")))
            raise WatchError(f"watch ERROR event: {code} {obj.get('message')}")
        rv = _resource_version(obj)
        if event.type == "BOOKMARK":
            self._backoff.reset()
            return rv
        if event.type not in ("ADDED", "MODIFIED", "DELETED"):
            raise WatchError(f"unknown watch event type {event.type!r}")
        started = time.perf_counter()
        envelopes = self._rec.event(event.type, obj)
        published = await self._publish(envelopes)
        self._backoff.reset()
        self.stats.events += 1
        meta = obj.get("metadata") or {}
        self._log.debug(
            "event",
            type=event.type,
            namespace=meta.get("namespace"),
            name=meta.get("name"),
            resource_version=rv,
            tenant=envelopes[-1].tenant if envelopes else None,
            published=published,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )
        return rv

    async def _publish(self, envelopes: list[Envelope]) -> int:
        for envelope in envelopes:
            await self._sink.publish(envelope)
        self.stats.published += len(envelopes)
        return len(envelopes)

    def _count_restart(self, reason: str) -> None:
        self.stats.restarts += 1
        self.stats.restart_reasons[reason] = self.stats.restart_reasons.get(reason, 0) + 1

    def _restart_log(self, reason: str, exc: BaseException) -> None:
        self._count_restart(reason)
        self._log.warning("watch restart", reason=reason, error=repr(exc))


def _resource_version(obj: Any) -> str | None:
    meta = obj.get("metadata") if hasattr(obj, "get") else None
    rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
    return rv if isinstance(rv, str) and rv else None
