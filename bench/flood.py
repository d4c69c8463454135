"""Flood benchmark (issue #15): neighbours' latency while one tenant floods, and takeover
after kill -9 of a translator.

One tenant creates F Ingresses (default 5,000; `--quick`: 1,000) at `--rate` per second while
background probes create one Ingress at a time in neighbour tenants (spread over every
partition, the flooding tenant's included) and time each until the translators have stored it
in Redis: create -> stored (p50, p99, max), before the flood (baseline) and during it. The
flood's time-to-serve is from its first create until the flooding tenant's stored version
holds all F. Rebalances are counted from the translators' logs (`kafka.revoked` after their
first assignment). The second run (`kill`, unless `--no-kill`) kills one translator with
SIGKILL mid-flood and times, for probes in the partitions it owned, create -> stored (the
survivor takes them over at the group's session timeout).

Scope: "create" is the watcher's publish to Kafka (the envelope the watcher would send), and
"stored" is the tenant version in Redis: the translators' share of the path, which is what a
flood and a failover stress. The API -> watcher and Redis -> xds -> Envoy legs are measured by
`bench.probe`.

It starts its own translators (`python -m ripple_translator`, `--translators`, default 2, one
consumer group, static membership with instance ids translator-<n>) on a fresh topic and Redis
prefix, and needs only Kafka and Redis of a stack (`$RIPPLE_RUN/env`). Run it on a SECOND
stack so it does not load the shared one:

    export RIPPLE_RUN=/tmp/flood-stack RIPPLE_REDIS_PORT=26379 RIPPLE_KAFKA_PORT=29092 \\
        RIPPLE_KAFKA_CONTROLLER_PORT=29093 RIPPLE_KAFKA_SASL_PORT=29094
    stack/stack up redis kafka
    .venv/bin/python -m bench.flood --quick --json bench/results/flood.jsonl
    stack/stack down

Translator health ports: `--health-port` (default 28090) and up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import murmur2

from ripple_common.envelope import CLUSTER_TENANT, Envelope, EventType
from ripple_common.resources import TypeUrl
from ripple_common.store_contract import KeyLayout
from ripple_translator.translate import DEFAULT_CONTROLLER
from scripts.stack_env import REPO_DIR, load_stack_env, run_dir

CLASS = "ripple"
FLOOD = "flood"


def percentiles(samples: Sequence[float]) -> dict[str, float | int | None]:
    """p50, p99 and max (nearest rank), in ms, and the sample count."""
    if not samples:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(samples)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    return {
        "n": len(ordered),
        "p50_ms": round(rank(0.50) * 1000, 1),
        "p99_ms": round(rank(0.99) * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def partition_of(key: str, partitions: int) -> int:
    """Kafka's default partitioner (murmur2 of the key), as the watcher's producer."""
    return int(murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def _envelope(tenant: str, obj: dict[str, Any], *, kind: str) -> Envelope:
    meta = obj["metadata"]
    return Envelope(
        type=EventType.ADDED,
        kind=kind,
        tenant=tenant,
        namespace=meta.get("namespace"),
        name=meta["name"],
        uid=f"{tenant}/{meta['name']}",
        resource_version="1",
        observed_at_ns=time.time_ns(),
        object=obj,
    )


def ingress(tenant: str, name: str, host: str) -> Envelope:
    obj = {
        "kind": "Ingress",
        "metadata": {
            "name": name,
            "namespace": tenant,
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {
            "ingressClassName": CLASS,
            "rules": [
                {
                    "host": host,
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "web", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ],
        },
    }
    return _envelope(tenant, obj, kind="Ingress")


def service(tenant: str) -> Envelope:
    obj = {
        "kind": "Service",
        "metadata": {"name": "web", "namespace": tenant},
        "spec": {"ports": [{"name": "http", "port": 80}]},
    }
    return _envelope(tenant, obj, kind="Service")


def ingress_class() -> Envelope:
    obj = {
        "kind": "IngressClass",
        "metadata": {"name": CLASS},
        "spec": {"controller": DEFAULT_CONTROLLER},
    }
    return Envelope(
        type=EventType.ADDED,
        kind="IngressClass",
        tenant=CLUSTER_TENANT,
        namespace=None,
        name=CLASS,
        uid="class",
        resource_version="1",
        observed_at_ns=time.time_ns(),
        object=obj,
    )


@dataclass
class Translators:
    """The translator processes of one run."""

    bootstrap: str
    redis_url: str
    topic: str
    prefix: str
    logs: Path
    count: int
    health_port: int
    session_timeout_ms: int
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        for n in range(1, self.count + 1):
            name = f"translator-{n}"
            env = {k: v for k, v in os.environ.items() if not k.startswith("RIPPLE_")}
            env.update(
                {
                    "RIPPLE_TRANSLATOR_KAFKA_BOOTSTRAP": self.bootstrap,
                    "RIPPLE_TRANSLATOR_REDIS_URL": self.redis_url,
                    "RIPPLE_TRANSLATOR_TOPIC": self.topic,
                    "RIPPLE_TRANSLATOR_GROUP_ID": self.prefix,
                    "RIPPLE_TRANSLATOR_GROUP_INSTANCE_ID": name,
                    "RIPPLE_TRANSLATOR_REDIS_PREFIX": self.prefix,
                    "RIPPLE_TRANSLATOR_SESSION_TIMEOUT_MS": str(self.session_timeout_ms),
                    "RIPPLE_TRANSLATOR_HEARTBEAT_INTERVAL_MS": str(
                        max(100, self.session_timeout_ms // 6)
                    ),
                    "RIPPLE_TRANSLATOR_HEALTH_PORT": str(self.health_port + n),
                    "RIPPLE_TRANSLATOR_LOG_JSON": "true",
                    "RIPPLE_TRANSLATOR_LOG_LEVEL": "INFO",
                }
            )
            with (self.logs / f"{name}.log").open("ab") as log:
                self.procs[name] = subprocess.Popen(
                    [sys.executable, "-m", "ripple_translator"],
                    cwd=REPO_DIR,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )

    def lines(self, name: str) -> list[dict[str, Any]]:
        out = []
        path = self.logs / f"{name}.log"
        for raw in path.read_text(errors="replace").splitlines() if path.exists() else []:
            with contextlib.suppress(ValueError):
                line = json.loads(raw)
                if isinstance(line, dict):
                    out.append(line)
        return out

    def owned(self, name: str) -> set[int]:
        """The partitions `name` owns now, from its `kafka.assigned` log lines."""
        owned: set[int] = set()
        for line in self.lines(name):
            if line.get("event") == "kafka.assigned":
                owned = set(line.get("partitions", []))
        return owned

    def revocations(self, name: str) -> int:
        return sum(1 for line in self.lines(name) if line.get("event") == "kafka.revoked")

    def ready(self, partitions: int) -> bool:
        owned = [self.owned(n) for n in self.procs if self.procs[n].poll() is None]
        return (
            all(owned)
            and len(set().union(*owned)) == partitions
            and all(_http_ok(self.health_port + int(n.rsplit("-", 1)[1])) for n in self.procs)
        )

    def kill(self, name: str) -> None:
        os.killpg(self.procs[name].pid, signal.SIGKILL)
        self.procs[name].wait()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _http_ok(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:
            return int(answer.status) == 200
    except OSError:
        return False


@dataclass
class Probes:
    """Neighbour probes: create one Ingress, time it until stored in Redis."""

    client: aioredis.Redis
    layout: KeyLayout
    producer: AIOKafkaProducer
    topic: str
    tenants: list[str]
    count: int = 0
    latencies: list[tuple[float, float, str]] = field(default_factory=list)  # (at, s, tenant)

    async def one(self, tenant: str, *, timeout_s: float = 120.0) -> float:
        self.count += 1
        host = f"p{self.count}.{tenant}.example.com"
        key = self.layout.resources(tenant, TypeUrl.SCOPED_ROUTE)
        name = f"{tenant}/scope/{host}"
        started = time.monotonic()
        env = ingress(tenant, f"p{self.count}", host)
        await self.producer.send_and_wait(self.topic, value=env.to_bytes(), key=env.key)
        while not await self.client.hexists(key, name):
            if time.monotonic() - started > timeout_s:
                return math.inf
            await asyncio.sleep(0.005)
        took = time.monotonic() - started
        self.latencies.append((started, took, tenant))
        return took

    async def background(self, stop: asyncio.Event, *, every_s: float) -> None:
        """One probe every `every_s` (round robin over the tenants), each in its own task."""
        tasks: set[asyncio.Task[float]] = set()
        i = 0
        while not stop.is_set():
            task = asyncio.create_task(self.one(self.tenants[i % len(self.tenants)]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every_s)
        if tasks:
            await asyncio.wait(tasks)

    def window(self, start: float, end: float) -> list[float]:
        return [s for at, s, _ in self.latencies if start <= at < end]


async def flood_run(
    args: argparse.Namespace, stack: dict[str, str], *, kill: bool
) -> dict[str, Any]:
    stamp = time.strftime("%Y%m%d%H%M%S")
    name = f"bench-flood-{stamp}-{'kill' if kill else 'flood'}"
    bootstrap, redis_url = stack["RIPPLE_KAFKA_BOOTSTRAP"], stack["RIPPLE_REDIS_URL"]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics(
        [NewTopic(name=name, num_partitions=args.partitions, replication_factor=1)]
    )
    translators = Translators(
        bootstrap=bootstrap,
        redis_url=redis_url,
        topic=name,
        prefix=name,
        logs=run_dir() / "bench-flood" / name,
        count=args.translators,
        health_port=args.health_port,
        session_timeout_ms=args.session_timeout_ms,
    )
    client = aioredis.from_url(redis_url, decode_responses=False)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    layout = KeyLayout(prefix=name)
    neighbours = [f"n{i:03d}" for i in range(args.neighbours)]
    try:
        translators.start()
        probes = Probes(client, layout, producer, name, neighbours)
        baseline = await prepare(args, translators, producer, name, probes)
        revoked_before = {n: translators.revocations(n) for n in translators.procs}

        stop = asyncio.Event()
        background = asyncio.create_task(probes.background(stop, every_s=args.probe_every_s))
        flood_start = time.monotonic()
        flood_key = layout.resources(FLOOD, TypeUrl.SCOPED_ROUTE)
        killed = await produce_flood(args, producer, name, translators, probes, kill=kill)
        produced = time.monotonic() - flood_start
        while await client.hlen(flood_key) < args.flood:
            if time.monotonic() - flood_start > args.timeout_s:
                break
            await asyncio.sleep(0.05)
        served = time.monotonic() - flood_start
        stop.set()
        await background
        during = probes.window(flood_start, flood_start + served)
        rebalances = {
            n: translators.revocations(n) - revoked_before[n]
            for n in translators.procs
            if translators.procs[n].poll() is None
        }
        return {
            "bench": "flood",
            "mode": "kill" if kill else "flood",
            "flood": args.flood,
            "rate_per_s": args.rate,
            "partitions": args.partitions,
            "translators": args.translators,
            "session_timeout_ms": args.session_timeout_ms,
            "neighbours": args.neighbours,
            "baseline": percentiles(baseline),
            "during_flood": percentiles(during),
            "flood_produced_s": round(produced, 2),
            "flood_time_to_serve_s": round(served, 2),
            "flood_served": int(await client.hlen(flood_key)),
            "rebalances_seen_by_survivors": rebalances,
            "killed": killed,
            "python": platform.python_version(),
            "ts": time.time(),
            "logs": str(translators.logs),
        }
    finally:
        translators.stop()
        await producer.stop()
        with contextlib.suppress(Exception):
            await admin.delete_topics([name])
        await admin.close()
        keys = [k async for k in client.scan_iter(match=f"{name}*", count=1000)]
        for i in range(0, len(keys), 500):
            await client.delete(*keys[i : i + 500])
        await client.aclose()


async def prepare(
    args: argparse.Namespace,
    translators: Translators,
    producer: AIOKafkaProducer,
    name: str,
    probes: Probes,
) -> list[float]:
    """Wait for the group, seed the class and the tenants, warm every neighbour once, and
    return the baseline probes' latencies (before the flood)."""
    neighbours = probes.tenants
    deadline = time.monotonic() + 120
    while not translators.ready(args.partitions):
        if time.monotonic() > deadline:
            raise SystemExit(f"translators not ready; logs in {translators.logs}")
        await asyncio.sleep(0.2)
    cls = ingress_class()
    for p in range(args.partitions):
        await producer.send_and_wait(name, value=cls.to_bytes(), key=cls.key, partition=p)
    for tenant in [FLOOD, *neighbours]:
        env = service(tenant)
        await producer.send_and_wait(name, value=env.to_bytes(), key=env.key)
    for tenant in neighbours:  # warm: each neighbour loaded and written once
        await probes.one(tenant)
    probes.latencies.clear()
    baseline_start = time.monotonic()
    for i in range(args.baseline):
        await probes.one(neighbours[i % len(neighbours)])
        await asyncio.sleep(0.05)
    return probes.window(baseline_start, time.monotonic())


