"""Neighbours' writes while a big tenant is translated in the translator's worker thread, by
GIL switch interval (the writer sets `writer.GIL_SWITCH_S` once it translates in a thread;
issue #15).

A tenant of `--objects` Ingresses (default 5,000) is translated over and over in a worker
thread, as the writer does for a flooding tenant (`offload_objects`), while the event loop
runs a real `Engine` on the stack's Redis (host claims included) and times one neighbour
change at a time: handed to the engine -> its tenant version durable in Redis. The worker
holds the GIL between the event loop's I/O waits; after each Redis reply the event loop waits
for the GIL up to the switch interval, dozens of times per write. Each round measures
Python's default interval (5 ms) and the writer's (0.5 ms) back to back; reported:
the neighbours' median and p90 write time per interval, their ratio, and the worker's
translations per second (what the shorter interval costs the flood).

    .venv/bin/python -m bench.gil_switch --rounds 3 --json bench/results/gil_switch.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.translator import (
    TOPIC,
    Sizes,
    drop,
    envelope,
    ingress,
    ingress_class,
    load_into_redis,
    per_tenant,
    tenant_names,
    tenant_objects,
)
from ripple_common.envelope import EventType
from ripple_common.redis_client import RedisClient
from ripple_translator.engine import Engine, Record
from ripple_translator.translate import translate
from ripple_translator.writer import GIL_SWITCH_S
from scripts.stack_env import load_stack_env

PYTHON_DEFAULT_S = 0.005
NEIGHBOURS = Sizes(ingresses=200, tenants=20)


@dataclass(frozen=True, slots=True)
class Sample:
    interval_ms: float
    median_ms: float
    p90_ms: float
    translations_per_s: float
    n: int


class Translating:
    """The big tenant translated over and over in a worker thread until stopped."""

    def __init__(self, objects: int) -> None:
        big = tenant_objects(Sizes(ingresses=objects, tenants=1))[0]
        self._state = big.state()
        self._classes = (ingress_class(),)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="translate", daemon=True)
        self.finished: list[float] = []  # perf_counter() at the end of each translation

    def _run(self) -> None:
        while not self._stop.is_set():
            translate(self._state, ingress_classes=self._classes)
            self.finished.append(time.perf_counter())

    def rate(self) -> float:
        """Translations per second between the first and the last one finished."""
        if len(self.finished) < 2:
            return float("nan")
        return (len(self.finished) - 1) / (self.finished[-1] - self.finished[0])

    def __enter__(self) -> Translating:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


class Neighbours:
    """One changed Ingress at a time in the neighbour tenants, timed until written."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._tenants = tenant_names(NEIGHBOURS)
        self._offset = 1 + NEIGHBOURS.tenants * (2 + per_tenant(NEIGHBOURS))
        self._ports: dict[str, int] = {}
        self._n = 0

    async def one(self) -> float:
        tenant = self._tenants[self._n % len(self._tenants)]
        self._n += 1
        port = self._ports[tenant] = 81 if self._ports.get(tenant, 80) == 80 else 80
        env = envelope(tenant, ingress(tenant, 0, port=port), type_=EventType.MODIFIED)
        record = Record(topic=TOPIC, partition=0, offset=self._offset, value=env.to_bytes())
        self._offset += 1
        slot = self._engine.slot(tenant)
        assert slot is not None
        before = slot.version
        started = time.perf_counter()
        await self._engine.handle([record])
        deadline = started + 30
        while slot.version <= before or slot.busy:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{tenant}'s change not written within 30 s")
            await asyncio.sleep(0.001)  # a real wait: the loop releases the GIL as it idles
        return time.perf_counter() - started


async def measure(
    neighbours: Neighbours, objects: int, interval_s: float, seconds: float
) -> Sample:
    """Neighbour changes one after another for `seconds` while the big tenant translates."""
    sys.setswitchinterval(interval_s)
    times: list[float] = []
    with Translating(objects) as worker:
        await asyncio.sleep(0.2)  # the worker is translating
        until = time.perf_counter() + seconds
        while time.perf_counter() < until or len(times) < 10:
            times.append(await neighbours.one())
        rate = worker.rate()
    deciles = statistics.quantiles(times, n=10)
    return Sample(
        interval_ms=interval_s * 1000,
        median_ms=statistics.median(times) * 1000,
        p90_ms=deciles[-1] * 1000,
        translations_per_s=rate,
        n=len(times),
    )


async def run(args: argparse.Namespace) -> list[Sample]:
    stack = load_stack_env()
    if "RIPPLE_REDIS_URL" not in stack:
        sys.exit("the local stack is not up (`./dev up`)")
    redis = RedisClient(stack["RIPPLE_REDIS_URL"])
    await redis.start()
    prefix = f"bench-gil-{uuid.uuid4().hex[:8]}"
    samples: list[Sample] = []
    try:
        engine, _ = await load_into_redis(redis.client, NEIGHBOURS, prefix)
        neighbours = Neighbours(engine)
        for _ in range(args.rounds):
            for interval_s in (PYTHON_DEFAULT_S, GIL_SWITCH_S):
                sample = await measure(neighbours, args.objects, interval_s, args.seconds)
                print(
                    f"switch interval {sample.interval_ms:4.1f} ms: neighbour write median "
                    f"{sample.median_ms:7.1f} ms, p90 {sample.p90_ms:7.1f} ms; big tenant "
                    f"translated {sample.translations_per_s:.2f}/s",
                    flush=True,
                )
                samples.append(sample)
        await engine.drain(timeout_s=30)
    finally:
        sys.setswitchinterval(PYTHON_DEFAULT_S)
        await drop(redis.client, prefix)
        await redis.stop()
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gil_switch", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both intervals")
    parser.add_argument(
        "--seconds", type=float, default=8.0, help="how long each sample changes neighbours"
    )
    parser.add_argument("--objects", type=int, default=5000, help="the big tenant's Ingresses")
    parser.add_argument("--json", type=Path, help="append the summary as one JSON line")
    args = parser.parse_args()
    samples = asyncio.run(run(args))
    summary: dict[str, object] = {"bench": "gil_switch", "objects": args.objects}
    for interval_ms in sorted({s.interval_ms for s in samples}, reverse=True):
        mine = [s for s in samples if s.interval_ms == interval_ms]
        summary[f"{interval_ms:g}ms"] = {
            "median_ms": round(statistics.median(s.median_ms for s in mine), 1),
            "p90_ms": round(statistics.median(s.p90_ms for s in mine), 1),
            "translations_per_s": round(statistics.median(s.translations_per_s for s in mine), 2),
        }
    medians = [v["median_ms"] for v in summary.values() if isinstance(v, dict)]
    summary["ratio"] = round(medians[0] / medians[-1], 1) if medians[-1] else None
    summary |= {"python": platform.python_version(), "ts": time.time()}
    line = json.dumps(summary)
    print(line)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        with args.json.open("a") as fh:
            fh.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
