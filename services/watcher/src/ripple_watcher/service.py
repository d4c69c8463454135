"""The watcher service: every kind's watch loop under one lifecycle."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import structlog

from ripple_common.envelope import Envelope
from ripple_common.health import Route
from ripple_common.sealing import Sealer
from ripple_common.sealing import sealer_from as sealer_of
from ripple_watcher.health import readiness, render_metrics
from ripple_watcher.kinds import NAMESPACE, KindSpec
from ripple_watcher.leases import Elector
from ripple_watcher.ports import EventSink, KindApi, PublishError
from ripple_watcher.publisher import SinkStats
from ripple_watcher.reconcile import Reconciler
from ripple_watcher.scope import IngressClassFilter
from ripple_watcher.selectors import parse_selector
from ripple_watcher.settings import WatcherSettings
from ripple_watcher.tenancy import TenantResolver
from ripple_watcher.watchloop import KindWatcher, WatchOptions

log = structlog.get_logger(__name__)


class ConfigError(ValueError):
    """Settings that cannot work (a Secret watch without a sealing key)."""


def watch_options(settings: WatcherSettings) -> WatchOptions:
    return WatchOptions(
        page_size=settings.page_size,
        watch_timeout_seconds=settings.watch_timeout_seconds,
        idle_timeout_seconds=settings.idle_timeout_seconds,
        backoff_initial_seconds=settings.backoff_initial_seconds,
        backoff_max_seconds=settings.backoff_max_seconds,
        absent_poll_seconds=settings.absent_poll_seconds,
    )


def sealer_from(settings: WatcherSettings, specs: Sequence[KindSpec]) -> Sealer | None:
    """The settings' sealer; a Secret watch without a sealing key is a ConfigError."""
    if settings.sealing_key is None and any(s.kind == "Secret" for s in specs):
        raise ConfigError(
            "watching Secrets needs RIPPLE_WATCHER_SEALING_KEY (base64 AES key): private "
            "keys are never published in plaintext"
        )
    return sealer_of(settings.sealing_key)


def resolver_from(settings: WatcherSettings) -> TenantResolver:
    """Tenant label and namespace selector (validated by the settings already)."""
    text = settings.namespace_selector
    selector = parse_selector(text) if text else None
    return TenantResolver(tenant_label=settings.tenant_label, selector=selector)


def ingress_filter_from(settings: WatcherSettings) -> IngressClassFilter | None:
    if settings.ingress_classes is None:
        return None
    return IngressClassFilter(
        classes=frozenset(settings.ingress_classes),
        include_unclassed=settings.ingress_include_unclassed,
    )


class NullSink:
    """Publishes nothing: the sink of the tenant-resolution feed."""

    async def publish(self, envelope: Envelope) -> None:
        return None

    async def flush(self) -> None:
        return None