async def produce_flood(
    args: argparse.Namespace,
    producer: AIOKafkaProducer,
    topic: str,
    translators: Translators,
    probes: Probes,
    *,
    kill: bool,
) -> dict[str, Any]:
    """The flooding tenant's creates at `args.rate`/s (batches every 0.1 s); with `kill`, one
    translator is killed halfway (returns what `kill_one` measured)."""
    started = time.monotonic()
    batch = max(1, round(args.rate / 10))
    killed: dict[str, Any] = {}
    sent = 0
    while sent < args.flood:
        n = min(batch, args.flood - sent)
        envs = [
            ingress(FLOOD, f"f{i:05d}", f"f{i:05d}.flood.example.com")
            for i in range(sent, sent + n)
        ]
        futures = [await producer.send(topic, value=e.to_bytes(), key=e.key) for e in envs]
        await asyncio.gather(*futures)
        sent += n
        if kill and not killed and sent >= args.flood // 2:
            killed = await kill_one(translators, probes, probes.tenants, args.partitions)
        await asyncio.sleep(max(0.0, started + sent / args.rate - time.monotonic()))
    return killed


async def kill_one(
    translators: Translators, probes: Probes, neighbours: Sequence[str], partitions: int
) -> dict[str, Any]:
    """SIGKILL the translator owning the flooding tenant's partition, then time a probe in
    each of its partitions (create -> stored)."""
    flood_partition = partition_of(FLOOD, partitions)
    victim = next(
        (n for n in translators.procs if flood_partition in translators.owned(n)), "translator-1"
    )
    owned = translators.owned(victim)
    translators.kill(victim)
    killed_at = time.monotonic()
    tenants = [t for t in neighbours if partition_of(t, partitions) in owned]
    random.shuffle(tenants)
    latencies = await asyncio.gather(*(probes.one(t) for t in tenants[:3]))
    return {
        "victim": victim,
        "partitions": sorted(owned),
        "probes_in_its_partitions": percentiles([x for x in latencies if math.isfinite(x)]),
        "unserved": sum(1 for x in latencies if not math.isfinite(x)),
        "first_served_after_kill_s": round(min(latencies), 2) if latencies else None,
        "probed_at_s_after_kill": round(time.monotonic() - killed_at, 2),
    }


