"""Composition root of the xds service: Redis, the snapshot cache, the Redis follower, the
ADS server and the health endpoint under `ripple_common.lifecycle`.

Start order: Redis (ping), health endpoint (/readyz answers 503 meanwhile), the gateway's
HTTP listener into the cache, the initial load of every tenant, then the ADS server, then
ready; the follower runs from the position the load covered. SIGTERM: /readyz turns 503, the
ADS server stops accepting and sends GOAWAY (open streams get `shutdown_grace_s` to end; the
follower keeps feeding them meanwhile), then the follower stops, then the health endpoint and
Redis (reverse start order); `ripple_common.entrypoint` flushes the tracer last."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog
from opentelemetry import trace

from ripple_common.health import HealthServer
from ripple_common.lifecycle import Lifecycle
from ripple_common.redis_client import RedisClient
from ripple_common.resources import Resource
from ripple_common.sealing import sealer_from
from ripple_common.store_contract import KeyLayout
from ripple_xds.default_certificate import default_secret, generate_fake
from ripple_xds.default_certificate_store import shared_pair
from ripple_xds.edge import client_address, default_certificate, external_name_gate
from ripple_xds.gateway import http_listener
from ripple_xds.https import HttpsFeed, HttpsSettings
from ripple_xds.identity import GatewayPolicy
from ripple_xds.propagation import Propagation, PropagationMetrics, TraceReporter
from ripple_xds.secrets import SecretOpener
from ripple_xds.server import XdsServer, server_credentials
from ripple_xds.service import Follower, XdsService, applied_hooks, applied_tracer
from ripple_xds.settings import XdsSettings
from ripple_xds.snapshot import SnapshotCache
from ripple_xds.source import RedisSource
from ripple_xds.stream_log import XdsStats

log = structlog.get_logger("ripple_xds.app")


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


async def shared_default_certificate(settings: XdsSettings, client: aioredis.Redis) -> Resource:
    """The configured default certificate, else a generated one shared by every replica
    through Redis when a sealing key seals its key there (`default_certificate_store`)."""
    sealer = sealer_from(settings.sealing_key)
    if settings.default_certificate_file is not None or sealer is None:
        return default_certificate(settings)
    layout = KeyLayout(prefix=settings.redis_prefix)
    return default_secret(*await shared_pair(client, layout, sealer, generate_fake()))


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
    opener = SecretOpener(sealer_from(settings.sealing_key), clusters=external_name_gate(settings))
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
        tenants=policy.tenant_filter(),  # a gateway group's replica holds its tenants only
    )
    server = XdsServer(
        cache,
        host=address.host,
        port=address.port,
        stats=xds_stats,
        grace_seconds=settings.shutdown_grace_s,
        max_request_bytes=settings.max_request_bytes,
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
    """Start everything, then serve until SIGTERM or until following Redis fails."""
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
