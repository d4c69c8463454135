"""The started parts of one xds process: the Redis follower as a lifecycle resource, the
applied-change hooks (the `xds.apply` span, propagation), and `XdsService`, which the health
routes read. `ripple_xds.app` wires them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import structlog
from opentelemetry import trace

from ripple_common.health import PromText, Route
from ripple_common.lifecycle import Lifecycle
from ripple_common.resources import TypeUrl
from ripple_common.store_contract import ChangeEntry
from ripple_common.telemetry import context_from_fields
from ripple_xds.health import MetricsView, readiness, render_metrics
from ripple_xds.identity import GatewayPolicy
from ripple_xds.propagation import PropagationMetrics
from ripple_xds.secrets import SecretStats
from ripple_xds.server import XdsServer
from ripple_xds.snapshot import CacheChange, SnapshotCache
from ripple_xds.source import AppliedCallback, RedisSource, format_id
from ripple_xds.status import ReplicaState, render_status
from ripple_xds.stream_log import XdsStats

log = structlog.get_logger("ripple_xds.service")
MAX_TRACED_RESOURCES = 20  # resource names on an xds.apply span


def applied_tracer(tracer: trace.Tracer) -> AppliedCallback:
    """One span per applied change, a child of the translation that wrote it (its trace
    context travels in the change entry)."""

    def on_applied(entry: ChangeEntry, change: CacheChange | None) -> None:
        changed = sorted(n for names in change.names.values() for n in names) if change else []
        span = tracer.start_span(
            "xds.apply",
            context=context_from_fields(entry.trace),
            attributes={
                "ripple.tenant": entry.tenant,
                "ripple.version": entry.version,
                "ripple.full": entry.full,
                "ripple.resources_changed": len(changed),
                "ripple.resources": changed[:MAX_TRACED_RESOURCES],
            },
        )
        span.end()

    return on_applied


def applied_hooks(*hooks: Callable[[ChangeEntry, CacheChange | None], object]) -> AppliedCallback:
    """One applied callback calling each of `hooks` in order."""

    def on_applied(entry: ChangeEntry, change: CacheChange | None) -> None:
        for hook in hooks:
            hook(entry, change)

    return on_applied


class Follower:
    """The Redis source as a lifecycle resource: `start` loads every tenant (returns when the
    cache holds them), then follows the change stream in a task; `stop` ends the follow."""

    def __init__(self, source: RedisSource, *, block_ms: int) -> None:
        self.source = source
        self._block_ms = block_ms
        self._task: asyncio.Task[None] | None = None

    @property
    def task(self) -> asyncio.Task[None]:
        assert self._task is not None, "follower not started"
        return self._task

    async def start(self) -> None:
        await self.source.load()
        self._task = asyncio.create_task(self.source.follow(), name="follow changes")

    async def stop(self) -> None:
        self.source.stop()  # not cancel: redis-py can swallow a cancellation mid-command
        if self._task is None:
            return
        done, _ = await asyncio.wait({self._task}, timeout=self._block_ms / 1000 + 5)
        if not done:
            log.warning("follower did not stop in time; cancelling")
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=5)


class XdsService:
    """The started parts of one xds process (the health routes read them)."""

    def __init__(
        self,
        *,
        cache: SnapshotCache,
        follower: Follower,
        server: XdsServer,
        lc: Lifecycle,
        propagation: PropagationMetrics | None = None,
        secrets: SecretStats | None = None,
        policy: GatewayPolicy | None = None,
        sla_s: float = 5.0,
    ) -> None:
        self.cache = cache
        self.policy = policy if policy is not None else GatewayPolicy()
        self.sla_s = sla_s
        self.propagation = propagation if propagation is not None else PropagationMetrics()
        self.secrets = secrets if secrets is not None else SecretStats()
        self.follower = follower
        self.server = server
        self._lc = lc
        self.serving = False

    @property
    def source(self) -> RedisSource:
        return self.follower.source

    @property
    def stats(self) -> XdsStats:
        return self.server.stats

    @property
    def ready(self) -> bool:
        return readiness(**self._readiness())[0] == 200

    def _readiness(self) -> dict[str, bool]:
        return {
            "loaded": self.source.ready.is_set(),
            "serving": self.serving,
            "stopping": self._lc.stopping.is_set(),
        }

    def resource_counts(self) -> Mapping[TypeUrl, int]:
        return {t: len(self.cache.names(t)) for t in TypeUrl}

    def health_routes(self) -> dict[str, Route]:
        return {
            "/healthz": lambda: (200, "ok\n"),
            "/readyz": lambda: readiness(**self._readiness()),
            "/metrics": self._metrics,
            "/debug/nodes": self._nodes,
        }

    def _nodes(self) -> tuple[int, str]:
        tracker = self.server.servicer.propagation
        return render_status(
            ReplicaState(
                streams=list(tracker.streams),
                versions=self.source.tenant_versions(),
                policy=self.policy,
                sla_s=self.sla_s,
                now_ns=tracker.now(),
                position=format_id(self.source.position),
                ready=self.ready,
            )
        )

    def _metrics(self) -> tuple[int, str]:
        status, body = render_metrics(
            MetricsView(
                xds=self.stats,
                source=self.source.stats,
                position=self.source.position,
                resources=self.resource_counts(),
                ready=self.ready,
                secrets=self.secrets,
            )
        )
        out = PromText("ripple_xds")
        self.propagation.render(out)
        return status, body + out.text()
