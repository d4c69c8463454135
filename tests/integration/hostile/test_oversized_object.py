"""Issue #14, point 3: one oversized object freezes no one.

A real watcher and a real translator run in this process against the stack (their own topic,
consumer group and Redis key prefix). A neighbour tenant creates Ingresses one at a time and
the test measures each create -> stored (the translator wrote the host's route to Redis)
before, during and after a hostile tenant

- creates an Ingress of ~1.3 MB JSON (8,000 long paths: compressible), and
- replaces its small, served Ingress `web` by one of ~1.3 MB of random paths, which does not
  fit in one message of the topic even compressed.

The topic keeps a 512 KiB max.message.bytes (an operator who did not raise it; with ripple's
2 MiB every object the API accepts fits compressed, so the limit is lowered here to make one
that does not): the watcher reads it at start and uses it. Expected: the compressible Ingress
is published compressed and served; the incompressible one is published as a TOO_LARGE
marker, the translator serves no version of it (the older small `web` is removed) and reports
an Event on it ("not served: object too large (N bytes > limit)"); the Ingress watch never
restarts; every neighbour change is stored within 10 s (the measured times are printed).

On the code before the fix the watcher's publish of the first big Ingress failed
(MessageSizeTooLargeError), the watch re-listed and failed again forever, and no neighbour
change after it was stored."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from kubernetes_asyncio import client

from ripple_common.lifecycle import Lifecycle
from ripple_translator.app import start_translator
from ripple_translator.settings import TranslatorSettings
from ripple_translator.store import KeyLayout, RedisTenantStore
from tests.conftest import StackEnv
from tests.integration.watcher.support import Kube, running_watcher, unique, watcher_settings
from tests.waiting import eventually

TOPIC_LIMIT = 512 * 1024
BOUND_S = 10.0
PARTITIONS = 3


@pytest.fixture
async def small_topic(stack: StackEnv) -> AsyncIterator[str]:
    """A topic whose messages may be 512 KiB at most, deleted afterwards."""
    name = f"it-hostile-{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack["RIPPLE_KAFKA_BOOTSTRAP"])
    await admin.start()
    try:
        topic = NewTopic(
            name=name,
            num_partitions=PARTITIONS,
            replication_factor=1,
            topic_configs={"max.message.bytes": str(TOPIC_LIMIT)},
        )
        await admin.create_topics([topic])
        yield name
        await admin.delete_topics([name])
    finally:
        await admin.close()


@pytest.fixture
async def kube(stack: StackEnv) -> AsyncIterator[Kube]:
    async with Kube.connect(stack["KUBECONFIG"]) as k:
        yield k


@asynccontextmanager
async def running_translator(settings: TranslatorSettings) -> AsyncIterator[None]:
    lc = Lifecycle()
    try:
        await start_translator(lc, settings)
        yield
    finally:
        lc.request_stop()
        await lc.aclose()


def backend() -> dict[str, Any]:
    return {"service": {"name": "web", "port": {"number": 80}}}


def ingress(name: str, host: str, paths: list[str]) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "rules": [
                {
                    "host": host,
                    "http": {
                        "paths": [
                            {"path": p, "pathType": "Prefix", "backend": backend()} for p in paths
                        ]
                    },
                }
            ]
        },
    }


def compressible_paths() -> list[str]:
    """8,000 long paths, ~1.3 MB of JSON that compresses well."""
    base = "/api/v1/tenants/catalogue/products"
    return [f"{base}/item-{i:05d}/reviews/latest/comments" for i in range(8000)]


def random_paths() -> list[str]:
    """~1.3 MB of random path characters: no codec makes it much smaller."""
    return [
        "/" + base64.urlsafe_b64encode(os.urandom(3000)).decode().rstrip("=") for _ in range(330)
    ]


def size_of(body: dict[str, Any]) -> int:
    return len(json.dumps(body, separators=(",", ":")))


class Stored:
    """What the translator wrote: the route resource names of a tenant."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self._store = RedisTenantStore(redis, layout=KeyLayout(prefix=prefix))

    async def hosts(self, tenant: str) -> set[str]:
        cp = await self._store.load_checkpoint(tenant)
        return {name for _, name in cp.resource_versions}

    async def wait(self, tenant: str, resource: str, *, present: bool, within: float) -> float:
        """Seconds until `resource` is (or is no longer) stored for `tenant`."""
        started = time.monotonic()
        await eventually(
            lambda: self.hosts(tenant),
            until=lambda hosts: (resource in hosts) == present,
            within_s=within,
            every_s=0.02,
            what=f"{tenant}: {resource} {'stored' if present else 'removed'}",
        )
        return time.monotonic() - started


