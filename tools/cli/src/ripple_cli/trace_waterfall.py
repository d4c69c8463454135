"""`ripple trace`: where is my change. One change's trace from the Jaeger query API as a
waterfall in the terminal: each stage (the watch event observed, the watcher's publish, the
Kafka hop, the translator's write, each xds replica's apply, the pushes to each Envoy and each
Envoy's ACK) with its start and duration after the observation, the gap since the stage
before, the SLA verdict and the trace's Jaeger UI URL.

The change: `--trace-id ID`, or the newest watcher event of `--tenant T` (optionally
`--kind`, `--name`) in the last `--lookback`. The services export spans in batches, so
`--wait S` polls until the trace holds an ACK (or S seconds passed).

Verdict: the slowest Envoy's observation -> ACK time (the `ripple.total_ms` of its `xds.ack`
span) and, when the watcher knew it, the API server's time of the change -> ACK
(`ripple.api_ack_ms`, whole-second API timestamps) against `--sla`; the API time is the
waterfall's first row (before the observation). Exit status: 0 within the SLA; 1 past it,
NACKed, or not ACKed yet; 3 no such trace (or Jaeger did not answer)."""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_JAEGER_URL = "http://127.0.0.1:16686"
WATCHER_SERVICE = "ripple-watcher"
EXIT_OK, EXIT_LATE, EXIT_NOT_FOUND = 0, 1, 3
BAR_WIDTH = 30
SHORT = {"ripple-watcher": "watcher", "ripple-translator": "translator", "ripple-xds": "xds"}

