"""Translator throughput and memory at 20,000 Ingresses in 2,000 tenants, and the time to
apply one change with that load in place.

The data: per tenant one Service, one EndpointSlice (3 ready endpoints) and N/M Ingresses,
each with its own host and two paths (created at distinct times, one IngressClass).

- `pure`: the pure translation of every tenant (`TenantObjects.state` + `translate`), no I/O.
  Reported per run of all tenants; tenants/s and Ingresses/s in the JSON line.
- `load`: the whole data set as Kafka records (envelope bytes) through the real `Engine` and
  `TenantWriter` (host claims included) into the stack's Redis, until every tenant is written
  (a fresh key prefix per run, deleted afterwards).
- `change`: with the load in place (one `load` first), one Ingress changed at a time (its
  path's backend port flips), handed to the engine as one record and timed until its tenant
  version is durable in Redis: median of `--changes` changes per run.

Peak RSS (the process's ru_maxrss, which includes the data set and the benchmark itself) is
in each line; `rss_before_load_mib` is the RSS with the data set built and no engine yet,
`rss_after_load_mib` the RSS right after the load (current, not peak): the difference is what
the engine holds (every tenant's objects and resource versions) plus allocator slack.

    UV_NO_SYNC=1 uv run python -m bench.translator --runs 3
    UV_NO_SYNC=1 uv run python -m bench.translator pure --small --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import resource
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bench.harness import Measurement
from ripple_common.envelope import CLUSTER_TENANT, Envelope, EventType
from ripple_common.logs import configure_logging
from ripple_common.redis_client import RedisClient
from ripple_translator.engine import Engine, Record
from ripple_translator.partition_state import TenantObjects
from ripple_translator.store import KeyLayout, RedisHostRegistry, RedisTenantStore
from ripple_translator.store.inputs import RedisPartitionStore
from ripple_translator.store.loader import RedisTenantLoader
from ripple_translator.translate import DEFAULT_CONTROLLER, translate
from ripple_translator.writer import WriterConfig
from scripts.stack_env import load_stack_env

TOPIC = "bench.events"
CLASS = "ripple"


@dataclass(frozen=True, slots=True)
class Sizes:
    ingresses: int
    tenants: int


def ingress_class() -> dict[str, Any]:
    return {
        "kind": "IngressClass",
        "metadata": {"name": CLASS},
        "spec": {"controller": DEFAULT_CONTROLLER},
    }


def ingress(tenant: str, i: int, *, port: int = 80) -> dict[str, Any]:
    backend = {"service": {"name": "web", "port": {"number": port}}}
    return {
        "kind": "Ingress",
        "metadata": {
            "name": f"ing-{i}",
            "namespace": tenant,
            "creationTimestamp": created(i),
            "annotations": {"nginx.ingress.kubernetes.io/proxy-read-timeout": "30"},
        },
        "spec": {
            "ingressClassName": CLASS,
            "rules": [
                {
                    "host": f"i{i}.{tenant}.example.com",
                    "http": {
                        "paths": [
                            {"path": "/", "pathType": "Prefix", "backend": backend},
                            {"path": f"/api/v{i}", "pathType": "Exact", "backend": backend},
                        ]
                    },
                }
            ],
        },
    }


def created(i: int) -> str:
    """Distinct creation times (one second apart) for Ingress i of each tenant."""
    return f"2024-01-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"


def service(tenant: str) -> dict[str, Any]:
    return {
        "kind": "Service",
        "metadata": {"name": "web", "namespace": tenant},
        "spec": {"ports": [{"name": "http", "port": 80}, {"name": "alt", "port": 81}]},
    }


def endpoint_slice(tenant: str) -> dict[str, Any]:
    return {
        "kind": "EndpointSlice",
        "metadata": {
            "name": "web-abc",
            "namespace": tenant,
            "labels": {"kubernetes.io/service-name": "web"},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080}, {"name": "alt", "port": 8081}],
        "endpoints": [
            {"addresses": [f"10.{n}.0.{k}"], "conditions": {"ready": True}, "zone": "z1"}
            for k, n in ((1, 1), (2, 1), (3, 2))
        ],
    }


def envelope(tenant: str, obj: dict[str, Any], *, type_: EventType = EventType.ADDED) -> Envelope:
    meta = obj["metadata"]
    return Envelope(
        type=type_,
        kind=obj["kind"],
        tenant=tenant,
        namespace=meta.get("namespace"),
        name=meta["name"],
        uid=f"uid-{tenant}-{meta['name']}",
        resource_version="1",
        observed_at_ns=1,
        object=obj,
    )


def tenant_names(sizes: Sizes) -> list[str]:
    return [f"bt-{t:05d}" for t in range(sizes.tenants)]


def per_tenant(sizes: Sizes) -> int:
    return max(1, sizes.ingresses // sizes.tenants)


def tenant_objects(sizes: Sizes) -> list[TenantObjects]:
    out = []
    for tenant in tenant_names(sizes):
        objs = TenantObjects(tenant)
        for obj in (service(tenant), endpoint_slice(tenant)):
            objs.apply(envelope(tenant, obj))
        for i in range(per_tenant(sizes)):
            objs.apply(envelope(tenant, ingress(tenant, i)))
        out.append(objs)
    return out


def records(sizes: Sizes) -> list[Record]:
    """Every object as one record of partition 0 (the class first)."""
    envs = [
        Envelope(
            type=EventType.ADDED,
            kind="IngressClass",
            tenant=CLUSTER_TENANT,
            namespace=None,
            name=CLASS,
            uid="c",
            resource_version="1",
            observed_at_ns=1,
            object=ingress_class(),
        )
    ]
    for tenant in tenant_names(sizes):
        envs.append(envelope(tenant, service(tenant)))
        envs.append(envelope(tenant, endpoint_slice(tenant)))
        envs.extend(envelope(tenant, ingress(tenant, i)) for i in range(per_tenant(sizes)))
    return [
        Record(topic=TOPIC, partition=0, offset=n, value=env.to_bytes())
        for n, env in enumerate(envs)
    ]


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def summarize(name: str, samples: list[float], ops: int) -> Measurement:
    deciles = statistics.quantiles(samples, n=10) if len(samples) > 1 else samples * 9
    return Measurement(
        name=name,
        unit="s",
        runs=len(samples),
        median=statistics.median(samples),
        p10=deciles[0],
        p90=deciles[-1],
        ops_per_run=ops,
        max_rss_mib=rss_mib(),
    )


def emit(m: Measurement, extra: dict[str, Any], json_path: Path | None) -> None:
    print(m.line(), flush=True)
    record = {**asdict(m), **extra, "python": platform.python_version(), "ts": time.time()}
    line = json.dumps(record)
    print(line, flush=True)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        with json_path.open("a") as fh:
            fh.write(line + "\n")


def bench_pure(sizes: Sizes, runs: int, json_path: Path | None) -> None:
    tenants = tenant_objects(sizes)
    classes = (ingress_class(),)

    def run() -> int:
        resources = 0
        for objs in tenants:
            resources += len(translate(objs.state(), ingress_classes=classes).resources)
        return resources

    run()  # warm-up
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        resources = run()
        samples.append(time.perf_counter() - t0)
    m = summarize(
        f"translate {sizes.ingresses} ingresses/{sizes.tenants} tenants", samples, len(tenants)
    )
    emit(
        m,
        {
            "bench": "pure",
            "tenants_per_s": round(len(tenants) / m.median, 1),
            "ingresses_per_s": round(sizes.ingresses / m.median, 1),
            "resources": resources,
        },
        json_path,
    )


async def load_into_redis(
    client: aioredis.Redis,
    sizes: Sizes,
    prefix: str,
    *,
    recs: list[Record] | None = None,
    hosts: bool = True,
) -> tuple[Engine, float]:
    layout = KeyLayout(prefix=prefix)
    store = RedisTenantStore(client, layout=layout)
    engine = Engine(
        store=store,
        partitions=RedisPartitionStore(client, layout=layout),
        config=WriterConfig(),
        loader=RedisTenantLoader(client, layout=layout),
        hosts=RedisHostRegistry(client, layout=layout) if hosts else None,
    )
    recs = recs if recs is not None else records(sizes)
    await engine.assign([(TOPIC, 0)])
    t0 = time.perf_counter()
    for i in range(0, len(recs), 1000):
        await engine.handle(recs[i : i + 1000])
    if not await engine.settle(timeout_s=900):
        raise RuntimeError("the load did not settle")
    elapsed = time.perf_counter() - t0
    written = await client.scard(layout.tenants)
    if written != sizes.tenants:
        raise RuntimeError(f"{written} tenants written, expected {sizes.tenants}")
    return engine, elapsed


async def drop(client: aioredis.Redis, prefix: str) -> None:
    batch: list[bytes] = []
    async for key in client.scan_iter(match=f"{prefix}*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            await client.unlink(*batch)
            batch = []
    if batch:
        await client.unlink(*batch)


async def bench_redis(
    sizes: Sizes,
    runs: int,
    *,
    changes: int,
    names: list[str],
    json_path: Path | None,
    hosts: bool = True,
) -> None:
    stack = load_stack_env()
    if "RIPPLE_REDIS_URL" not in stack:
        sys.exit("the local stack is not up (`./dev up`)")
    redis = RedisClient(stack["RIPPLE_REDIS_URL"])
    await redis.start()
    client = redis.client
    load_samples: list[float] = []
    change_samples: list[float] = []
    rss_after_load = 0.0
    writes: list[int] = []
    recs = records(sizes)
    rss_before = current_rss_mib()  # the data set is built; no engine yet
    try:
        for _ in range(runs):
            prefix = f"bench-tr-{uuid.uuid4().hex[:8]}"
            try:
                engine, elapsed = await load_into_redis(
                    client, sizes, prefix, recs=recs, hosts=hosts
                )
                load_samples.append(elapsed)
                writes.append(engine.stats.writes)
                rss_after_load = current_rss_mib()
                if "change" in names:
                    change_samples.append(await one_change_median(engine, sizes, changes=changes))
                await engine.drain(timeout_s=30)
            finally:
                await drop(client, prefix)
    finally:
        await redis.stop()
    if "load" in names:
        m = summarize(
            f"load {sizes.ingresses}/{sizes.tenants} into redis", load_samples, sizes.tenants
        )
        emit(
            m,
            {
                "bench": "load",
                "host_arbitration": hosts,
                "tenants_per_s": round(sizes.tenants / m.median, 1),
                "ingresses_per_s": round(sizes.ingresses / m.median, 1),
                "rss_before_load_mib": round(rss_before, 1),
                "rss_after_load_mib": round(rss_after_load, 1),
                "tenant_writes_per_load": writes,
            },
            json_path,
        )
    if change_samples:
        m = summarize("one ingress change under load", change_samples, 1)
        emit(
            m,
            {
                "bench": "change",
                "host_arbitration": hosts,
                "changes_per_run": changes,
                "median_ms": round(m.median * 1000, 3),
                "rss_after_load_mib": round(rss_after_load, 1),
            },
            json_path,
        )


async def one_change_median(engine: Engine, sizes: Sizes, *, changes: int) -> float:
    """Median seconds from handing one changed Ingress to the engine until its tenant's new
    version is durable."""
    tenants = tenant_names(sizes)
    offset = 1 + sizes.tenants * (2 + per_tenant(sizes))  # after the load's records
    samples: list[float] = []
    ports: dict[str, int] = {}
    for n in range(changes):
        tenant = tenants[(n * 7919) % len(tenants)]
        port = ports[tenant] = 81 if ports.get(tenant, 80) == 80 else 80  # flip: a real change
        env = envelope(tenant, ingress(tenant, 0, port=port), type_=EventType.MODIFIED)
        rec = Record(topic=TOPIC, partition=0, offset=offset, value=env.to_bytes())
        offset += 1
        slot = engine.slot(tenant)
        assert slot is not None
        before = slot.version
        t0 = time.perf_counter()
        await engine.handle([rec])
        await _until(partial(_written, engine, tenant, before))
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


async def _written(engine: Engine, tenant: str, before: int) -> bool:
    slot = engine.slot(tenant)
    return slot is not None and slot.version > before and not slot.busy


async def _until(check: Callable[[], Awaitable[bool]], *, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise RuntimeError("change not written in time")
        await asyncio.sleep(0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="subset of: pure, load, change")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--changes", type=int, default=50, help="single changes per run")
    parser.add_argument("--small", action="store_true", help="2,000 Ingresses in 200 tenants")
    parser.add_argument(
        "--no-hosts", action="store_true", help="without host arbitration (to see its cost)"
    )
    parser.add_argument("--json", type=Path, help="append results as JSON lines to this file")
    args = parser.parse_args()
    names = args.names or ["pure", "load", "change"]
    unknown = set(names) - {"pure", "load", "change"}
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    sizes = Sizes(2_000, 200) if args.small else Sizes(20_000, 2_000)
    configure_logging(service="bench.translator", level="WARNING")
    if "pure" in names:
        bench_pure(sizes, args.runs, args.json)
    if {"load", "change"} & set(names):
        asyncio.run(
            bench_redis(
                sizes,
                args.runs,
                changes=args.changes,
                names=names,
                json_path=args.json,
                hosts=not args.no_hosts,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
