"""Faults on the HA profile under churn: the real translator (`python -m ripple_translator`)
consumes a topic of 6 partitions (replication factor 3, min.insync.replicas 2) on the 3-node
Kafka cluster and writes to the Redis Cluster, while this test changes Ingresses all the time
(envelopes produced as the watcher does: acks=all, idempotent, keyed by tenant; the
apiserver is not involved, so the figures are the pipeline's from Kafka on). Meanwhile:

1. kill -9 of the broker leading most of the topic's partitions (restarted after a while);
2. kill -9 of the Redis master holding most of the tenants (its replica takes over; the old
   master is restarted and rejoins as a replica);
3. SIGSTOP of a broker for 10 s, then SIGCONT (the stand-in for a network partition: the
   node neither answers nor is known dead).

Then the churn stops and every tenant's stored routes must show the last change produced for
it (lost updates: must be 0), and equal what a fresh translator (new group, new prefix) makes
of the whole topic. The test prints the longest propagation stall (a change acknowledged by
Kafka until its route is in Redis), the failover time and the lost-update count."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from ripple_common.envelope import CLUSTER_TENANT, Envelope, EventType
from ripple_common.redis_client import redis_client
from ripple_common.resources import TypeUrl
from ripple_common.store_contract import LOAD_TENANT_LUA, KeyLayout, parse_tenant_state
from ripple_xds.snapshot import SnapshotCache
from ripple_xds.source import RedisSource
from tests.integration.ha.conftest import HaStack
from tests.unit.translator_service.support import ingress, ingress_class, service
from tests.waiting import eventually

PARTITIONS = 6
TENANTS = [f"ha-{i:02d}" for i in range(12)]
CHURN_PAUSE_S = 0.03
SEQ = re.compile(rb"/v(\d{6})")


def changed_ingress(tenant: str, seq: int) -> dict[str, Any]:
    """The tenant's one Ingress, its path carrying the change number (seen in the route)."""
    obj = ingress(tenant, "web", f"web.{tenant}.example.com")
    obj["spec"]["rules"][0]["http"]["paths"][0]["path"] = f"/v{seq:06d}"
    return obj


def envelope(tenant: str, obj: dict[str, Any], *, version: int, added: bool = False) -> Envelope:
    meta = obj["metadata"]
    return Envelope(
        type=EventType.ADDED if added else EventType.MODIFIED,
        kind=str(obj["kind"]),
        tenant=tenant,
        namespace=meta.get("namespace"),
        name=str(meta["name"]),
        uid=f"uid-{tenant}-{meta['name']}",
        resource_version=str(version),
        observed_at_ns=time.time_ns(),
        object=obj,
    )


@dataclass
class Churn:
    """Produces a change of one tenant's Ingress every few ms, round robin; remembers when
    Kafka acknowledged each (tenant, seq)."""

    producer: AIOKafkaProducer
    topic: str
    acked: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    attempted: dict[str, int] = field(default_factory=dict)
    send_errors: int = 0
    version: int = 1000

    async def send(self, env: Envelope, *, partition: int | None = None) -> None:
        await self.producer.send_and_wait(
            self.topic, value=env.to_bytes(), key=env.key, partition=partition
        )

    async def run(self, stop: asyncio.Event) -> None:
        i = 0
        while not stop.is_set():
            tenant = TENANTS[i % len(TENANTS)]
            i += 1
            seq = self.attempted.get(tenant, 0) + 1
            self.attempted[tenant] = seq
            self.version += 1
            try:
                await self.send(
                    envelope(tenant, changed_ingress(tenant, seq), version=self.version)
                )
            except KafkaError:
                self.send_errors += 1
                await asyncio.sleep(0.2)
                continue
            self.acked.setdefault(tenant, []).append((seq, time.monotonic()))
            await asyncio.sleep(CHURN_PAUSE_S)