async def events_on(kube: Kube, ns: str, name: str) -> list[Any]:
    listed = await client.EventsV1Api(kube.api).list_namespaced_event(ns)
    return [e for e in listed.items if e.regarding is not None and e.regarding.name == name]


async def test_an_oversized_ingress_freezes_no_neighbour_and_gets_a_diagnostic(
    stack: StackEnv, small_topic: str, kube: Kube, redis_client: aioredis.Redis, prefix: str
) -> None:
    neighbour = await kube.namespace(unique("hx-nb"))
    hostile = await kube.namespace(unique("hx-evil"))
    for ns in (neighbour, hostile):
        await kube.service(ns, "web")
    net = kube.net
    stored = Stored(redis_client, prefix)
    watcher = watcher_settings(
        stack,
        small_topic,
        kinds=("Namespace", "IngressClass", "Ingress", "Service"),
        kafka_configure_topic=False,  # keep the topic's 512 KiB (read at start)
    )
    translator = TranslatorSettings(
        kafka_bootstrap=stack["RIPPLE_KAFKA_BOOTSTRAP"],
        redis_url=stack["RIPPLE_REDIS_URL"],
        topic=small_topic,
        group_id=f"it-hostile-{uuid.uuid4().hex[:8]}",
        redis_prefix=prefix,
        poll_ms=50,
        watch_without_class=True,
        events_enabled=True,
        kubeconfig=stack["KUBECONFIG"],
        events_rate_per_s=100,
    )
    times: dict[str, list[float]] = {"before": [], "during": [], "after": []}
    n = 0

    async def neighbour_change(phase: str) -> None:
        nonlocal n
        n += 1
        host = f"n{n}.{neighbour}.example.com"
        await net.create_namespaced_ingress(
            neighbour, cast(client.V1Ingress, ingress(f"n{n}", host, ["/"]))
        )
        took = await stored.wait(neighbour, f"{neighbour}/scope/{host}", present=True, within=30)
        times[phase].append(took)

    web_host = f"web.{hostile}.example.com"
    big_host = f"big.{hostile}.example.com"
    async with running_translator(translator), running_watcher(watcher) as running:
        await net.create_namespaced_ingress(
            hostile, cast(client.V1Ingress, ingress("web", web_host, ["/"]))
        )
        await stored.wait(hostile, f"{hostile}/scope/{web_host}", present=True, within=30)
        for _ in range(3):
            await neighbour_change("before")

        big = ingress("big", big_host, compressible_paths())
        huge = ingress("web", web_host, random_paths())
        assert size_of(big) > 1_250_000
        assert size_of(huge) > 1_250_000
        await net.create_namespaced_ingress(hostile, cast(client.V1Ingress, big))
        current = await net.read_namespaced_ingress("web", hostile)
        huge["metadata"]["resourceVersion"] = current.metadata.resource_version
        await net.replace_namespaced_ingress("web", hostile, cast(client.V1Ingress, huge))
        for _ in range(3):
            await neighbour_change("during")

        # The compressible one is served; no version of the incompressible one is.
        await stored.wait(hostile, f"{hostile}/scope/{big_host}", present=True, within=60)
        await stored.wait(hostile, f"{hostile}/scope/{web_host}", present=False, within=30)
        for _ in range(3):
            await neighbour_change("after")
        ingress_watch = running.group.watcher("Ingress")
        assert ingress_watch.stats.restarts == 0, ingress_watch.stats.restart_reasons

        found = await eventually(
            lambda: events_on(kube, hostile, "web"),
            within_s=20,
            every_s=0.1,
            what="an Event on the oversized Ingress",
        )

    (event,) = [e for e in found if e.reason == "ObjectTooLarge"]
    assert event.type == "Warning"
    assert event.regarding.kind == "Ingress"
    assert "not served: object too large (" in event.note
    assert f"> {TOPIC_LIMIT} bytes" in event.note
    print(
        "neighbour create -> stored (s):",
        {phase: [round(t, 3) for t in ts] for phase, ts in times.items()},
    )
    for phase, ts in times.items():
        assert all(t < BOUND_S for t in ts), (phase, ts)
