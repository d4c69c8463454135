"""Watcher throughput from the kube-apiserver to Kafka, and the watcher's memory.

Against the local stack (`./dev up`): creates N Ingresses in M namespaces (default 20,000 in
2,000; --small: 2,000 in 200), then

- initial list: `--runs` times, a fresh watcher process (`python -m ripple_watcher`, kinds
  Namespace + Ingress, a fresh topic each time) lists everything and publishes it; timed from
  its "watching" log line (clients connected) until the N-th Ingress envelope is read back
  from Kafka, and also from process start, and as the watcher logs its own re-list
  (list + publish with at most max_in_flight undelivered sends);
- watch path: `--runs` bursts of B creates (default N/10) while the last watcher runs; timed
  from the first create until the last of them is read back from Kafka (the apiserver's
  create rate bounds this: the create-only time and the drain after the last create are
  reported too);
- the watcher's peak RSS (VmHWM) after each initial list and at the end.

Everything it created is deleted at the end, namespaces finalized (there is no namespace
controller in the stack). Medians of the runs, in the harness's format; --json appends the
measurements as JSON lines.

    UV_NO_SYNC=1 uv run python -m bench.watcher_throughput --runs 3
    UV_NO_SYNC=1 uv run python -m bench.watcher_throughput --small --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from kubernetes_asyncio import client, config

from bench.harness import Measurement
from ripple_common.envelope import Envelope
from scripts.stack_env import load_stack_env

PARTITIONS = 6
CONCURRENCY = 32  # API requests in flight while creating and deleting
WAIT_S = 900.0  # longest wait for one phase's envelopes

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Sizes:
    ingresses: int
    namespaces: int
    burst: int


@dataclass
class Result:
    """A Measurement plus the figures the harness line has no room for."""

    measurement: Measurement
    extra: dict[str, float] = field(default_factory=dict)

    def print(self) -> None:
        extra = "  ".join(f"{k} {v:,.1f}" for k, v in self.extra.items())
        print(self.measurement.line(), flush=True)
        if extra:
            print(f"{'':40} {extra}", flush=True)


def summarize(name: str, samples: list[float], *, ops: int, rss_mib: float) -> Measurement:
    """The harness's Measurement of samples taken here (seconds per run); max_rss_mib is the
    watcher process's peak RSS, not this process's."""
    deciles = statistics.quantiles(samples, n=10) if len(samples) > 1 else samples * 9
    return Measurement(
        name=name,
        unit="s",
        runs=len(samples),
        median=statistics.median(samples),
        p10=deciles[0],
        p90=deciles[-1],
        ops_per_run=ops,
        max_rss_mib=rss_mib,
    )


def ingress(name: str) -> dict[str, Any]:
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name},
        "spec": {
            "rules": [
                {
                    "host": f"{name}.example.test",
                    "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
                }
            ]
        },
    }


async def settle(resp: Any, *, also_ok: tuple[int, ...] = ()) -> None:
    """Check and give back a raw response (_preload_content=False: no model is built, and
    kubernetes_asyncio then leaves the status to the caller)."""
    try:
        if not (200 <= resp.status <= 299 or resp.status in also_ok):
            body = await resp.read()
            raise RuntimeError(f"HTTP {resp.status}: {body[:300]!r}")
    finally:
        resp.release()


async def bounded(call: Callable[[T], Awaitable[Any]], items: Iterable[T]) -> None:
    """`call` on every item, at most CONCURRENCY in flight; the first error propagates. A raw
    response `call` returns is checked and released."""
    queue = list(items)
    queue.reverse()

    async def worker() -> None:
        while queue:
            resp = await call(queue.pop())
            if resp is not None:
                await settle(resp)

    await asyncio.gather(*(worker() for _ in range(min(CONCURRENCY, len(queue)))))


class Cluster:
    """Creates the benchmark's namespaces and Ingresses; deletes them all at the end."""

    def __init__(self, api_client: Any, prefix: str) -> None:
        self.core = client.CoreV1Api(api_client)
        self.net = client.NetworkingV1Api(api_client)
        self.prefix = prefix
        self.namespaces: list[str] = []

    async def make_namespaces(self, count: int) -> None:
        names = [f"{self.prefix}-{i}" for i in range(count)]
        self.namespaces.extend(names)

        async def create(ns: str) -> Any:
            body = cast(client.V1Namespace, {"metadata": {"name": ns}})
            return await self.core.create_namespace(body, _preload_content=False)

        await bounded(create, names)

    async def make_ingresses(self, names: list[tuple[str, str]]) -> None:
        async def create(ns_name: tuple[str, str]) -> Any:
            ns, name = ns_name
            body = cast(client.V1Ingress, ingress(name))
            return await self.net.create_namespaced_ingress(ns, body, _preload_content=False)

        await bounded(create, names)

    async def delete_all(self) -> None:
        """Empty and delete every namespace, then finish the deletion as the namespace
        controller would (else they stay Terminating)."""

        gone = (404,)  # never created (a setup that failed half way)
        failed: list[str] = []

        async def remove(ns: str) -> None:
            try:
                emptied = await self.net.delete_collection_namespaced_ingress(
                    ns, _preload_content=False
                )
                await settle(emptied, also_ok=gone)
                deleted = await self.core.delete_namespace(ns, _preload_content=False)
                await settle(deleted, also_ok=gone)
                finalize = cast(
                    client.V1Namespace, {"metadata": {"name": ns}, "spec": {"finalizers": []}}
                )
                finalized = await self.core.replace_namespace_finalize(
                    ns, finalize, _preload_content=False
                )
                await settle(finalized, also_ok=gone)
            except Exception as exc:  # clean up the rest anyway; say what is left
                failed.append(f"{ns}: {exc!r}")

        await bounded(remove, self.namespaces)
        if failed:
            print(f"cleanup failed for {len(failed)} namespaces, e.g. {failed[0]}", file=sys.stderr)


