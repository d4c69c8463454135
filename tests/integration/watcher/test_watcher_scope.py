"""The opt-in scope against the real kube-apiserver and Kafka: an IngressClass filter and a
namespace selector, with objects moving in and out of scope."""

from __future__ import annotations

from typing import Any, cast

from kubernetes_asyncio import client

from ripple_common.envelope import CLUSTER_TENANT, EventType
from tests.conftest import StackEnv
from tests.integration.watcher.support import (
    FENCE,
    TENANT_LABEL,
    Downstream,
    EnvelopeLog,
    Kube,
    envelope_log,
    ingress,
    running_watcher,
    unique,
    watcher_settings,
)

SCOPE_LABEL = "ripple.test/scope"


def _downstream(log: EnvelopeLog) -> Downstream:
    model = Downstream()
    for record in log.records:
        model.apply(record.partition, record.envelope)
    return model


async def _create_ingress(
    kube: Kube, ns: str, name: str, *, cls: str | None = None, legacy: str | None = None
) -> None:
    body = ingress(name, f"{name}.example.test")
    if cls is not None:
        body["spec"]["ingressClassName"] = cls
    if legacy is not None:
        body["metadata"]["annotations"] = {"kubernetes.io/ingress.class": legacy}
    await kube.net.create_namespaced_ingress(ns, cast(client.V1Ingress, body))


async def _set_class(kube: Kube, ns: str, name: str, cls: str) -> None:
    await kube.net.patch_namespaced_ingress(name, ns, {"spec": {"ingressClassName": cls}})


async def _set_scope_label(kube: Kube, ns: str, value: str | None) -> None:
    patch: dict[str, Any] = {"metadata": {"labels": {SCOPE_LABEL: value}}}
    await kube.core.patch_namespace(ns, patch)


async def test_ingress_class_filter_publishes_only_its_classes(
    stack: StackEnv, topic: str, kube: Kube
) -> None:
    ns = await kube.namespace(unique("rw-cls"))
    mine, theirs = unique("ripple"), unique("other")
    settings = watcher_settings(stack, topic, ingress_classes=frozenset({mine}))
    async with envelope_log(settings.kafka_bootstrap, topic) as log, running_watcher(settings):
        await _create_ingress(kube, ns, "mine", cls=mine)
        await _create_ingress(kube, ns, "theirs", cls=theirs)
        await _create_ingress(kube, ns, "legacy", legacy=mine)
        await _create_ingress(kube, ns, "none")
        await log.wait_for(lambda: len(log.of_tenant(ns)) >= 2)
        await _set_class(kube, ns, "theirs", mine)  # moves in: ADDED
        await _set_class(kube, ns, "mine", theirs)  # moves out: DELETED
        await log.wait_for(lambda: len(log.of_tenant(ns)) >= 4)
        await _create_ingress(kube, ns, FENCE, cls=mine)  # last in the tenant: nothing else
        await log.wait_for(lambda: FENCE in _downstream(log).names(ns, "Ingress"))

    assert log.summary(ns) == [
        ("ADDED", "Ingress", "mine"),
        ("ADDED", "Ingress", "legacy"),
        ("ADDED", "Ingress", "theirs"),
        ("DELETED", "Ingress", "mine"),
    ]
    assert set(_downstream(log).names(ns, "Ingress")) == {"legacy", "theirs", FENCE}


async def test_namespace_selector_follows_namespace_labels(
    stack: StackEnv, topic: str, kube: Kube
) -> None:
    token = unique("s")  # only this test's namespaces match: other tests run concurrently
    inside = await kube.namespace(unique("rw-in"), labels={SCOPE_LABEL: token})
    outside = await kube.namespace(unique("rw-out"))
    await _create_ingress(kube, inside, "web")
    await _create_ingress(kube, outside, "web")
    settings = watcher_settings(
        stack, topic, namespace_selector=f"{SCOPE_LABEL} in ({token}), !ripple.test/never"
    )
    async with envelope_log(settings.kafka_bootstrap, topic) as log, running_watcher(settings):
        await log.wait_for(lambda: len(log.of_tenant(inside)) >= 1)
        await _set_scope_label(kube, outside, token)  # enters: its objects come out ADDED
        await log.wait_for(lambda: len(log.of_tenant(outside)) >= 1)
        await _create_ingress(kube, outside, "api")
        await _set_scope_label(kube, inside, None)  # leaves: its objects come out DELETED
        await log.wait_for(lambda: len(log.of_tenant(inside)) >= 2)
        await _create_ingress(kube, inside, "late")  # out of scope now: never published
        await log.wait_for(lambda: len(log.of_tenant(outside)) >= 2)
        # The fence: an in-scope namespace whose tenant is `inside` (the tenant label), so
        # its Ingress comes after "late" in the one Ingress watch and on the same partition.
        fence_ns = await kube.namespace(
            unique("rw-fence"), labels={SCOPE_LABEL: token, TENANT_LABEL: inside}
        )
        await log.fence(kube, fence_ns)

    assert log.summary(inside) == [("ADDED", "Ingress", "web"), ("DELETED", "Ingress", "web")]
    assert log.summary(outside) == [("ADDED", "Ingress", "web"), ("ADDED", "Ingress", "api")]
    downstream = _downstream(log)
    assert set(downstream.names(outside, "Ingress")) == {"web", "api"}
    assert set(downstream.names(inside, "Ingress")) == {FENCE}  # fence_ns's, nothing of inside
    # The Namespace objects themselves follow the selector (cluster tenant, every partition).
    namespaces = downstream.names(CLUSTER_TENANT, "Namespace")
    assert outside in namespaces
    assert inside not in namespaces
    inside_types = {
        r.envelope.type
        for r in log.records
        if r.envelope.kind == "Namespace" and r.envelope.name == inside
    }
    assert inside_types == {EventType.ADDED, EventType.DELETED}
