"""Composition root of the translator: the Redis adapters (the tenant store, the partition
store, the loader, the host registry), the engine, the host-notice follower, the Kafka
member, the health endpoint and the consume loop under `ripple_common.lifecycle`, closed in
reverse start order (Kafka and Redis last)."""

from __future__ import annotations

import asyncio

import structlog

from ripple_common.health import HealthServer
from ripple_common.lifecycle import Lifecycle
from ripple_common.logs import configure_logging
from ripple_common.redis_client import RedisClient
from ripple_common.sealing import Sealer
from ripple_common.sealing import sealer_from as sealer_of_key
from ripple_common.telemetry import init_tracing
from ripple_translator.consumer import KafkaEventSource
from ripple_translator.engine import Engine
from ripple_translator.events import KubeEventPoster
from ripple_translator.health import health_routes
from ripple_translator.hosts import HostPolicy, NoticeFollower
from ripple_translator.metrics import TranslatorStats
from ripple_translator.reporting import EventReporter
from ripple_translator.service import ConsumeLoop
from ripple_translator.settings import TranslatorSettings
from ripple_translator.store import (
    KeyLayout,
    RedisHostRegistry,
    RedisPartitionStore,
    RedisTenantLoader,
    RedisTenantStore,
)
from ripple_translator.translate import ClassPolicy, GatewayPolicy, TranslateOptions
from ripple_translator.translate.default_backend import parse_default_backend
from ripple_translator.writer import AfterWrite, WriterConfig

log = structlog.get_logger("ripple_translator.app")
SERVICE = "ripple-translator"


def translate_options(settings: TranslatorSettings) -> TranslateOptions:
    return TranslateOptions(
        classes=ClassPolicy(
            controllers=settings.controllers,
            extra_class_names=settings.extra_class_names,
            watch_without_class=settings.watch_without_class,
        ),
        gateways=GatewayPolicy(class_names=settings.gateway_classes),
        default_backend=parse_default_backend(settings.default_backend_service)
        if settings.default_backend_service
        else None,
        upstream_keepalive_timeout_s=settings.upstream_keepalive_timeout_s,
    )


def writer_config(
    settings: TranslatorSettings, *, after_write: AfterWrite | None = None
) -> WriterConfig:
    return WriterConfig(
        options=translate_options(settings),
        sealer=sealer_from(settings),
        max_concurrent_writes=settings.max_concurrent_writes,
        host_policy=HostPolicy(
            tenant_domain=settings.host_tenant_domain, allowed=dict(settings.host_allowed)
        ),
        host_release_grace_s=settings.host_release_grace_s,
        after_write=after_write,
        pace_factor=settings.write_pace_factor,
        pace_min_s=settings.write_pace_min_s,
        offload_objects=settings.offload_objects,
    )


def sealer_from(settings: TranslatorSettings) -> Sealer | None:
    if settings.sealing_key is None:
        log.warning("no sealing key: sealed TLS private keys cannot be opened")
    return sealer_of_key(settings.sealing_key)


async def start_translator(
    lc: Lifecycle, settings: TranslatorSettings, *, after_write: AfterWrite | None = None
) -> ConsumeLoop:
    """Start Redis, the engine, the Kafka member and the loop; the lifecycle closes them.
    `after_write` is called once a tenant version is durable, before its offset is committed
    (tests use it to crash there: tests/integration/translator_service/crashing_translator.py)."""
    redis = await lc.start(
        RedisClient(
            settings.redis_url,
            max_connections=settings.redis_max_connections,
            pool_timeout_s=settings.redis_pool_timeout_s,
        ),
        name="redis",
    )
    layout = KeyLayout(prefix=settings.redis_prefix)
    stats = TranslatorStats()
    reporter: EventReporter | None = None
    if settings.events_enabled:
        poster = await lc.start(KubeEventPoster(settings.kubeconfig), name="kubernetes events")
        reporter = await lc.start(
            EventReporter(
                poster,
                stats=stats,
                rate_per_s=settings.events_rate_per_s,
                repeat_after_s=settings.events_repeat_after_s,
            ),
            name="event reporter",
        )
    hosts = (
        RedisHostRegistry(redis.client, layout=layout, stream_maxlen=settings.stream_maxlen)
        if settings.host_arbitration
        else None
    )
    engine = Engine(
        store=RedisTenantStore(redis.client, layout=layout, stream_maxlen=settings.stream_maxlen),
        partitions=RedisPartitionStore(redis.client, layout=layout),
        config=writer_config(settings, after_write=after_write),
        loader=RedisTenantLoader(redis.client, layout=layout),
        hosts=hosts,
        on_diagnostics=reporter.report if reporter is not None else None,
        stats=stats,
    )
    if hosts is not None:
        await lc.start(
            NoticeFollower(hosts, engine, block_ms=settings.notice_block_ms),
            name="host notices",
        )
    source = await lc.start(
        KafkaEventSource(
            bootstrap=settings.kafka_bootstrap,
            topic=settings.topic,
            group_id=settings.group_id,
            handler=engine,
            revoke_timeout_s=settings.revoke_timeout_s,
            security=settings.kafka_security(),
            tuning=settings.group_tuning(),
            client_id=settings.group_instance_id or "ripple-translator",
        ),
        name="kafka consumer",
    )
    if settings.health_port:
        await lc.start(
            HealthServer(
                host=settings.health_host,
                port=settings.health_port,
                routes=health_routes(engine, source, lc),
            ),
            name="health endpoint",
        )
    return await lc.start(ConsumeLoop(engine, source, settings), name="consume loop")


async def serve(
    lc: Lifecycle, settings: TranslatorSettings, *, after_write: AfterWrite | None = None
) -> None:
    configure_logging(service=SERVICE, level=settings.log_level, json=settings.log_json)
    provider = init_tracing(service=SERVICE, otlp_endpoint=settings.otlp_endpoint)

    async def _flush() -> None:
        provider.shutdown()

    lc.on_close(_flush)
    loop = await start_translator(lc, settings, after_write=after_write)
    stopped = asyncio.create_task(lc.stopping.wait())
    await asyncio.wait({stopped, loop.task}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if loop.task.done() and not loop.task.cancelled():
        failure = loop.task.exception()
        if failure is not None:
            log.error("consume.failed", error=repr(failure))
            raise failure