Fetch = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Span:
    """A span of a Jaeger trace (times in microseconds since the epoch)."""

    service: str
    name: str
    span_id: str
    parent_id: str | None
    start_us: int
    duration_us: int
    tags: Mapping[str, Any]

    @property
    def end_us(self) -> int:
        return self.start_us + self.duration_us


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the waterfall (milliseconds after the observation)."""

    label: str
    detail: str
    start_ms: float
    duration_ms: float | None
    gap_ms: float | None


@dataclass(frozen=True, slots=True)
class Verdict:
    code: int
    text: str


def parse_trace(trace: Mapping[str, Any]) -> list[Span]:
    """The spans of one trace of a Jaeger /api/traces answer."""
    processes = trace.get("processes") or {}
    spans = []
    for raw in trace.get("spans") or []:
        parents = [r["spanID"] for r in raw.get("references") or [] if r["refType"] == "CHILD_OF"]
        process = processes.get(raw.get("processID"), {})
        spans.append(
            Span(
                service=str(process.get("serviceName", "?")),
                name=str(raw["operationName"]),
                span_id=str(raw["spanID"]),
                parent_id=parents[0] if parents else None,
                start_us=int(raw["startTime"]),
                duration_us=int(raw["duration"]),
                tags={t["key"]: t["value"] for t in raw.get("tags") or []},
            )
        )
    return spans


def _int(value: object) -> int | None:
    """An int64 tag (Jaeger's JSON gives them as strings), None when absent or not one."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _origin_us(spans: Sequence[Span]) -> int:
    """The observation of the change (the watcher's `ripple.observed_at_ns`), else the first
    span's start."""
    for span in spans:
        observed = span.tags.get("ripple.observed_at_ns")
        if span.name == "watcher.publish" and observed is not None:
            return int(observed) // 1000
    return min(s.start_us for s in spans)


def _detail(span: Span) -> str:
    tags = span.tags
    if span.name == "watcher.publish":
        ns = tags.get("ripple.namespace") or ""
        name = f"{ns}/{tags.get('ripple.name')}" if ns else str(tags.get("ripple.name"))
        return f"{tags.get('ripple.event', '')} {tags.get('ripple.kind', '')} {name}".strip()
    if span.name == "translator.write":
        version = tags.get("ripple.version")
        return f"tenant {tags.get('ripple.tenant')} v{version}" if version else "no write"
    if span.name == "xds.apply":
        return f"v{tags.get('ripple.version')}, {tags.get('ripple.resources_changed', 0)} resources"
    if span.name == "xds.push":
        outcome = tags.get("xds.outcome", "no answer yet")
        return (
            f"{tags.get('xds.type')} -> {tags.get('ripple.node')} "
            f"({tags.get('xds.resources')} resources): {outcome}"
        )
    if span.name == "xds.ack":
        return f"{tags.get('ripple.node')} ACKed v{tags.get('ripple.version')}"
    return ""


def waterfall(spans: Sequence[Span]) -> list[Row]:
    """The stages in time order, from the observation (see the module doc)."""
    origin = _origin_us(spans)
    rows: list[Row] = []
    watcher = next((s for s in spans if s.name == "watcher.publish"), None)
    api_ns = _int(watcher.tags.get("ripple.api_at_ns")) if watcher is not None else None
    if api_ns is not None:
        rows.append(
            Row(
                "api",
                "the API server's time of the change (whole seconds)",
                (api_ns // 1000 - origin) / 1000,
                None,
                None,
            )
        )
    if watcher is not None and "ripple.observed_at_ns" in watcher.tags:
        rows.append(Row("observed", "the watch delivered the API change", 0.0, None, None))
    frontier = origin
    for span in sorted(spans, key=lambda s: (s.start_us, s.end_us)):
        gap = (span.start_us - frontier) / 1000
        label = f"{SHORT.get(span.service, span.service)}: {span.name}"
        if span.name == "translator.write" and watcher is not None and gap > 0:
            label += " (after the Kafka hop)"
        rows.append(
            Row(
                label=label,
                detail=_detail(span),
                start_ms=(span.start_us - origin) / 1000,
                duration_ms=span.duration_us / 1000,
                gap_ms=max(gap, 0.0),
            )
        )
        frontier = max(frontier, span.end_us)
    return rows


def verdict(spans: Sequence[Span], *, sla_s: float) -> Verdict:
    acks = [s for s in spans if s.name == "xds.ack"]
    nacked = sorted(
        {
            str(s.tags.get("ripple.node"))
            for s in spans
            if s.name == "xds.push" and s.tags.get("xds.outcome") == "nack"
        }
    )
    if nacked and not acks:
        return Verdict(EXIT_LATE, f"NACKED by {', '.join(nacked)}: the change is not served")
    if not acks:
        return Verdict(EXIT_LATE, "NOT ACKED by any Envoy yet (or its spans are not exported)")
    origin = _origin_us(spans)

    def total_ms(ack: Span) -> float:
        value = ack.tags.get("ripple.total_ms")
        return float(value) if isinstance(value, int | float) else (ack.end_us - origin) / 1000

    slowest = max(acks, key=total_ms)
    worst = total_ms(slowest)
    nodes = len({a.tags.get("ripple.node") for a in acks})
    where = (
        f"{nodes} Envoy node(s) ACKed, slowest {slowest.tags.get('ripple.node')} at {worst:.1f} ms"
    )
    api = [v for a in acks if isinstance(v := a.tags.get("ripple.api_ack_ms"), int | float)]
    worst_api = max(api, default=0.0)
    if api:
        where += f"; {worst_api:.1f} ms from the API's time"
    if nacked:
        where += f"; NACKed by {', '.join(nacked)}"
    if max(worst, worst_api) > sla_s * 1000:
        return Verdict(EXIT_LATE, f"SLA {sla_s:g} s: BREACH ({where})")
    return Verdict(EXIT_LATE if nacked else EXIT_OK, f"SLA {sla_s:g} s: ok ({where})")


def render(trace_id: str, spans: Sequence[Span], *, sla_s: float, ui_url: str) -> str:
    rows = waterfall(spans)
    end = max([r.start_ms + (r.duration_ms or 0) for r in rows] + [1e-9])
    watcher = next((s for s in spans if s.name == "watcher.publish"), None)
    title = f"trace {trace_id}"
    if watcher is not None:
        title += f": {_detail(watcher)} (tenant {watcher.tags.get('ripple.tenant')})"
    label_width = max(len(r.label) for r in rows) if rows else 10
    lines = [
        title,
        f"{'at ms':>9} {'took ms':>8} {'gap ms':>8}  {'stage':<{label_width}}  "
        f"{'|' + f'0 .. {end:.1f} ms'.center(BAR_WIDTH) + '|'}  detail",
    ]
    for row in rows:
        first = int(row.start_ms / end * BAR_WIDTH)
        last = int((row.start_ms + (row.duration_ms or 0)) / end * BAR_WIDTH)
        first = min(first, BAR_WIDTH - 1)
        bar = " " * first + "#" * max(min(last, BAR_WIDTH) - first, 1)
        took = "-" if row.duration_ms is None else f"{row.duration_ms:.1f}"
        gap = "-" if row.gap_ms is None else f"{row.gap_ms:.1f}"
        lines.append(
            f"{row.start_ms:>9.1f} {took:>8} {gap:>8}  {row.label:<{label_width}}  "
            f"|{bar:<{BAR_WIDTH}}|  {row.detail}"
        )
    lines.append(verdict(spans, sla_s=sla_s).text)
    lines.append(f"Jaeger UI: {ui_url}")
    return "\n".join(lines)


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
    return body.decode()


def find_trace_id(
    jaeger: str,
    *,
    tenant: str,
    kind: str | None,
    name: str | None,
    lookback: str,
    fetch: Fetch,
    extra: Mapping[str, str] | None = None,
) -> str | None:
    """The trace of the newest watcher event of the tenant (and kind, name, and the `extra`
    span or process tags)."""
    tags: dict[str, str] = {**(extra or {}), "ripple.tenant": tenant}
    if kind:
        tags["ripple.kind"] = kind
    if name:
        tags["ripple.name"] = name
    query = urllib.parse.urlencode(
        {
            "service": WATCHER_SERVICE,
            "operation": "watcher.publish",
            "tags": json.dumps(tags),
            "lookback": lookback,
            "limit": "50",
        }
    )
    answer = json.loads(fetch(f"{jaeger}/api/traces?{query}"))
    newest: tuple[int, str] | None = None
    for trace in answer.get("data") or []:
        for span in parse_trace(trace):
            if span.name == "watcher.publish" and (newest is None or span.start_us > newest[0]):
                newest = (span.start_us, str(trace["traceID"]))
    return None if newest is None else newest[1]


def load_trace(jaeger: str, trace_id: str, *, fetch: Fetch) -> list[Span]:
    try:
        answer = json.loads(fetch(f"{jaeger}/api/traces/{trace_id}"))
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise
    return [s for t in answer.get("data") or [] for s in parse_trace(t)]


def run(
    args: argparse.Namespace,
    *,
    fetch: Fetch = http_get,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    jaeger = args.jaeger.rstrip("/")
    if not args.trace_id and not args.tenant:
        print("error: give --trace-id or --tenant")
        return EXIT_NOT_FOUND
    deadline = clock() + args.wait
    trace_id: str | None = args.trace_id
    spans: list[Span] = []
    while True:
        try:
            if not args.trace_id:
                trace_id = find_trace_id(
                    jaeger,
                    tenant=args.tenant,
                    kind=args.kind,
                    name=args.name,
                    lookback=args.lookback,
                    fetch=fetch,
                    extra=dict(args.tag or []),
                )
            spans = load_trace(jaeger, trace_id, fetch=fetch) if trace_id else []
        except (OSError, ValueError) as exc:
            print(f"error: jaeger {jaeger}: {exc}")
            return EXIT_NOT_FOUND
        if any(s.name == "xds.ack" for s in spans) or clock() >= deadline:
            break
        sleep(0.5)
    if not trace_id or not spans:
        what = f"trace {args.trace_id}" if args.trace_id else f"a change of tenant {args.tenant}"
        print(f"not found: {what} in jaeger {jaeger} (last {args.lookback})")
        return EXIT_NOT_FOUND
    ui = (args.jaeger_ui or jaeger).rstrip("/")
    print(render(trace_id, spans, sla_s=args.sla, ui_url=f"{ui}/trace/{trace_id}"))
    return verdict(spans, sla_s=args.sla).code


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "trace",
        help="one change's waterfall from Jaeger: each stage, its duration and gaps, the SLA",
        description=(
            "Print one change's trace as a waterfall: the watch event observed, the watcher's "
            "publish, the Kafka hop, the translator's write, each xds replica's apply, the "
            "pushes to each Envoy and each Envoy's ACK, with start and duration after the "
            "observation and the gap since the stage before; then the SLA verdict and the "
            "trace's Jaeger UI URL."
        ),
        epilog=(
            "Exit status: 0 ACKed within the SLA; 1 past it, NACKed or not ACKed; 3 not found. "
            "Example: ripple trace --tenant shop --kind Ingress --name web --wait 10"
        ),
    )
    parser.add_argument("--trace-id", default=None, help="the trace (32 hex digits)")
    parser.add_argument("--tenant", default=None, help="the newest change of this tenant")
    parser.add_argument("--kind", default=None, help="with --tenant: of this kind (Ingress, ...)")
    parser.add_argument("--name", default=None, help="with --tenant: of the object with this name")
    parser.add_argument(
        "--tag",
        action="append",
        type=key_value,
        metavar="KEY=VALUE",
        help="with --tenant: only traces whose watcher span or process has this tag (repeated; "
        "e.g. a resource attribute from OTEL_RESOURCE_ATTRIBUTES when pipelines share a Jaeger)",
    )
    parser.add_argument(
        "--jaeger",
        default=DEFAULT_JAEGER_URL,
        help=f"Jaeger query API base URL (default {DEFAULT_JAEGER_URL})",
    )
    parser.add_argument(
        "--jaeger-ui", default=None, help="Jaeger UI base URL for the link (default: --jaeger)"
    )
    parser.add_argument("--lookback", default="1h", help="with --tenant: how far back (default 1h)")
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="S",
        help="poll up to S seconds until the trace holds an Envoy ACK",
    )
    parser.add_argument(
        "--sla", type=float, default=5.0, metavar="S", help="the SLA in seconds (default 5)"
    )
    parser.set_defaults(func=run)