@dataclass
class Watch:
    """Polls every tenant's stored state; per acknowledged change, the time until its route
    (or a later one of the same tenant) is in Redis."""

    client: aioredis.Redis
    layout: KeyLayout
    churn: Churn
    stored: dict[str, int] = field(default_factory=dict)
    longest_s: float = 0.0
    longest_at: str = ""
    phase: str = "warm-up"
    by_phase: dict[str, float] = field(default_factory=dict)
    errors: int = 0
    error_types: set[str] = field(default_factory=set)

    async def read(self) -> dict[str, int]:
        load = self.client.register_script(LOAD_TENANT_LUA)
        out: dict[str, int] = {}
        for tenant in TENANTS:
            state = parse_tenant_state(tenant, await load(keys=self.layout.tenant_keys(tenant)))
            seqs = [int(m) for r in state.resources for m in SEQ.findall(r.body)]
            out[tenant] = max(seqs, default=0)
        return out

    async def run(self, stop: asyncio.Event) -> None:
        seen_upto: dict[str, int] = {}
        while not stop.is_set():
            try:
                self.stored = await self.read()
            except Exception as exc:  # during a failover any client error: counted, go on
                self.errors += 1
                self.error_types.add(type(exc).__name__)
            now = time.monotonic()
            for tenant, acked in list(self.churn.acked.items()):
                stored = self.stored.get(tenant, 0)
                for idx in range(seen_upto.get(tenant, 0), len(acked)):
                    seq, at = acked[idx]
                    waited = now - at
                    if waited > self.by_phase.get(self.phase, 0.0):
                        self.by_phase[self.phase] = round(waited, 2)
                    if waited > self.longest_s and self.phase != "warm-up":
                        self.longest_s, self.longest_at = waited, self.phase
                    if seq > stored:
                        break  # still waiting; later ones waited less
                    seen_upto[tenant] = idx + 1
            await asyncio.sleep(0.1)


async def create_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    name=name,
                    num_partitions=PARTITIONS,
                    replication_factor=3,
                    topic_configs={"min.insync.replicas": "2"},
                )
            ]
        )
    finally:
        await admin.close()


async def leaders(bootstrap: str, topic: str) -> dict[int, int]:
    """Partition -> leader broker id (node id i is the HA profile's node kafka_ha-<i>)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return {int(p["partition"]): int(p["leader"]) for p in described["partitions"]}


def busiest(leaders_: dict[int, int]) -> int:
    counts: dict[int, int] = {}
    for broker in leaders_.values():
        counts[broker] = counts.get(broker, 0) + 1
    return max(sorted(counts), key=lambda b: counts[b])


async def translator(
    ha: HaStack, *, topic: str, group: str, prefix: str, health_port: str = "0"
) -> Any:
    """`python -m ripple_translator` on the HA profile; its log in the run dir."""
    env = {
        **os.environ,
        "RIPPLE_TRANSLATOR_KAFKA_BOOTSTRAP": ha.bootstrap,
        "RIPPLE_TRANSLATOR_REDIS_URL": ha.redis_url,
        "RIPPLE_TRANSLATOR_TOPIC": topic,
        "RIPPLE_TRANSLATOR_GROUP_ID": group,
        "RIPPLE_TRANSLATOR_REDIS_PREFIX": prefix,
        "RIPPLE_TRANSLATOR_POLL_MS": "50",
        "RIPPLE_TRANSLATOR_HEALTH_PORT": health_port,
        "RIPPLE_TRANSLATOR_LOG_LEVEL": os.environ.get("RIPPLE_HA_TRANSLATOR_LOG_LEVEL", "info"),
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ripple_translator",
        env=env,
        stdout=(ha.run / f"translator-{group}.log").open("ab"),
        stderr=asyncio.subprocess.STDOUT,
    )


@contextlib.asynccontextmanager
async def running(*tasks: asyncio.Task[None]) -> AsyncIterator[None]:
    try:
        yield
    finally:
        # Cancelled again until done: redis-py may swallow a cancellation that lands inside a
        # command, and a task that never ends would hang the test.
        while pending := [t for t in tasks if not t.done()]:
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=1.0)
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def stored_resources(
    client: aioredis.Redis, layout: KeyLayout, tenants: Sequence[str]
) -> dict[str, dict[tuple[str, str], bytes]]:
    load = client.register_script(LOAD_TENANT_LUA)
    out: dict[str, dict[tuple[str, str], bytes]] = {}
    for tenant in tenants:
        state = parse_tenant_state(tenant, await load(keys=layout.tenant_keys(tenant)))
        out[tenant] = {(r.type_url.short, r.name): r.body for r in state.resources}
    return out


def _metrics() -> str:
    """The translator's own view (its /metrics, when RIPPLE_HA_TRANSLATOR_HEALTH_PORT is set)."""
    port = os.environ.get("RIPPLE_HA_TRANSLATOR_HEALTH_PORT")
    if not port:
        return ""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text: str = answer.read().decode()
    return "\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))