@dataclass
class Arrivals:
    """Our Ingress envelopes read back from the topic, counted by name prefix."""

    namespace_prefix: str
    counts: dict[str, int] = field(default_factory=dict)
    last_at: dict[str, float] = field(default_factory=dict)
    records: int = 0

    def add(self, key: bytes | None, value: bytes) -> None:
        self.records += 1
        if key is None or not key.startswith(self.namespace_prefix.encode()):
            return  # another tenant's, or a cluster-scoped envelope (a Namespace, a marker)
        env = Envelope.from_bytes(value)
        if env.kind != "Ingress":
            return
        phase = env.name.split("-", 1)[0]
        self.counts[phase] = self.counts.get(phase, 0) + 1
        self.last_at[phase] = time.monotonic()

    async def wait(self, phase: str, count: int, *, watcher: WatcherProcess) -> float:
        """When the count-th envelope of the phase arrived."""
        async with asyncio.timeout(WAIT_S):
            while self.counts.get(phase, 0) < count:
                if watcher.proc.returncode is not None:
                    raise RuntimeError(f"the watcher exited with {watcher.proc.returncode}")
                await asyncio.sleep(0.02)
        return self.last_at[phase]


@contextlib.asynccontextmanager
async def topic_reader(bootstrap: str, arrivals: Arrivals) -> AsyncIterator[str]:
    """A fresh topic, read from the beginning into `arrivals`; deleted afterwards."""
    topic = f"bench-watcher-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name=topic, num_partitions=PARTITIONS, replication_factor=1)]
        )
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()

    async def pump() -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=100, max_records=5000)
            for recs in batch.values():
                for rec in recs:
                    arrivals.add(rec.key, rec.value)

    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        task = asyncio.create_task(pump())
        try:
            yield topic
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await consumer.stop()
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([topic])
        finally:
            await admin.close()


@dataclass
class WatcherProcess:
    proc: asyncio.subprocess.Process
    spawned_at: float
    watching_at: asyncio.Future[float]
    ingress_relist: asyncio.Future[dict[str, Any]]

    def peak_rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")


