"""Composition root: the real adapters (kubernetes_asyncio, aiokafka) wired into the service."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from typing import Any

import structlog
from opentelemetry import trace

from ripple_common.health import HealthServer
from ripple_common.lifecycle import Lifecycle
from ripple_watcher.kafka import make_producer, message_limit
from ripple_watcher.kinds import KindSpec, kinds_by_name
from ripple_watcher.kube import KubeKindApi, KubeLeaseApi, NamespacedKindApi, make_api_client
from ripple_watcher.leases import Elector
from ripple_watcher.ports import KindApi
from ripple_watcher.publisher import KafkaSink
from ripple_watcher.service import (
    WatcherGroup,
    ingress_filter_from,
    resolver_from,
    sealer_from,
    watch_options,
)
from ripple_watcher.settings import WatcherSettings

log = structlog.get_logger(__name__)


async def serve(
    lc: Lifecycle,
    settings: WatcherSettings,
    *,
    tracer: trace.Tracer | None = None,
    wrap_api: Callable[[KindApi], KindApi] | None = None,
    on_group: Callable[[WatcherGroup], None] | None = None,
) -> None:
    """Start the clients, watch until SIGTERM, then stop intake and flush (lc closes the rest
    in reverse order: producer stop flushes and closes, then the API client).

    `wrap_api` and `on_group` are seams for tests (fault injection, watch statistics)."""
    wrap: Callable[[KindApi], KindApi] = wrap_api or (lambda api: api)
    specs = kinds_by_name(settings.kinds)
    sealer = sealer_from(settings, specs)
    api_client = await make_api_client(settings.kubeconfig)
    lc.on_close(api_client.close)
    producer = await lc.start(make_producer(settings), name="kafka producer")
    limit = await message_limit(settings, producer)
    resolver = resolver_from(settings)

    def api_for(spec: KindSpec) -> KindApi:
        if spec.kind == "Secret" and settings.secrets_per_namespace:
            return wrap(
                NamespacedKindApi(api_client, spec, namespaces=resolver.selected_namespaces)
            )
        return wrap(KubeKindApi(api_client, spec))

    group = WatcherGroup(
        specs,
        api_for=api_for,
        sink_for=lambda spec: KafkaSink(
            producer,
            topic=settings.topic,
            max_in_flight=settings.max_in_flight,
            tracer=tracer,
            limit=limit,
        ),
        resolver=resolver,
        sealer=sealer,
        options=watch_options(settings),
        flush_timeout=settings.stop_flush_timeout_seconds,
        elector_for=_electors(settings, api_client),
        ingress_classes=ingress_filter_from(settings),
    )
    if settings.health_port:
        health = HealthServer(
            host=settings.health_host, port=settings.health_port, routes=group.health_routes()
        )
        await lc.start(health, name="health server")
    if on_group is not None:
        on_group(group)
    log.info(
        "watching",
        kinds=[s.kind for s in specs],
        topic=settings.topic,
        max_message_bytes=limit.max_message_bytes,
        compression=settings.kafka_compression.value,
        ingress_classes=sorted(settings.ingress_classes or ()) or None,
        namespace_selector=settings.namespace_selector,
    )
    try:
        await group.run(lc.stopping)
    finally:
        log.info("watcher stopped")


def _electors(settings: WatcherSettings, api_client: Any) -> Callable[[KindSpec], Elector] | None:
    if settings.lease_namespace is None:
        return None
    leases = KubeLeaseApi(api_client, namespace=settings.lease_namespace)
    identity = settings.identity or (f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}")

    def elector_for(spec: KindSpec) -> Elector:
        return Elector(
            leases,
            name=f"ripple-watcher-{spec.kind.lower()}",
            identity=identity,
            duration_seconds=settings.lease_duration_seconds,
            renew_interval_seconds=settings.lease_renew_seconds,
        )

    return elector_for