def redis_node_of(ha: HaStack, port: int) -> str:
    nodes = [n.rsplit(":", 1)[1] for n in ha.env["RIPPLE_REDIS_CLUSTER_NODES"].split(",")]
    return f"redis_cluster-{nodes.index(str(port)) + 1}"


async def test_faults_under_churn(ha_stack: HaStack) -> None:  # noqa: PLR0915
    ha = ha_stack
    topic = f"ha-{uuid.uuid4().hex[:8]}"
    prefix, group = f"ha-{uuid.uuid4().hex[:8]}", f"ha-{uuid.uuid4().hex[:8]}"
    layout = KeyLayout(prefix=prefix)
    await create_topic(ha.bootstrap, topic)
    client = redis_client(ha.redis_url)
    producer = AIOKafkaProducer(
        bootstrap_servers=ha.bootstrap,
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=15_000,
    )
    await producer.start()
    churn = Churn(producer=producer, topic=topic)
    watch = Watch(client=client, layout=layout, churn=churn)
    proc = await translator(
        ha,
        topic=topic,
        group=group,
        prefix=prefix,
        health_port=os.environ.get("RIPPLE_HA_TRANSLATOR_HEALTH_PORT", "0"),
    )
    fresh = None
    xds_client: aioredis.Redis | None = None
    fresh_prefix = f"ha-{uuid.uuid4().hex[:8]}"
    figures: dict[str, Any] = {}
    stop = asyncio.Event()
    try:
        klass = envelope(CLUSTER_TENANT, ingress_class(), version=1, added=True)
        for partition in range(PARTITIONS):
            await churn.send(klass, partition=partition)
        for tenant in TENANTS:
            await churn.send(envelope(tenant, service(tenant), version=2, added=True))
            await churn.send(envelope(tenant, changed_ingress(tenant, 0), version=3, added=True))
        # An xds server's source follows the change stream through all the faults.
        xds_client = redis_client(ha.redis_url)
        cache = SnapshotCache()
        source = RedisSource(xds_client, cache, layout=layout, block_ms=500, retry_s=0.2)
        await source.load()
        following = asyncio.create_task(source.follow())
        churning = asyncio.create_task(churn.run(stop))
        watch_stop = asyncio.Event()
        watching = asyncio.create_task(watch.run(watch_stop))
        async with running(churning, watching):
            await eventually(
                lambda: all(watch.stored.get(t) for t in TENANTS),
                within_s=60,
                every_s=0.2,
                what="the translator's first writes",
            )
            await asyncio.sleep(3)

            # 1. kill -9 of the broker leading most partitions; restarted after 8 s.
            watch.phase = "broker kill"
            print(time.strftime("%T"), "phase", watch.phase)
            victim = busiest(await leaders(ha.bootstrap, topic))
            os.kill(ha.pid(f"kafka_ha-{victim}"), signal.SIGKILL)
            await asyncio.sleep(8)
            await asyncio.to_thread(ha.up)

            # 2. kill -9 of the Redis master holding most tenants; wait for its replica.
            watch.phase = "redis master kill"
            print(time.strftime("%T"), "phase", watch.phase)
            masters: dict[int, int] = {}
            for tenant in TENANTS:
                node = client.get_node_from_key(layout.meta(tenant))  # type: ignore[attr-defined]
                masters[int(node.port)] = masters.get(int(node.port), 0) + 1
            port = max(sorted(masters), key=lambda p: masters[p])
            other = next(
                int(n.rsplit(":", 1)[1])
                for n in ha.env["RIPPLE_REDIS_CLUSTER_NODES"].split(",")
                if int(n.rsplit(":", 1)[1]) != port
            )
            probe = aioredis.Redis(host="127.0.0.1", port=other)

            async def cluster_nodes() -> list[list[str]]:
                raw = await probe.execute_command("CLUSTER", "NODES")  # type: ignore[no-untyped-call]
                return [ln.split() for ln in raw.decode().splitlines()]

            dead_id = next(n[0] for n in await cluster_nodes() if f":{port}@" in n[1])
            replicas = {n[0] for n in await cluster_nodes() if n[3] == dead_id}
            os.kill(ha.pid(redis_node_of(ha, port)), signal.SIGKILL)

            async def promoted() -> bool:
                """A replica of the dead master is a master now."""
                return any(
                    n[0] in replicas and "master" in n[2].split(",") for n in await cluster_nodes()
                )

            killed = time.monotonic()
            await eventually(promoted, within_s=30, every_s=0.2, what="Redis failover")
            figures["redis_failover_s"] = round(time.monotonic() - killed, 1)
            await probe.aclose()
            await asyncio.sleep(5)
            await asyncio.to_thread(ha.up)

            # 3. SIGSTOP of the broker leading most partitions now, 10 s, then SIGCONT.
            watch.phase = "broker SIGSTOP"
            print(time.strftime("%T"), "phase", watch.phase)
            stopped = ha.pid(f"kafka_ha-{busiest(await leaders(ha.bootstrap, topic))}")
            os.kill(stopped, signal.SIGSTOP)
            try:
                await asyncio.sleep(10)
            finally:
                os.kill(stopped, signal.SIGCONT)
            watch.phase = "after faults"
            print(time.strftime("%T"), "phase", watch.phase)
            await asyncio.sleep(5)
            stop.set()
            await churning

            def converged() -> bool:
                return (
                    all(watch.stored.get(t, 0) >= churn.acked[t][-1][0] for t in churn.acked)
                    and not watching.done()
                )

            churned = time.monotonic()
            await eventually(
                converged,
                within_s=60,
                every_s=0.2,
                what="stored state reaching the last change",
                detail=lambda: (
                    f"stored {watch.stored}, acked "
                    f"{ {t: a[-1][0] for t, a in churn.acked.items()} }, "
                    f"send errors {churn.send_errors}, watch errors {watch.errors} "
                    f"{watch.error_types}, "
                    f"translator {proc.returncode} {_metrics()}"
                ),
            )
            figures["converged_after_churn_s"] = round(time.monotonic() - churned, 1)
            watch_stop.set()
            last = await watch.read()
        assert proc.returncode is None, "the translator exited during the faults"

        lost = sum(1 for t, acked in churn.acked.items() if last[t] < acked[-1][0])
        figures |= {
            "changes_acked": sum(len(a) for a in churn.acked.values()),
            "send_errors": churn.send_errors,
            "lost_updates": lost,
            "longest_stall_s": round(watch.longest_s, 1),
            "longest_stall_during": watch.longest_at,
            "watch_read_errors": sorted(watch.error_types),
            "stall_by_phase_s": watch.by_phase,
        }
        print(f"\nHA fault figures: {figures}")
        assert lost == 0

        # The xds source kept following: its cache holds exactly what is stored.
        async def xds_current() -> bool:
            return all(source.tenant_version(t) >= v for t, v in (await versions()).items())

        async def versions() -> dict[str, int]:
            load = client.register_script(LOAD_TENANT_LUA)
            return {
                t: parse_tenant_state(t, await load(keys=layout.tenant_keys(t))).version
                for t in TENANTS
            }

        assert not following.done(), following.exception() if following.done() else None
        await eventually(xds_current, within_s=30, every_s=0.2, what="the xds source catching up")
        source.stop()
        await following
        held = {
            (ty.short, name): entry.resource.body
            for ty in TypeUrl
            for name in cache.names(ty)
            if (entry := cache.get(ty, name)) is not None
        }
        stored = await stored_resources(client, layout, TENANTS)
        assert held == {k: v for resources in stored.values() for k, v in resources.items()}

        # The final state equals a fresh translator's output of the whole topic.
        fresh = await translator(
            ha, topic=topic, group=f"ha-{uuid.uuid4().hex[:8]}", prefix=fresh_prefix
        )
        want = {t: acked[-1][0] for t, acked in churn.acked.items()}
        fresh_layout = KeyLayout(prefix=fresh_prefix)

        async def fresh_done() -> bool:
            got = await Watch(client=client, layout=fresh_layout, churn=churn).read()
            return all(got[t] >= s for t, s in want.items())

        await eventually(fresh_done, within_s=60, every_s=0.2, what="the fresh translator")
        assert await stored_resources(client, layout, TENANTS) == await stored_resources(
            client, fresh_layout, TENANTS
        )
    finally:
        stop.set()
        for p in (proc, fresh):
            if p is not None and p.returncode is None:
                p.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(p.wait(), 30)
                except TimeoutError:
                    p.kill()
                    await p.wait()
        await producer.stop()
        for pfx in (prefix, fresh_prefix):
            keys = [k async for k in client.scan_iter(match=f"{pfx}*", count=1000)]
            for key in keys:
                await client.delete(key)
        await client.aclose()
        if xds_client is not None:
            await xds_client.aclose()
        admin = AIOKafkaAdminClient(bootstrap_servers=ha.bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([topic])
        finally:
            await admin.close()