@contextlib.asynccontextmanager
async def watcher_process(stack: dict[str, str], topic: str) -> AsyncIterator[WatcherProcess]:
    """`python -m ripple_watcher` publishing Namespaces and Ingresses to `topic`; SIGTERM at
    the end (it flushes and exits 0)."""
    env = {
        **os.environ,
        "RIPPLE_WATCHER_KUBECONFIG": stack["KUBECONFIG"],
        "RIPPLE_WATCHER_KAFKA_BOOTSTRAP": stack["RIPPLE_KAFKA_BOOTSTRAP"],
        "RIPPLE_WATCHER_TOPIC": topic,
        "RIPPLE_WATCHER_KINDS": json.dumps(["Namespace", "Ingress"]),
        "RIPPLE_WATCHER_LOG_LEVEL": "INFO",
        "RIPPLE_WATCHER_LOG_JSON": "true",
    }
    loop = asyncio.get_running_loop()
    spawned_at = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ripple_watcher", env=env, stdout=asyncio.subprocess.PIPE
    )
    w = WatcherProcess(proc, spawned_at, loop.create_future(), loop.create_future())

    async def read_logs() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            try:
                doc = json.loads(raw)
            except ValueError:
                continue
            if doc.get("event") == "watching" and not w.watching_at.done():
                w.watching_at.set_result(time.monotonic())
            relist = doc.get("event") == "relist" and doc.get("kind") == "Ingress"
            if relist and not w.ingress_relist.done():
                w.ingress_relist.set_result(doc)

    reader = asyncio.create_task(read_logs())
    try:
        yield w
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        if proc.returncode not in (0, -9):
            print(f"watcher exited with {proc.returncode}", file=sys.stderr)


async def initial_lists(
    stack: dict[str, str], sizes: Sizes, prefix: str, runs: int
) -> list[Result]:
    """`runs` fresh watchers, each listing and publishing everything."""
    from_ready: list[float] = []
    from_spawn: list[float] = []
    relist_log: list[float] = []
    rss: list[float] = []
    records: list[float] = []
    for _ in range(runs):
        arrivals = Arrivals(prefix)
        async with (
            topic_reader(stack["RIPPLE_KAFKA_BOOTSTRAP"], arrivals) as topic,
            watcher_process(stack, topic) as w,
        ):
            done_at = await arrivals.wait("web", sizes.ingresses, watcher=w)
            ready_at = await w.watching_at
            relist = await asyncio.wait_for(w.ingress_relist, 60)
            from_ready.append(done_at - ready_at)
            from_spawn.append(done_at - w.spawned_at)
            relist_log.append(float(relist["duration_ms"]) / 1000)
            rss.append(w.peak_rss_mib())
            records.append(arrivals.records)
    n = sizes.ingresses
    peak = statistics.median(rss)
    return [
        Result(
            summarize("initial list -> Kafka (from ready)", from_ready, ops=n, rss_mib=peak),
            {"events/s": n / statistics.median(from_ready)},
        ),
        Result(
            summarize("initial list -> Kafka (from spawn)", from_spawn, ops=n, rss_mib=peak),
            {"events/s": n / statistics.median(from_spawn)},
        ),
        Result(
            summarize("initial list (watcher's relist log)", relist_log, ops=n, rss_mib=peak),
            {
                "events/s": n / statistics.median(relist_log),
                "records on topic (all kinds, markers x partitions)": statistics.median(records),
                "peak RSS max MiB": max(rss),
            },
        ),
    ]