def summary(result: dict[str, Any]) -> str:
    def cell(p: dict[str, Any]) -> str:
        return f"p50 {p['p50_ms']} / p99 {p['p99_ms']} / max {p['max_ms']} ms (n={p['n']})"

    lines = [
        f"{result['mode']}: {result['flood']} Ingresses at {result['rate_per_s']}/s, "
        f"{result['translators']} translators, {result['partitions']} partitions",
        f"  neighbours before the flood: {cell(result['baseline'])}",
        f"  neighbours during the flood: {cell(result['during_flood'])}",
        f"  flood: produced in {result['flood_produced_s']} s, all stored after "
        f"{result['flood_time_to_serve_s']} s ({result['flood_served']} stored)",
        f"  rebalances seen by each surviving translator: {result['rebalances_seen_by_survivors']}",
    ]
    if result["killed"]:
        k = result["killed"]
        lines.append(
            f"  kill -9 {k['victim']} (partitions {k['partitions']}): probes in its partitions "
            f"{cell(k['probes_in_its_partitions'])}, unserved {k['unserved']}"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="See the module docstring (python -m pydoc bench.flood) for what is measured.",
    )
    parser.add_argument("--quick", action="store_true", help="1,000 Ingresses (default 5,000)")
    parser.add_argument("--flood", type=int, help="Ingresses the flooding tenant creates")
    parser.add_argument("--rate", type=float, default=200.0, help="flood creates per second")
    parser.add_argument("--neighbours", type=int, default=24, help="neighbour tenants probed")
    parser.add_argument("--baseline", type=int, default=24, help="probes before the flood")
    parser.add_argument("--probe-every-s", type=float, default=0.25, help="probe cadence")
    parser.add_argument("--partitions", type=int, default=12, help="events topic partitions")
    parser.add_argument("--translators", type=int, default=2, help="translator processes")
    parser.add_argument(
        "--session-timeout-ms",
        type=int,
        default=6000,
        help="translators' group session timeout (the broker's group.min.session.timeout.ms "
        "bounds it from below)",
    )
    parser.add_argument("--health-port", type=int, default=28090, help="translators' base port")
    parser.add_argument("--no-kill", action="store_true", help="skip the kill -9 run")
    parser.add_argument("--timeout-s", type=float, default=600.0, help="longest wait for the flood")
    parser.add_argument("--json", type=Path, help="append the results as JSON lines to this file")
    args = parser.parse_args(argv)
    if args.flood is None:
        args.flood = 1000 if args.quick else 5000
    if args.flood < 2 or args.rate <= 0 or args.neighbours < 1 or args.translators < 1:
        parser.error("--flood >= 2, --rate > 0, --neighbours >= 1, --translators >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stack = load_stack_env()
    for key in ("RIPPLE_KAFKA_BOOTSTRAP", "RIPPLE_REDIS_URL"):
        if key not in stack:
            raise SystemExit(f"{key} missing from {run_dir() / 'env'}: is the stack up?")
    modes = [False] if args.no_kill or args.translators < 2 else [False, True]
    for kill in modes:
        result = asyncio.run(flood_run(args, stack, kill=kill))
        print(summary(result), flush=True)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            with args.json.open("a") as fh:
                fh.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
