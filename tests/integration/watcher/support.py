"""Helpers for the watcher's integration tests: a Kafka topic per test, the watcher run
in-process, an envelope reader, Kubernetes object builders, and a reference model of what a
translator holds after applying the envelopes (the relist-marker contract)."""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from kubernetes_asyncio import client, config
from opentelemetry import trace

from ripple_common.envelope import Envelope, EventType
from ripple_common.lifecycle import Lifecycle
from ripple_watcher.app import serve
from ripple_watcher.ports import KindApi
from ripple_watcher.service import WatcherGroup
from ripple_watcher.settings import WatcherSettings
from tests.conftest import StackEnv
from tests.unit.xds import certs
from tests.waiting import eventually

TENANT_LABEL = "ripple.test/tenant"
# The name of fence objects (`EnvelopeLog.fence`), written last to prove nothing else came.
FENCE = "zz-fence"
CORE_KINDS = ("Namespace", "IngressClass", "Ingress", "Service", "EndpointSlice", "Secret")
# A real pair: the translator serves a TLS Secret only when its key matches its certificate.
_PAIR = certs.self_signed("a.replay.test", "*.replay.test")
KEY_PEM = _PAIR.private_key
CERT_PEM = _PAIR.certificate


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def make_topic(bootstrap: str, *, partitions: int = 3) -> str:
    topic = unique("it-watcher")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name=topic, num_partitions=partitions, replication_factor=1)]
        )
    finally:
        await admin.close()
    return topic


async def delete_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()


def watcher_settings(stack: StackEnv, topic: str, **overrides: Any) -> WatcherSettings:
    values: dict[str, Any] = {
        "kubeconfig": stack["KUBECONFIG"],
        "kafka_bootstrap": stack["RIPPLE_KAFKA_BOOTSTRAP"],
        "topic": topic,
        "kinds": CORE_KINDS,
        "tenant_label": TENANT_LABEL,
        "sealing_key": base64.b64encode(os.urandom(32)).decode(),
        "linger_ms": 1,
        "backoff_initial_seconds": 0.05,
        "backoff_max_seconds": 1.0,
    }
    values.update(overrides)
    return WatcherSettings(**values)


@dataclass
class RunningWatcher:
    group: WatcherGroup
    lifecycle: Lifecycle
    task: asyncio.Task[None]

    async def synced(self, *, within: float = 30.0) -> None:
        """Every kind listed once. Not waited for: kinds another replica leads, and optional
        kinds (Gateway API), whose CRDs may not be installed (wait on their `synced`)."""
        async with asyncio.timeout(within):
            if self.group.feed is not None:
                await self.group.feed.synced.wait()
            for w in self.group.watchers:
                if not self.group.electors and not w.optional:
                    await w.synced.wait()


@asynccontextmanager
async def running_watcher(
    settings: WatcherSettings,
    *,
    tracer: trace.Tracer | None = None,
    wrap_api: Callable[[KindApi], KindApi] | None = None,
) -> AsyncIterator[RunningWatcher]:
    """The watcher service in this process until the block ends (then stopped as on SIGTERM)."""
    lc = Lifecycle()
    groups: list[WatcherGroup] = []
    task = asyncio.create_task(
        serve(lc, settings, tracer=tracer, wrap_api=wrap_api, on_group=groups.append)
    )

    def started() -> bool:
        if task.done():
            task.result()  # raises what stopped it
        return bool(groups)

    try:
        await eventually(started, within_s=30, every_s=0.01, what="the watcher's group started")
        running = RunningWatcher(group=groups[0], lifecycle=lc, task=task)
        await running.synced()
        yield running
    finally:
        lc.request_stop()
        try:
            await asyncio.wait_for(task, 30)
        finally:
            await lc.aclose()


@dataclass(frozen=True, slots=True)
class Record:
    partition: int
    offset: int
    key: bytes | None
    raw: bytes
    headers: tuple[tuple[str, bytes], ...]
    envelope: Envelope


