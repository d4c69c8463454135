"""`ripple sla`: the current propagation latency per stage (p50/p90/p99), from the xds
servers' Prometheus histograms or from the `xds.ack` spans in Jaeger, against the SLA.

Two sources (see docs/tracing.md):
- metrics (default): GET each xds server's /metrics, add up the
  `ripple_xds_propagation_seconds` histograms of every server and tenant bucket (or of one
  bucket), and estimate the quantiles as Prometheus' histogram_quantile does (linear within the
  bucket; a quantile in the +Inf bucket reads as the largest finite bound). The histograms count
  since each server started; `--interval S` scrapes twice, S seconds apart, and reports only
  the changes ACKed in between.
- jaeger: the `xds.ack` spans of the last `--lookback` (one per change and Envoy node) carry
  each stage's milliseconds; quantiles are exact over the spans found (at most `--limit`
  traces).

Two clocks: `total` runs from the watcher's observation of the change to the ACK; `api_ack`
from the API server's own time of the change (creationTimestamp / newest managedFields time /
deletionTimestamp, whole seconds: may over-count by up to 1 s; the observation when unknown)
to the ACK, so it also counts time the change waited while the watcher was down.

Exit status: 0; 1 when `--sla` is given and the p99 of `total` or of `api_ack` exceeds it; 3
when there is no data (or no server answered)."""

from __future__ import annotations

import argparse
import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

METRIC = "ripple_xds_propagation_seconds"
STAGES = ("observe_publish", "publish_write", "write_apply", "apply_ack", "total", "api_ack")
# The stages held against --sla: observation -> ACK and API time -> ACK.
SLA_STAGES = ("total", "api_ack")
QUANTILES = (0.5, 0.9, 0.99)
DEFAULT_METRICS_URL = "http://127.0.0.1:18082/metrics"  # scripts.pipeline's xds
DEFAULT_JAEGER_URL = "http://127.0.0.1:16686"
EXIT_OK, EXIT_BREACH, EXIT_NO_DATA = 0, 1, 3

_SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)"
)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

# stage -> upper bound -> cumulative count
Buckets = dict[str, dict[float, float]]
Fetch = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Row:
    """One stage's figures (seconds); quantiles are None without data."""

    stage: str
    count: int
    quantiles: tuple[float | None, ...]


def parse_histograms(text: str, *, tenant_bucket: int | None = None) -> Buckets:
    """The propagation histogram's cumulative bucket counts per stage, added up over the
    tenant buckets (or only `tenant_bucket`)."""
    out: Buckets = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None or match["name"] != f"{METRIC}_bucket":
            continue
        labels = dict(_LABEL.findall(match["labels"] or ""))
        if tenant_bucket is not None and labels.get("tenant_bucket") != str(tenant_bucket):
            continue
        stage, le = labels.get("stage"), labels.get("le")
        if stage is None or le is None:
            continue
        bound = math.inf if le == "+Inf" else float(le)
        by_bound = out.setdefault(stage, {})
        by_bound[bound] = by_bound.get(bound, 0.0) + float(match["value"])
    return out


def merge(parts: Iterable[Buckets]) -> Buckets:
    out: Buckets = {}
    for part in parts:
        for stage, by_bound in part.items():
            into = out.setdefault(stage, {})
            for bound, count in by_bound.items():
                into[bound] = into.get(bound, 0.0) + count
    return out


def subtract(after: Buckets, before: Buckets) -> Buckets:
    """The observations between two scrapes (a server restarted meanwhile counts from 0)."""
    out: Buckets = {}
    for stage, by_bound in after.items():
        earlier = before.get(stage, {})
        out[stage] = {b: max(c - earlier.get(b, 0.0), 0.0) for b, c in by_bound.items()}
    return out


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """Prometheus' histogram_quantile over cumulative `buckets` (bound -> count)."""
    bounds = sorted(buckets)
    if not bounds or bounds[-1] != math.inf:
        return None
    total = buckets[math.inf]
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == math.inf:
                finite = [b for b in bounds if b != math.inf]
                return finite[-1] if finite else None
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return None


def exact_quantile(q: float, values: Sequence[float]) -> float | None:
    """The q-quantile of `values` by linear interpolation between closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def rows_from_buckets(buckets: Buckets) -> list[Row]:
    return [
        Row(
            stage=stage,
            count=int(buckets.get(stage, {}).get(math.inf, 0)),
            quantiles=tuple(histogram_quantile(q, buckets.get(stage, {})) for q in QUANTILES),
        )
        for stage in STAGES
    ]


def stage_samples(traces: Mapping[str, Any]) -> dict[str, list[float]]:
    """Seconds per stage from the `xds.ack` spans of a Jaeger /api/traces answer."""
    out: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for trace in traces.get("data") or []:
        for span in trace.get("spans", []):
            if span.get("operationName") != "xds.ack":
                continue
            tags = {t["key"]: t["value"] for t in span.get("tags", [])}
            for stage in STAGES:
                value = tags.get(f"ripple.{stage}_ms")
                if isinstance(value, int | float):
                    out[stage].append(float(value) / 1000)
    return out


def rows_from_samples(samples: Mapping[str, Sequence[float]]) -> list[Row]:
    return [
        Row(
            stage=stage,
            count=len(samples.get(stage, ())),
            quantiles=tuple(exact_quantile(q, samples.get(stage, ())) for q in QUANTILES),
        )
        for stage in STAGES
    ]


def render(rows: Sequence[Row], *, source: str, sla_s: float | None) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value * 1000:.1f}"

    header = f"{'stage':<16}{'count':>8}" + "".join(
        f"{f'p{round(q * 100)} ms':>12}" for q in QUANTILES
    )
    lines = [f"propagation latency ({source})", header]
    for row in rows:
        cells = "".join(f"{ms(v):>12}" for v in row.quantiles)
        lines.append(f"{row.stage:<16}{row.count:>8}{cells}")
    if sla_s is not None:
        for stage in SLA_STAGES:
            p99 = stage_p99(rows, stage)
            verdict = "no data" if p99 is None else ("BREACH" if p99 > sla_s else "ok")
            lines.append(f"SLA {sla_s:g} s on p99 {stage}: {verdict}")
    return "\n".join(lines)


def stage_p99(rows: Sequence[Row], stage: str) -> float | None:
    for row in rows:
        if row.stage == stage:
            return row.quantiles[QUANTILES.index(0.99)]
    return None


def exit_code(rows: Sequence[Row], sla_s: float | None) -> int:
    if all(row.count == 0 for row in rows):
        return EXIT_NO_DATA
    if sla_s is not None:
        for stage in SLA_STAGES:
            p99 = stage_p99(rows, stage)
            if p99 is not None and p99 > sla_s:
                return EXIT_BREACH
    return EXIT_OK


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
    return body.decode()


def scrape(urls: Sequence[str], *, fetch: Fetch, tenant_bucket: int | None) -> Buckets:
    """Every reachable server's histograms, added up (an unreachable one is reported)."""
    parts: list[Buckets] = []
    for url in urls:
        try:
            parts.append(parse_histograms(fetch(url), tenant_bucket=tenant_bucket))
        except (OSError, urllib.error.URLError, ValueError) as exc:
            print(f"warning: {url}: {exc}")
    if not parts:
        raise OSError("no xds server answered")
    return merge(parts)


