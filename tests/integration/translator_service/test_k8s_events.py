"""Diagnostics as `events.k8s.io/v1` Events in the stack's kube-apiserver: the Event regards
the Ingress, carries reason and note; the same problem reported again updates the one Event's
series count instead of creating another."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio import client

from ripple_translator.events import CONTROLLER, KubeEventPoster, api_client
from ripple_translator.metrics import TranslatorStats
from ripple_translator.reporting import EventReporter
from ripple_translator.translate import ObjectRef, Reason
from ripple_translator.translate.diagnostics import error
from tests.conftest import StackEnv


@pytest.fixture
async def namespace(stack: StackEnv) -> AsyncIterator[str]:
    name = f"it-ev-{uuid.uuid4().hex[:8]}"
    api = await api_client(stack["KUBECONFIG"])
    core = client.CoreV1Api(api)
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        await core.delete_namespace(name)
        await api.close()


async def test_a_diagnostic_becomes_one_event_on_the_ingress_counted_on_repeats(
    stack: StackEnv, namespace: str
) -> None:
    poster = KubeEventPoster(stack["KUBECONFIG"], instance="it-translator")
    await poster.start()
    stats = TranslatorStats()
    reporter = EventReporter(poster, stats=stats, repeat_after_s=0, rate_per_s=100)
    await reporter.start()
    diag = error(
        ObjectRef("Ingress", namespace, "web"),
        Reason.INVALID_ANNOTATION,
        "nginx.ingress.kubernetes.io/proxy-read-timeout: 'soon' is not a number; ignored",
    )
    try:
        reporter.report(namespace, [diag])
        assert await reporter.flush(timeout_s=10)
        reporter.report(namespace, [diag])
        assert await reporter.flush(timeout_s=10)
    finally:
        await reporter.stop()
        await poster.stop()
    assert (stats.k8s_events_posted, stats.k8s_events_failed) == (2, 0)

    api = await api_client(stack["KUBECONFIG"])
    try:
        listed = await client.EventsV1Api(api).list_namespaced_event(namespace)
    finally:
        await api.close()
    assert len(listed.items) == 1
    ev = listed.items[0]
    assert (ev.reason, ev.type, ev.reporting_controller) == (
        "InvalidAnnotation",
        "Warning",
        CONTROLLER,
    )
    assert "proxy-read-timeout" in ev.note
    assert (ev.regarding.kind, ev.regarding.name, ev.regarding.namespace) == (
        "Ingress",
        "web",
        namespace,
    )
    assert ev.regarding.api_version == "networking.k8s.io/v1"
    assert ev.series is not None
    assert ev.series.count == 2