@dataclass
class EnvelopeLog:
    """Every record of a topic, read from the beginning of every partition, as it arrives.

    `of_tenant` and `summary` leave out fence objects (see `fence`); `records` has them."""

    records: list[Record] = field(default_factory=list)

    def of_tenant(self, tenant: str) -> list[Envelope]:
        return [
            r.envelope
            for r in self.records
            if r.envelope.tenant == tenant and r.envelope.name != FENCE
        ]

    def summary(self, tenant: str, kind: str | None = None) -> list[tuple[str, str, str]]:
        return [
            (e.type.value, e.kind, e.name)
            for e in self.of_tenant(tenant)
            if kind is None or e.kind == kind
        ]

    async def wait_for(
        self, predicate: Callable[[], bool], *, within: float = 20.0, what: str | None = None
    ) -> None:
        """`eventually(predicate)`; a failure shows the last records that arrived."""
        await eventually(predicate, within_s=within, every_s=0.02, what=what, detail=self._recent)

    def _recent(self) -> str:
        recent = [
            (
                r.partition,
                r.envelope.tenant,
                r.envelope.type.value,
                r.envelope.kind,
                r.envelope.name,
            )
            for r in self.records[-20:]
        ]
        return f"{len(self.records)} records, the last ones: {recent}"

    async def fence(self, kube: Kube, ns: str, kinds: Sequence[str] = ("Ingress",)) -> None:
        """Write a fence object (named `FENCE`) of each kind last in `ns` and wait until each
        has arrived. A kind's events come through one watch, in order, and a tenant's go to
        one partition, in order: so once its fence is in, every earlier event of that kind in
        the tenant is too, and "nothing else arrived" can be asserted at once, exactly."""
        writers = {
            "Ingress": lambda: kube.ingress(ns, FENCE, host=f"{FENCE}.example.test"),
            "Service": lambda: kube.service(ns, FENCE),
            "EndpointSlice": lambda: kube.endpoint_slice(ns, FENCE, service=FENCE),
            "Secret": lambda: kube.tls_secret(ns, FENCE),
        }
        for kind in kinds:
            await writers[kind]()

        def fenced() -> set[str]:
            return {
                r.envelope.kind
                for r in self.records
                if r.envelope.name == FENCE and r.envelope.namespace == ns
            }

        await self.wait_for(lambda: fenced() >= set(kinds), what=f"the fences {kinds} of {ns}")


@asynccontextmanager
async def envelope_log(
    bootstrap: str, topic: str, *, partitions: int = 3
) -> AsyncIterator[EnvelopeLog]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    log = EnvelopeLog()

    async def pump() -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            for _tp, recs in sorted(batch.items(), key=lambda kv: kv[0].partition):
                for rec in recs:
                    log.records.append(
                        Record(
                            partition=rec.partition,
                            offset=rec.offset,
                            key=rec.key,
                            raw=rec.value,
                            headers=tuple(rec.headers),
                            envelope=Envelope.from_bytes(rec.value),
                        )
                    )

    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        task = asyncio.create_task(pump())
        try:
            yield log
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await consumer.stop()


@dataclass
class Downstream:
    """Reference model of a translator applying envelopes partition by partition: upsert,
    delete, and after RELIST_FINISHED drop every object of the kind on that partition that was
    not seen since RELIST_STARTED."""

    objects: dict[tuple[int, str, str, str, str], Envelope] = field(default_factory=dict)
    _seen: dict[tuple[int, str], set[tuple[int, str, str, str, str]]] = field(default_factory=dict)

    def apply(self, partition: int, env: Envelope) -> None:
        key = (partition, env.tenant, env.kind, env.namespace or "", env.name)
        if env.type is EventType.RELIST_STARTED:
            self._seen[(partition, env.kind)] = set()
        elif env.type is EventType.RELIST_FINISHED:
            seen = self._seen.pop((partition, env.kind), set())
            for k in [k for k in self.objects if k[0] == partition and k[2] == env.kind]:
                if k not in seen:
                    del self.objects[k]
        elif env.type is EventType.DELETED:
            self.objects.pop(key, None)
        else:
            self.objects[key] = env
            if (partition, env.kind) in self._seen:
                self._seen[(partition, env.kind)].add(key)

    def names(self, tenant: str, kind: str) -> dict[str, Envelope]:
        return {k[4]: e for k, e in self.objects.items() if k[1] == tenant and k[2] == kind}


