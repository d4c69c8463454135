"""Wiring: Redis, the snapshot cache, the Redis follower, the ADS server and the health
endpoint under `ripple_common.lifecycle`.

Start order: Redis (ping), health endpoint (/readyz answers 503 meanwhile), the gateway's
HTTP listener into the cache, the initial load of every tenant, then the ADS server, then
ready; the follower runs from the position the load covered. SIGTERM: /readyz turns 503, the
ADS server stops accepting and sends GOAWAY (open streams get `shutdown_grace_s` to end; the
follower keeps feeding them meanwhile), then the follower stops, then the health endpoint,
Redis and the tracer (reverse start order)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog
from opentelemetry import trace

from ripple_common.health import HealthServer, PromText, Route
from ripple_common.lifecycle import Lifecycle
from ripple_common.logs import configure_logging
from ripple_common.redis_client import redis_client
from ripple_common.resources import Resource, TypeUrl
from ripple_common.sealing import Sealer
from ripple_common.store_contract import ChangeEntry, KeyLayout
from ripple_common.telemetry import context_from_fields, init_tracing
from ripple_xds.default_certificate import default_secret, generate_fake
from ripple_xds.default_certificate_store import shared_pair
from ripple_xds.edge import client_address, default_certificate, external_name_gate
from ripple_xds.gateway import http_listener
from ripple_xds.health import MetricsView, readiness, render_metrics
from ripple_xds.https import HttpsFeed, HttpsSettings
from ripple_xds.identity import GatewayPolicy
from ripple_xds.propagation import Propagation, PropagationMetrics, TraceReporter
from ripple_xds.secrets import SecretOpener, SecretStats
from ripple_xds.server import XdsServer, XdsStats, server_credentials
from ripple_xds.settings import XdsSettings
from ripple_xds.snapshot import CacheChange, SnapshotCache
from ripple_xds.source import AppliedCallback, RedisSource, format_id
from ripple_xds.status import ReplicaState, render_status

log = structlog.get_logger("ripple_xds.service")
SERVICE = "ripple-xds"
MAX_TRACED_RESOURCES = 20  # resource names on an xds.apply span


@dataclass(frozen=True, slots=True)
class ListenAddress:
    host: str
    port: int


def parse_listen(value: str) -> ListenAddress:
    """`host:port` (IPv6 as `[::]:port`) as a ListenAddress; port 0 = any free port."""
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"listen address {value!r} is not host:port")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"listen address {value!r} has no numeric port") from None
    if not 0 <= number < 65536:
        raise ValueError(f"listen port {number} out of range")
    return ListenAddress(host=host, port=number)


def gateway_resources(settings: XdsSettings) -> list[Resource]:
    """What every gateway Envoy gets whatever the tenants: the plain-HTTP listener."""
    return [
        http_listener(
            address=settings.gateway_http_address,
            port=settings.gateway_http_port,
            client=client_address(settings),
        )
    ]


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


class RedisClient:
    """A redis-py client as a lifecycle resource (bytes, not decoded; a single node, a cluster
    or a Sentinel master by URL: `ripple_common.redis_client`)."""

    def __init__(self, url: str) -> None:
        self.client: aioredis.Redis = redis_client(url, decode_responses=False)

    async def start(self) -> None:
        await self.client.ping()

    async def stop(self) -> None:
        await self.client.aclose()


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


async def shared_default_certificate(settings: XdsSettings, client: aioredis.Redis) -> Resource:
    """The configured default certificate, else a generated one shared by every replica
    through Redis when a sealing key seals its key there (`default_certificate_store`)."""
    sealer = sealer_from(settings)
    if settings.default_certificate_file is not None or sealer is None:
        return default_certificate(settings)
    layout = KeyLayout(prefix=settings.redis_prefix)
    return default_secret(*await shared_pair(client, layout, sealer, generate_fake()))


def sealer_from(settings: XdsSettings) -> Sealer | None:
    if settings.sealing_key is None:
        return None
    return Sealer.from_base64(settings.sealing_key.get_secret_value())


def serves_secrets(settings: XdsSettings) -> bool:
    """Whether any client may be sent secrets: mTLS (every client verified) or the insecure
    development flag. Else no HTTPS listener is built (its certificates would never reach
    Envoy)."""
    return settings.mtls or settings.insecure_dev_secrets


def warn_insecure(settings: XdsSettings) -> None:
    """Say loudly at start what a server without mTLS gives to whoever reaches its port."""
    if settings.insecure_dev_secrets:
        log.warning(
            "INSECURE: RIPPLE_XDS_INSECURE_DEV_SECRETS=true serves every tenant's TLS private "
            "keys (SDS) to any client that reaches the ADS port without a client certificate; "
            "development only, never in production",
            listen=settings.listen,
            mtls=settings.mtls,
        )
    elif not settings.mtls:
        log.warning(
            "ADS without mTLS: any client that reaches the ADS port gets every tenant's routes "
            "and clusters; secrets (SDS) are refused and no HTTPS listener is built (set "
            "RIPPLE_XDS_TLS_CLIENT_CA_FILE, docs/xds.md)",
            listen=settings.listen,
            https_port=settings.gateway_https_port,
        )


def _closer(close: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def closed() -> None:
        close()

    return closed


async def start_xds(lc: Lifecycle, settings: XdsSettings) -> XdsService:
    """Start everything in order (see the module doc); the lifecycle closes it in reverse."""
    address = parse_listen(settings.listen)
    redis = await lc.start(RedisClient(settings.redis_url), name="redis")
    cache = SnapshotCache()
    cache.apply(upserts=gateway_resources(settings))
    policy = GatewayPolicy.of(settings.gateways)
    xds_stats = XdsStats()
    https_feed: HttpsFeed | None = None
    warn_insecure(settings)
    if settings.gateway_https_port and serves_secrets(settings):
        https = HttpsFeed(
            cache,
            HttpsSettings(
                address=settings.gateway_https_address or settings.gateway_http_address,
                port=settings.gateway_https_port,
                client=client_address(settings),
                default_certificate=await shared_default_certificate(settings, redis.client),
            ),
            schedule=asyncio.get_running_loop().call_soon,
            gateways=policy.all(),
            nack_tenants=xds_stats.nack_tenants,
        )
        lc.on_close(_closer(https.close))
        https_feed = https
    tracer = trace.get_tracer("ripple_xds")
    metrics = PropagationMetrics(tenant_buckets=settings.tenant_buckets)
    propagation = Propagation(
        reporter=TraceReporter(tracer, metrics, sla_s=settings.sla_s),
        ttl_s=settings.propagation_ttl_s,
    )
    if https_feed is not None:  # a listener NACK quarantines the secrets at fault
        propagation.nack_listeners.append(https_feed.nacked)
    opener = SecretOpener(sealer_from(settings), clusters=external_name_gate(settings))
    source = RedisSource(
        redis.client,
        cache,
        layout=KeyLayout(prefix=settings.redis_prefix),
        block_ms=settings.block_ms,
        read_count=settings.read_count,
        load_batch=settings.load_batch,
        log_every=settings.log_every,
        on_applied=applied_hooks(applied_tracer(tracer), propagation.applied),
        prepare=opener,
    )
    server = XdsServer(
        cache,
        host=address.host,
        port=address.port,
        stats=xds_stats,
        grace_seconds=settings.shutdown_grace_s,
        require_node_id=settings.require_node_id,
        propagation=propagation,
        policy=policy,
        insecure_dev_secrets=settings.insecure_dev_secrets,
        credentials=server_credentials(
            cert=settings.tls_cert_file,
            key=settings.tls_key_file,
            client_ca=settings.tls_client_ca_file,
        ),
    )
    service = XdsService(
        cache=cache,
        follower=Follower(source, block_ms=settings.block_ms),
        server=server,
        lc=lc,
        propagation=metrics,
        secrets=opener.stats,
        policy=policy,
        sla_s=settings.sla_s,
    )
    if settings.health_port:
        await lc.start(
            HealthServer(
                host=settings.health_host,
                port=settings.health_port,
                routes=service.health_routes(),
            ),
            name="health endpoint",
        )
    await lc.start(service.follower, name="redis source")
    if lc.stopping.is_set():
        return service  # stopped during the load: never start serving
    await lc.start(server, name="ads server")
    if server.port == 0:
        raise RuntimeError(f"cannot listen on {settings.listen}")
    service.serving = True
    log.info(
        "ready",
        listen=f"{address.host}:{server.port}",
        tenants=source.stats.tenants_loaded,
        resources=len(cache),
    )
    return service


async def serve(lc: Lifecycle, settings: XdsSettings) -> None:
    configure_logging(service=SERVICE, level=settings.log_level, json=settings.log_json)
    provider = init_tracing(service=SERVICE, otlp_endpoint=settings.otlp_endpoint)

    async def _flush() -> None:
        provider.shutdown()

    lc.on_close(_flush)
    service = await start_xds(lc, settings)
    if not service.serving:
        return
    stopped = asyncio.create_task(lc.stopping.wait())
    following = service.follower.task
    await asyncio.wait({stopped, following}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if following.done() and not following.cancelled():
        failure = following.exception()
        if failure is not None:
            log.error("follow failed", error=repr(failure))
            raise failure
