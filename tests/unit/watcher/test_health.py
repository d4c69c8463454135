from __future__ import annotations

import asyncio
import os

from opentelemetry.sdk.trace import TracerProvider

from ripple_common.envelope import Envelope, EventType
from ripple_common.sealing import Sealer
from ripple_watcher.health import readiness, render_metrics
from ripple_watcher.kinds import HTTP_ROUTE, INGRESS, KindSpec
from ripple_watcher.publisher import KafkaSink, SinkStats
from ripple_watcher.reconcile import Reconciler
from ripple_watcher.tenancy import TenantResolver
from ripple_watcher.watchloop import KindWatcher, WatchOptions
from tests.unit.watcher.fakes import FakeKindApi, RecordingSink
from tests.unit.watcher.test_publisher import FakeProducer


def _watcher(spec: KindSpec) -> KindWatcher:
    reconciler = Reconciler(
        spec, resolver=TenantResolver(tenant_label=None), sealer=Sealer(os.urandom(32))
    )
    api = FakeKindApi(listings=[("1", [])])
    return KindWatcher(api, reconciler, RecordingSink(), options=WatchOptions())


def test_not_ready_until_every_kind_listed() -> None:
    status, body = readiness([_watcher(INGRESS)])
    assert status == 503
    assert "Ingress" in body


def test_ready_once_listed() -> None:
    w = _watcher(INGRESS)
    w.synced.set()
    assert readiness([w])[0] == 200


def test_a_kind_whose_api_is_not_served_does_not_block_readiness() -> None:
    assert readiness([_watcher(HTTP_ROUTE)])[0] == 200


def test_metrics_count_restarts_by_reason_and_delivery_lag() -> None:
    w = _watcher(INGRESS)
    w.stats.restart_reasons["expired"] = 2
    stats = SinkStats(delivered=4, lag_sum_seconds=0.5, lag_max_seconds=0.25, too_large=1)
    _status, text = render_metrics([w], {"Ingress": stats})
    assert 'ripple_watcher_too_large_total{kind="Ingress"} 1' in text
    assert 'ripple_watcher_watch_restarts_total{kind="Ingress",reason="expired"} 2' in text
    assert 'ripple_watcher_delivery_lag_seconds_count{kind="Ingress"} 4' in text
    assert 'ripple_watcher_delivery_lag_seconds_max{kind="Ingress"} 0.25' in text


async def test_delivery_lag_is_recorded_when_kafka_acknowledges() -> None:
    producer = FakeProducer(auto_deliver=False)
    sink = KafkaSink(producer, topic="t", max_in_flight=5, tracer=TracerProvider().get_tracer("t"))
    env = Envelope(
        type=EventType.ADDED,
        kind="Ingress",
        tenant="a",
        namespace="a",
        name="web",
        uid="u",
        resource_version="1",
        observed_at_ns=1,
        object={},
    )
    await sink.publish(env)
    assert sink.stats.delivered == 0
    producer.sent[0].delivery.set_result(None)
    await asyncio.sleep(0)
    assert sink.stats.delivered == 1
    assert sink.stats.lag_max_seconds > 0