class Kube:
    """Thin helper over kubernetes_asyncio with dict manifests; remembers what to clean up."""

    def __init__(self, api_client: Any) -> None:
        self.api = api_client
        self.core = client.CoreV1Api(api_client)
        self.net = client.NetworkingV1Api(api_client)
        self.discovery = client.DiscoveryV1Api(api_client)
        self.namespaces: list[str] = []

    @classmethod
    @asynccontextmanager
    async def connect(cls, kubeconfig: str) -> AsyncIterator[Kube]:
        api_client = await config.new_client_from_config(config_file=kubeconfig)
        kube = cls(api_client)
        try:
            yield kube
        finally:
            for ns in kube.namespaces:
                # No namespace controller here: empty the namespace ourselves so later lists
                # (every test's watcher lists the whole cluster) stay small ...
                await kube.net.delete_collection_namespaced_ingress(ns)
                await kube.core.delete_collection_namespaced_secret(ns)
                await kube.discovery.delete_collection_namespaced_endpoint_slice(ns)
                for svc in (await kube.core.list_namespaced_service(ns)).items:
                    await kube.core.delete_namespaced_service(svc.metadata.name, ns)
                await kube.core.delete_namespace(ns)
                # ... and finish its deletion (the namespace controller's last step), so it
                # does not stay Terminating forever.
                finalize = {"metadata": {"name": ns}, "spec": {"finalizers": []}}
                await kube.core.replace_namespace_finalize(ns, cast(client.V1Namespace, finalize))
            await api_client.close()

    async def namespace(self, name: str, *, labels: Mapping[str, str] | None = None) -> str:
        body = {"metadata": {"name": name, "labels": dict(labels or {})}}
        await self.core.create_namespace(cast(client.V1Namespace, body))
        self.namespaces.append(name)
        return name

    async def ingress(self, ns: str, name: str, *, host: str) -> None:
        await self.net.create_namespaced_ingress(ns, cast(client.V1Ingress, ingress(name, host)))

    async def set_ingress_host(self, ns: str, name: str, *, host: str) -> None:
        await self.net.patch_namespaced_ingress(name, ns, {"spec": ingress(name, host)["spec"]})

    async def delete_ingress(self, ns: str, name: str) -> None:
        await self.net.delete_namespaced_ingress(name, ns)

    async def service(self, ns: str, name: str) -> None:
        body = {
            "metadata": {"name": name},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
        }
        await self.core.create_namespaced_service(ns, cast(client.V1Service, body))

    async def endpoint_slice(self, ns: str, name: str, *, service: str) -> None:
        body = {
            "metadata": {"name": name, "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "endpoints": [endpoint(ready=True, node="node-1")],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        }
        await self.discovery.create_namespaced_endpoint_slice(
            ns, cast(client.V1EndpointSlice, body)
        )

    async def set_endpoint(self, ns: str, name: str, *, ready: bool, node: str) -> None:
        body = {"endpoints": [endpoint(ready=ready, node=node)]}
        await self.discovery.patch_namespaced_endpoint_slice(name, ns, body)

    async def tls_secret(self, ns: str, name: str, *, last_applied: bool = False) -> None:
        data = {
            "tls.crt": base64.b64encode(CERT_PEM).decode(),
            "tls.key": base64.b64encode(KEY_PEM).decode(),
        }
        meta: dict[str, Any] = {"name": name}
        if last_applied:  # what `kubectl apply` leaves: the whole manifest, key included
            meta["annotations"] = {
                "kubectl.kubernetes.io/last-applied-configuration": str(
                    {"data": {"tls.key": KEY_PEM.decode()}}
                )
            }
        body = {"metadata": meta, "type": "kubernetes.io/tls", "data": data}
        await self.core.create_namespaced_secret(ns, cast(client.V1Secret, body))


def ingress(name: str, host: str) -> dict[str, Any]:
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    return {
        "metadata": {"name": name},
        "spec": {
            "rules": [
                {
                    "host": host,
                    "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
                }
            ]
        },
    }


def endpoint(*, ready: bool, node: str) -> dict[str, Any]:
    # Never loopback: the apiserver rejects 127.0.0.0/8 in EndpointSlices.
    return {
        "addresses": ["198.18.0.2"],
        "conditions": {"ready": ready, "serving": ready, "terminating": False},
        "nodeName": node,
    }