class WatcherGroup:
    """All kind watchers. Namespaces sync first (they feed tenant resolution), and a namespace
    whose tenant changes makes the other kinds re-list (diff) to re-key its objects.

    With `elector_for`, each published kind runs only while this replica holds that kind's
    Lease; tenant resolution then comes from a separate, unpublished Namespace watch that
    every replica runs (a standby must know tenants the moment it takes over). The same feed
    serves a tenant label or a namespace selector when Namespaces themselves are not published.
    A namespace entering or leaving the selector is handled like a tenant change: the other
    kinds re-list, which publishes its objects as ADDED or DELETED."""

    def __init__(
        self,
        specs: Sequence[KindSpec],
        *,
        api_for: Callable[[KindSpec], KindApi],
        sink_for: Callable[[KindSpec], EventSink],
        resolver: TenantResolver,
        sealer: Sealer | None,
        options: WatchOptions,
        flush_timeout: float = 10.0,
        elector_for: Callable[[KindSpec], Elector] | None = None,
        ingress_classes: IngressClassFilter | None = None,
    ) -> None:
        self._flush_timeout = flush_timeout
        self.watchers: list[KindWatcher] = []
        self.sinks: list[EventSink] = []
        self.electors: dict[str, Elector] = {}
        leased = elector_for is not None
        for spec in specs:
            sink = sink_for(spec)
            notify = spec.kind == "Namespace" and not leased
            reconciler = Reconciler(
                spec,
                resolver=resolver,
                sealer=sealer,
                on_tenant_change=self._tenant_changed if notify else None,
                ingress_classes=ingress_classes,
            )
            self.sinks.append(sink)
            self.watchers.append(KindWatcher(api_for(spec), reconciler, sink, options=options))
            if elector_for is not None:
                self.electors[spec.kind] = elector_for(spec)
        self.feed: KindWatcher | None = None
        publishes_namespaces = any(spec.kind == "Namespace" for spec in specs)
        if leased or (resolver.needs_namespaces and not publishes_namespaces):
            feed = Reconciler(
                NAMESPACE, resolver=resolver, sealer=None, on_tenant_change=self._tenant_changed
            )
            self.feed = KindWatcher(api_for(NAMESPACE), feed, NullSink(), options=options)

    def is_standby(self, w: KindWatcher) -> bool:
        """Led by another replica (this one holds no lease for the kind)."""
        elector = self.electors.get(w.kind)
        return elector is not None and not elector.leading

    def health_routes(self) -> dict[str, Route]:
        """/healthz, /readyz and /metrics for the HealthServer."""
        stats: dict[str, SinkStats | None] = {}
        for w, sink in zip(self.watchers, self.sinks, strict=True):
            found = getattr(sink, "stats", None)
            stats[w.kind] = found if isinstance(found, SinkStats) else None
        return {
            "/healthz": lambda: (200, "ok\n"),
            "/readyz": lambda: readiness(self.watchers, standby=self.is_standby),
            "/metrics": lambda: render_metrics(self.watchers, stats),
        }

    def watcher(self, kind: str) -> KindWatcher:
        return next(w for w in self.watchers if w.kind == kind)

    def _tenant_changed(self, namespace: str) -> None:
        log.info("namespace tenant or scope changed", namespace=namespace)
        for w in self.watchers:
            if w.kind != "Namespace" and w.started and not self.is_standby(w):
                w.request_relist()

    async def run(self, stopping: asyncio.Event) -> None:
        """Watch until `stopping` is set; then cancel the watches and flush the sinks."""
        tasks: list[asyncio.Task[None]] = []
        stop_wait = asyncio.create_task(stopping.wait())
        try:
            if self.feed is not None:
                first, rest = [self.feed], list(self.watchers)
                tasks.append(asyncio.create_task(self.feed.run(), name="tenant feed"))
            else:
                first = [w for w in self.watchers if w.kind == "Namespace"]
                rest = [w for w in self.watchers if w.kind != "Namespace"]
                for w in first:
                    tasks.append(asyncio.create_task(self._run(w), name=f"watch {w.kind}"))
            if first:
                synced = asyncio.create_task(first[0].synced.wait())
                await asyncio.wait([synced, stop_wait, *tasks], return_when=asyncio.FIRST_COMPLETED)
                synced.cancel()
            if not stopping.is_set():
                for w in rest:
                    tasks.append(asyncio.create_task(self._run(w), name=f"watch {w.kind}"))
                done, _ = await asyncio.wait(
                    [stop_wait, *tasks], return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    if task is not stop_wait:
                        task.result()  # a watch loop only ends by a bug: let it surface
                        raise RuntimeError(f"{task.get_name()} ended")
        finally:
            stop_wait.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.flush()

    async def _run(self, w: KindWatcher) -> None:
        elector = self.electors.get(w.kind)
        if elector is None:
            await w.run()
        else:
            # Another replica published meanwhile: the next turn re-lists in full.
            await elector.run_while_leading(w.run, on_lost=w.distrust)

    async def flush(self) -> None:
        for w, sink in zip(self.watchers, self.sinks, strict=True):
            try:
                async with asyncio.timeout(self._flush_timeout):
                    await sink.flush()
            except (PublishError, TimeoutError) as exc:
                log.error("flush failed", kind=w.kind, error=repr(exc))
