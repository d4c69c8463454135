"""The consume loop's commit check at scale: `Engine.checkpoint()` with N owned tenants,
every one written (nothing pending), on the unit tests' in-memory store. The loop calls it
after every poll (every `RIPPLE_TRANSLATOR_POLL_MS`, 100 ms), so its cost per owned tenant is
CPU spent all the time, idle or not.

    .venv/bin/python -m bench.checkpoint [--tenants 10000] [--repeat 50]

Prints the median over `--repeat` calls."""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
from collections.abc import Sequence

import structlog

from ripple_translator.engine import Engine
from ripple_translator.writer import WriterConfig
from tests.unit.translator_service.support import (
    TOPIC,
    FakePartitions,
    FakeStore,
    cluster,
    event,
    ingress,
    ingress_class,
    record,
    service,
)


async def checkpoint_ms(tenants: int, repeat: int) -> float:
    engine = Engine(store=FakeStore(), partitions=FakePartitions(), config=WriterConfig())
    await engine.assign([(TOPIC, 0)])
    records = [record(0, cluster(ingress_class()))]
    for i in range(tenants):
        t = f"t{i}"
        records.append(record(len(records), event(t, service(t))))
        records.append(record(len(records), event(t, ingress(t, "web", f"{t}.example.com"))))
    await engine.handle(records)
    if not await engine.settle(timeout_s=600):
        raise SystemExit("the tenants were not written within 600 s")
    await engine.checkpoint()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await engine.checkpoint()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.checkpoint", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--tenants", type=int, default=10_000, help="owned tenants")
    parser.add_argument("--repeat", type=int, default=50, help="calls measured")
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    ms = asyncio.run(checkpoint_ms(args.tenants, args.repeat))
    print(f"{args.tenants:,} owned tenants, nothing pending: checkpoint median {ms:.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
