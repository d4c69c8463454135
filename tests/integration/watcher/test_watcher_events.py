"""The watcher against the real kube-apiserver and Kafka: what comes out, in what order."""

from __future__ import annotations

from typing import cast

from kubernetes_asyncio import client
from opentelemetry.sdk.trace import TracerProvider

from ripple_common.envelope import CLUSTER_TENANT, EventType
from tests.conftest import StackEnv
from tests.integration.watcher.support import (
    TENANT_LABEL,
    Kube,
    envelope_log,
    ingress,
    running_watcher,
    unique,
    watcher_settings,
)


async def test_changes_arrive_exactly_and_in_order_per_tenant(
    stack: StackEnv, topic: str, kube: Kube
) -> None:
    a = await kube.namespace(unique("rw-a"))
    b = await kube.namespace(unique("rw-b"))
    settings = watcher_settings(stack, topic)
    async with envelope_log(settings.kafka_bootstrap, topic) as log, running_watcher(settings):
        await kube.service(a, "web")
        await kube.endpoint_slice(a, "web-1", service="web")
        await kube.ingress(a, "web", host="a.example.test")
        await kube.ingress(b, "api", host="b.example.test")
        await kube.set_ingress_host(a, "web", host="a2.example.test")
        await kube.tls_secret(a, "tls")
        await kube.delete_ingress(b, "api")
        # Only bookkeeping (the node) changes: not an event. Then readiness does: one event.
        await kube.set_endpoint(a, "web-1", ready=True, node="node-2")
        await kube.set_endpoint(a, "web-1", ready=False, node="node-2")
        # Nothing else: a fence of each kind, written last in the tenant, arrives after it.
        await log.fence(kube, a, ("Service", "EndpointSlice", "Ingress", "Secret"))
        await log.fence(kube, b)

    assert log.summary(a, "Service") == [("ADDED", "Service", "web")]
    assert log.summary(a, "EndpointSlice") == [
        ("ADDED", "EndpointSlice", "web-1"),
        ("MODIFIED", "EndpointSlice", "web-1"),
    ]
    assert log.summary(a, "Ingress") == [
        ("ADDED", "Ingress", "web"),
        ("MODIFIED", "Ingress", "web"),
    ]
    assert log.summary(a, "Secret") == [("ADDED", "Secret", "tls")]
    assert log.summary(b) == [("ADDED", "Ingress", "api"), ("DELETED", "Ingress", "api")]
    assert len(log.of_tenant(a)) == 6


async def test_a_tenant_stays_on_one_partition_keyed_by_tenant(
    stack: StackEnv, topic: str, kube: Kube
) -> None:
    a = await kube.namespace(unique("rw-a"))
    settings = watcher_settings(stack, topic)
    async with envelope_log(settings.kafka_bootstrap, topic) as log, running_watcher(settings):
        for i in range(5):
            await kube.ingress(a, f"web-{i}", host=f"w{i}.example.test")
        await log.wait_for(lambda: len(log.of_tenant(a)) == 5)

    records = [r for r in log.records if r.envelope.tenant == a]
    assert {r.partition for r in records} == {records[0].partition}
    assert {r.key for r in records} == {a.encode()}
    assert [r.envelope.name for r in records] == [f"web-{i}" for i in range(5)]


async def test_namespace_label_names_the_tenant(stack: StackEnv, topic: str, kube: Kube) -> None:
    tenant = unique("acme")
    ns = await kube.namespace(unique("rw-l"), labels={TENANT_LABEL: tenant})
    settings = watcher_settings(stack, topic)
    async with envelope_log(settings.kafka_bootstrap, topic) as log, running_watcher(settings):
        await kube.ingress(ns, "web", host="l.example.test")
        await log.wait_for(lambda: len(log.of_tenant(tenant)) == 1)

    (env,) = log.of_tenant(tenant)
    assert (env.namespace, env.name) == (ns, "web")
    assert log.of_tenant(ns) == []


async def test_cluster_scoped_objects_reach_every_partition(
    stack: StackEnv, topic: str, kube: Kube
) -> None:
    settings = watcher_settings(stack, topic)
    async with envelope_log(settings.kafka_bootstrap, topic) as log, running_watcher(settings):
        ns = await kube.namespace(unique("rw-c"))

        def copies() -> set[int]:
            return {
                r.partition
                for r in log.records
                if r.envelope.kind == "Namespace" and r.envelope.name == ns
            }

        await log.wait_for(lambda: len(copies()) == 3)

    added = [r.envelope for r in log.records if r.envelope.name == ns]
    assert {(e.type, e.tenant) for e in added} == {(EventType.ADDED, CLUSTER_TENANT)}


async def test_relist_markers_frame_every_kind_on_every_partition(
    stack: StackEnv, topic: str
) -> None:
    settings = watcher_settings(stack, topic)
    async with envelope_log(settings.kafka_bootstrap, topic) as log, running_watcher(settings):

        def finished() -> set[tuple[int, str]]:
            return {
                (r.partition, r.envelope.kind)
                for r in log.records
                if r.envelope.type is EventType.RELIST_FINISHED
            }

        await log.wait_for(lambda: len(finished()) == 3 * len(settings.kinds))

    assert finished() == {(p, k) for p in range(3) for k in settings.kinds}


async def test_each_event_carries_its_trace_context(
    stack: StackEnv, topic: str, kube: Kube
) -> None:
    a = await kube.namespace(unique("rw-t"))
    settings = watcher_settings(stack, topic)
    tracer = TracerProvider().get_tracer("it")
    async with (
        envelope_log(settings.kafka_bootstrap, topic) as log,
        running_watcher(settings, tracer=tracer),
    ):
        await kube.ingress(a, "web", host="t.example.test")
        await log.wait_for(lambda: len(log.of_tenant(a)) == 1)

    (record,) = [r for r in log.records if r.envelope.tenant == a]
    traceparent = dict(record.headers)["traceparent"].decode()
    assert traceparent.startswith("00-")
    assert len(traceparent.split("-")[1]) == 32


async def test_a_large_object_is_published_whole(stack: StackEnv, topic: str, kube: Kube) -> None:
    a = await kube.namespace(unique("rw-big"))
    big = "x" * 200_000  # a ~200 KiB watch line (annotations may total 256 KiB)
    settings = watcher_settings(stack, topic)
    async with envelope_log(settings.kafka_bootstrap, topic) as log, running_watcher(settings):
        body = ingress("big", "big.example.test")
        body["metadata"]["annotations"] = {"example.test/blob": big}
        await kube.net.create_namespaced_ingress(a, cast(client.V1Ingress, body))
        await log.wait_for(lambda: len(log.of_tenant(a)) == 1)

    (env,) = log.of_tenant(a)
    assert env.object is not None
    assert env.object["metadata"]["annotations"]["example.test/blob"] == big
