"""Benchmark harness: run a workload several times in one process and report medians.

These machines are noisy, so a benchmark reports the median and spread of repeated runs, and
comparisons are made as ratios measured in the same run. Results are printed and, with
--json, appended as one JSON object per line to a file (bench/results/*.jsonl).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class Measurement:
    name: str
    unit: str
    runs: int
    median: float
    p10: float
    p90: float
    ops_per_run: int
    max_rss_mib: float

    def line(self) -> str:
        per_op = self.median / self.ops_per_run if self.ops_per_run else float("nan")
        return (
            f"{self.name:40} median {self.median:10.3f} {self.unit} "
            f"(p10 {self.p10:.3f}, p90 {self.p90:.3f}, n={self.runs}) "
            f"= {per_op * 1e6:9.2f} us/op  max RSS {self.max_rss_mib:.0f} MiB"
        )


def measure(name: str, fn: Callable[[], int], *, runs: int = 15, warmup: int = 2) -> Measurement:
    """Time `fn` (which returns how many operations it did) `runs` times after `warmup`."""
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    ops = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        ops = fn()
        samples.append(time.perf_counter() - t0)
    deciles = statistics.quantiles(samples, n=10) if len(samples) > 1 else samples * 9
    return Measurement(
        name=name,
        unit="s",
        runs=runs,
        median=statistics.median(samples),
        p10=deciles[0],
        p90=deciles[-1],
        ops_per_run=ops,
        max_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )


def summarize(
    name: str, samples: list[float], *, ops: int, rss_mib: float, unit: str = "s"
) -> Measurement:
    """The Measurement of samples timed by the caller (async or cross-process work that
    `measure` cannot run); `rss_mib` is the measured process's peak RSS."""
    deciles = statistics.quantiles(samples, n=10) if len(samples) > 1 else samples * 9
    return Measurement(
        name=name,
        unit=unit,
        runs=len(samples),
        median=statistics.median(samples),
        p10=deciles[0],
        p90=deciles[-1],
        ops_per_run=ops,
        max_rss_mib=rss_mib,
    )


def cli(description: str, benches: dict[str, Callable[[int], Measurement]]) -> int:
    """Common command line: pick benchmarks, set runs, optionally record JSON lines."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("names", nargs="*", help=f"subset of: {', '.join(benches)}")
    parser.add_argument("--runs", type=int, default=15, help="timed runs per benchmark")
    parser.add_argument("--json", type=Path, help="append results as JSON lines to this file")
    args = parser.parse_args()
    unknown = set(args.names) - set(benches)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    for name in args.names or list(benches):
        result = benches[name](args.runs)
        print(result.line(), flush=True)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            with args.json.open("a") as fh:
                record = {**asdict(result), "python": platform.python_version(), "ts": time.time()}
                fh.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit("run a benchmark module, e.g. python -m bench.envelope_codec")