async def watch_bursts(
    stack: dict[str, str], cluster: Cluster, sizes: Sizes, runs: int
) -> list[Result]:
    """One watcher; `runs` bursts of creates, each read back from Kafka."""
    e2e: list[float] = []
    creates: list[float] = []
    drains: list[float] = []
    arrivals = Arrivals(cluster.prefix)
    async with (
        topic_reader(stack["RIPPLE_KAFKA_BOOTSTRAP"], arrivals) as topic,
        watcher_process(stack, topic) as w,
    ):
        await arrivals.wait("web", sizes.ingresses, watcher=w)
        await asyncio.sleep(2.0)  # let the initial list's tail settle
        for r in range(runs):
            phase = f"burst{r}"
            names = [
                (cluster.namespaces[i % len(cluster.namespaces)], f"{phase}-{i}")
                for i in range(sizes.burst)
            ]
            t0 = time.monotonic()
            await cluster.make_ingresses(names)
            created_at = time.monotonic()
            done_at = await arrivals.wait(phase, sizes.burst, watcher=w)
            e2e.append(done_at - t0)
            creates.append(created_at - t0)
            drains.append(max(0.0, done_at - created_at))
        peak = w.peak_rss_mib()
    b = sizes.burst
    return [
        Result(
            summarize(f"watch burst of {b} creates -> Kafka", e2e, ops=b, rss_mib=peak),
            {
                "events/s": b / statistics.median(e2e),
                "creates/s (apiserver)": b / statistics.median(creates),
                "drain after last create ms": statistics.median(drains) * 1000,
            },
        )
    ]


async def main(sizes: Sizes, runs: int, json_path: Path | None) -> int:
    stack = load_stack_env()
    if "KUBECONFIG" not in stack:
        print("the local stack is not up (`./dev up`)", file=sys.stderr)
        return 2
    api_client = await config.new_client_from_config(config_file=stack["KUBECONFIG"])
    cluster = Cluster(api_client, f"bw-{uuid.uuid4().hex[:5]}")
    per_ns = max(1, sizes.ingresses // sizes.namespaces)
    results: list[Result] = []
    try:
        t0 = time.monotonic()
        await cluster.make_namespaces(sizes.namespaces)
        await cluster.make_ingresses(
            [
                (cluster.namespaces[i // per_ns % sizes.namespaces], f"web-{i}")
                for i in range(sizes.ingresses)
            ]
        )
        took = time.monotonic() - t0
        print(
            f"setup: {sizes.ingresses} Ingresses in {sizes.namespaces} namespaces created in "
            f"{took:.1f}s ({sizes.ingresses / took:.0f}/s)",
            flush=True,
        )
        for result in await initial_lists(stack, sizes, cluster.prefix, runs):
            result.print()
            results.append(result)
        for result in await watch_bursts(stack, cluster, sizes, runs):
            result.print()
            results.append(result)
    finally:
        t0 = time.monotonic()
        await cluster.delete_all()
        print(f"cleanup: {len(cluster.namespaces)} namespaces in {time.monotonic() - t0:.1f}s")
        await api_client.close()
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        with json_path.open("a") as fh:
            for result in results:
                record = {
                    **asdict(result.measurement),
                    **result.extra,
                    "ingresses": sizes.ingresses,
                    "namespaces": sizes.namespaces,
                    "python": platform.python_version(),
                    "ts": time.time(),
                }
                fh.write(json.dumps(record) + "\n")
    return 0


def parse_args() -> tuple[Sizes, int, Path | None]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="2,000 Ingresses in 200 namespaces")
    parser.add_argument("--ingresses", type=int, help="Ingresses (default 20,000)")
    parser.add_argument("--namespaces", type=int, help="namespaces (default 2,000)")
    parser.add_argument("--burst", type=int, help="creates per watch burst (default N/10)")
    parser.add_argument("--runs", type=int, default=3, help="initial lists and bursts")
    parser.add_argument("--json", type=Path, help="append results as JSON lines to this file")
    args = parser.parse_args()
    n = args.ingresses or (2_000 if args.small else 20_000)
    m = args.namespaces or (200 if args.small else 2_000)
    if n < 1 or m < 1 or m > n or args.runs < 1:
        parser.error("need 1 <= namespaces <= ingresses and runs >= 1")
    return (
        Sizes(ingresses=n, namespaces=m, burst=args.burst or max(1, n // 10)),
        args.runs,
        args.json,
    )


if __name__ == "__main__":
    sizes, runs, json_path = parse_args()
    sys.exit(asyncio.run(main(sizes, runs, json_path)))