def jaeger_rows(args: argparse.Namespace, *, fetch: Fetch) -> list[Row]:
    query = urllib.parse.urlencode(
        {
            "service": args.service,
            "operation": "xds.ack",
            "lookback": args.lookback,
            "limit": str(args.limit),
        }
    )
    answer = json.loads(fetch(f"{args.jaeger.rstrip('/')}/api/traces?{query}"))
    return rows_from_samples(stage_samples(answer))


def run(
    args: argparse.Namespace,
    *,
    fetch: Fetch = http_get,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    try:
        if args.source == "jaeger":
            rows = jaeger_rows(args, fetch=fetch)
            source = f"jaeger {args.jaeger}, service {args.service}, last {args.lookback}"
        else:
            urls = args.metrics or [DEFAULT_METRICS_URL]
            buckets = scrape(urls, fetch=fetch, tenant_bucket=args.tenant_bucket)
            source = f"{len(urls)} xds server(s), since start"
            if args.interval:
                sleep(args.interval)
                after = scrape(urls, fetch=fetch, tenant_bucket=args.tenant_bucket)
                buckets = subtract(after, buckets)
                source = f"{len(urls)} xds server(s), last {args.interval:g} s"
            if args.tenant_bucket is not None:
                source += f", tenant bucket {args.tenant_bucket}"
            rows = rows_from_buckets(buckets)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}")
        return EXIT_NO_DATA
    print(render(rows, source=source, sla_s=args.sla))
    return exit_code(rows, args.sla)


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "sla",
        help="print propagation latency p50/p90/p99 per stage against the SLA",
        description=(
            "Print the p50/p90/p99 of change propagation per stage: observe_publish (the "
            "watcher saw the API event -> Kafka), publish_write (-> the translator wrote the "
            "tenant version to Redis), write_apply (-> an xds server applied it), apply_ack "
            "(-> an Envoy ACKed it), total (the watcher's observation -> Envoy ACK) and "
            "api_ack (the API server's own time of the change, whole seconds, -> Envoy ACK: "
            "counts outages of the watcher too). One sample per "
            "change and Envoy node. Source 'metrics' (default) adds up the "
            "ripple_xds_propagation_seconds histograms of the xds servers' /metrics URLs "
            "(quantiles estimated within histogram buckets, counted since each server "
            "started, or over --interval); source 'jaeger' reads the xds.ack spans of the "
            "last --lookback from Jaeger's query API (exact quantiles)."
        ),
        epilog=(
            "Exit status: 0; 1 when --sla is given and p99 total or p99 api_ack exceeds it; 3 "
            "without data. "
            "Example: ripple sla --metrics http://xds-0:9090/metrics "
            "--metrics http://xds-1:9090/metrics --interval 60 --sla 5"
        ),
    )
    parser.add_argument(
        "--source", choices=("metrics", "jaeger"), default="metrics", help="default: metrics"
    )
    parser.add_argument(
        "--metrics",
        action="append",
        metavar="URL",
        help=f"an xds server's /metrics URL, repeated per replica (default {DEFAULT_METRICS_URL})",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=0.0,
        metavar="S",
        help="metrics: scrape twice S seconds apart and report only what was ACKed between",
    )
    parser.add_argument(
        "--tenant-bucket",
        type=int,
        default=None,
        metavar="N",
        help="metrics: only this tenant bucket (the xds servers hash tenants into buckets)",
    )
    parser.add_argument(
        "--jaeger",
        default=DEFAULT_JAEGER_URL,
        help=f"jaeger: query API base URL (default {DEFAULT_JAEGER_URL})",
    )
    parser.add_argument(
        "--service", default="ripple-xds", help="jaeger: the xds service name (default ripple-xds)"
    )
    parser.add_argument("--lookback", default="1h", help="jaeger: how far back (default 1h)")
    parser.add_argument(
        "--limit", type=int, default=1000, help="jaeger: at most this many traces (default 1000)"
    )
    parser.add_argument(
        "--sla",
        type=float,
        default=None,
        metavar="S",
        help="exit 1 when the p99 of total or of api_ack exceeds S seconds",
    )
    parser.set_defaults(func=run)
