"""Probe benchmark (the gateway-api-bench method): how long a new Ingress takes to serve.

With N Ingresses in T tenants already loaded (default 20,000 in 2,000; `--quick`: 100 in 10),
new Ingresses are created one at a time, each in an existing tenant, and their host is polled
through the gateway Envoy until its answer turns 404 -> 200: create-to-200 latency (p50, p90,
p99, max). Every answer other than 404/200 while polling is an error. Meanwhile a background
prober hits the loaded routes and counts every answer that is not the backend's 200. Then a
burst: B new Ingresses (default 2,000) applied at once, and the time until all of them serve.

    RIPPLE_RUN=/tmp/probe-stack RIPPLE_GATEWAY_HTTP_PORT=20080 RIPPLE_GATEWAY_HTTPS_PORT=20443 \\
        RIPPLE_PIPELINE_HEALTH_PORT=28081 python -m bench.probe [--quick] [--readme]

It needs a running stack (redis, etcd, apiserver, kafka, envoy) in $RIPPLE_RUN and root (the
backend runs in the network namespace `ripple-probe`, 198.18.1.2:8080). Run the full size on a
SEPARATE stack (its own RIPPLE_RUN and RIPPLE_*_PORT variables, see stack/lib.sh): 20,000
Ingresses in a shared kube-apiserver slow everything else down. It starts the pipeline
(scripts.pipeline: xds, 2 translators, watcher) in that run directory unless it is running,
loads what is missing (objects are labelled and kept, so a second run skips the load), and
writes bench/results/probe-<mode>-<UTC stamp>.json and .png; `--readme` rewrites the README's
table of the latest figures (one row per size, from the newest result file of each size).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import os
import platform
import random
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, cast

import aiohttp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from ripple_translator.translate import DEFAULT_CONTROLLER
from scripts.demo import (
    INGRESS_CLASS,
    endpoint_slice_manifest,
    ingress_manifest,
    poll_until,
    service_manifest,
)
from scripts.netns_backend import PROBE_LAYOUT, BackendError, NetnsBackend
from scripts.pipeline import Pipeline, PipelineError, Ports, _rss_mib
from scripts.stack_env import REPO_DIR, load_stack_env, run_dir

RESULTS_DIR: Final = REPO_DIR / "bench" / "results"
README: Final = REPO_DIR / "README.md"
README_BEGIN: Final = "<!-- probe-bench:begin -->"
README_END: Final = "<!-- probe-bench:end -->"
LABEL: Final = ("ripple-bench", "probe")
HOST_SUFFIX: Final = "probe.test"
BACKEND: Final = ("be-a", 8080)
SERVICE: Final = "web"


# -- pure parts ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    mode: str
    ingresses: int
    tenants: int
    probes: int
    burst: int
    concurrency: int = 64

    def tenant(self, i: int) -> str:
        return f"probe-t{i:05d}"

    def loaded(self) -> list[tuple[str, str, str]]:
        """(namespace, Ingress name, host) of the preloaded Ingresses, round-robin."""
        return [
            (self.tenant(j % self.tenants), f"i{j:06d}", f"i{j}.t{j % self.tenants}.{HOST_SUFFIX}")
            for j in range(self.ingresses)
        ]

    def fresh(self, tag: str, count: int) -> list[tuple[str, str, str]]:
        """New Ingresses for a measurement, unique per run (`tag`), spread over the tenants."""
        rng = random.Random(tag)
        out = []
        for k in range(count):
            t = rng.randrange(self.tenants)
            out.append((self.tenant(t), f"{tag}-{k:05d}", f"{tag}-{k}.t{t}.{HOST_SUFFIX}"))
        return out


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max (nearest rank) of `samples`, empty input -> empty dict."""
    if not samples:
        return {}
    ordered = sorted(samples)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    return {
        "p50": rank(0.50),
        "p90": rank(0.90),
        "p99": rank(0.99),
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
    }


def readme_table(results: Iterable[dict[str, Any]]) -> str:
    """The README block: one row per size (Ingresses, tenants), newest result first wins."""
    latest: dict[tuple[int, int], dict[str, Any]] = {}
    for r in sorted(results, key=lambda r: str(r["date"]), reverse=True):
        latest.setdefault((int(r["plan"]["ingresses"]), int(r["plan"]["tenants"])), r)
    lines = [
        README_BEGIN,
        "| Ingresses / tenants | load: API / all serving | create -> 200 p50 / p90 / p99 / max "
        "(n) | errors | prober failures / answers | burst: N at once -> last create answered "
        "/ all serve | "
        "machine | commit | date |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (ingresses, tenants), r in sorted(latest.items(), reverse=True):
        p = r["probe"]["latency_ms"]
        b = r["burst"]
        lines.append(
            f"| {ingresses:,} / {tenants:,} "
            f"| {_load_cell(r['load'])} "
            f"| {p['p50']:.0f} / {p['p90']:.0f} / {p['p99']:.0f} / {p['max']:.0f} ms "
            f"({r['probe']['count']}) "
            f"| {r['errors']['total']} "
            f"| {r['prober']['failures']} / {r['prober']['ok'] + r['prober']['failures']:,} "
            f"| {b['count']:,} -> {b.get('created_s', 0):.1f} s / {b['all_serving_s']:.1f} s "
            f"| {r['machine']['summary']} | {r['commit']} | {r['date'][:16].replace('T', ' ')} |"
        )
    lines.append(README_END)
    return "\n".join(lines)


def _load_cell(load: dict[str, Any]) -> str:
    if load.get("skipped"):
        return "(loaded by an earlier run)"
    return f"{load['api_s']:.0f} s / {load['serving_s']:.0f} s"


def replace_block(text: str, block: str) -> str:
    """Swap the text between the markers (inclusive) for `block`."""
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        raise ValueError(f"README has no {README_BEGIN} ... {README_END} block")
    return text[:begin] + block + text[end + len(README_END) :]


# -- environment -----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown cpu"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_gib = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    cores = os.cpu_count() or 0
    return {
        "cpu": cpu,
        "cores": cores,
        "mem_gib": round(mem_gib, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "summary": f"{cores} cores, {mem_gib:.0f} GiB",
    }


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO_DIR, capture_output=True, text=True, check=False
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def session_rss_mib(pid_file: Path) -> float | None:
    """Resident memory of a stack component (its recorded process and its children)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            if os.getsid(int(proc.name)) == pid:
                total += _rss_mib(int(proc.name)) or 0.0
    return round(total, 1) if total else None


def open_files(pid: int) -> int | None:
    """How many files (sockets included) the process holds open."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def session_open_files(pid_file: Path) -> int | None:
    """Open files of a stack component (its recorded process and its children)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    counts: list[int] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError):
            if os.getsid(int(proc.name)) == pid:
                counts.append(open_files(int(proc.name)) or 0)
    return sum(counts) if counts else None


def _listening(url: str) -> bool:
    """Something accepts connections on the URL's port (of 127.0.0.1)."""
    match = re.search(r":(\d+)", url.split("//", 1)[-1])
    if match is None:
        return False
    try:
        socket.create_connection(("127.0.0.1", int(match.group(1))), timeout=1).close()
    except OSError:
        return False
    return True


def second_stack_env(run: Path, say: Callable[[str], None]) -> dict[str, str] | None:
    """The benchmark stack's client settings from `run`, tracing dropped when the stack has
    no collector listening; None (said) when no stack was started there."""
    stack = load_stack_env(run)
    if "KUBECONFIG" not in stack:
        say(f"no stack in {run} (missing {run / 'env'}): start one with stack/stack up")
        return None
    otlp = stack.get("RIPPLE_OTLP_ENDPOINT", "")
    if otlp and not _listening(otlp):
        stack.pop("RIPPLE_OTLP_ENDPOINT")  # no collector in this stack: tracing off
    return stack


# -- Kubernetes ------------------------------------------------------------------------------


async def _tolerate_conflict(call: Awaitable[Any]) -> None:
    try:
        await call
    except ApiException as exc:
        if exc.status != 409:
            raise


async def run_bounded(jobs: Iterable[Callable[[], Awaitable[None]]], *, limit: int) -> None:
    """Run the jobs with at most `limit` in flight; the first failure is raised."""
    sem = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[None]]) -> None:
        async with sem:
            await job()

    await asyncio.gather(*(one(job) for job in jobs))


def labelled(body: dict[str, Any]) -> dict[str, Any]:
    body["metadata"].setdefault("labels", {})[LABEL[0]] = LABEL[1]
    return body


class Cluster:
    def __init__(self, api: Any, plan: Plan, backend_ip: str) -> None:
        self.core = client.CoreV1Api(api)
        self.net = client.NetworkingV1Api(api)
        self.discovery = client.DiscoveryV1Api(api)
        self.plan = plan
        self.backend_ip = backend_ip

    async def count_loaded(self) -> int:
        """Preloaded Ingresses already there (paged list by label)."""
        count, token = 0, ""
        lister: Any = self.net.list_ingress_for_all_namespaces  # `_continue` is typed str only
        while True:
            more = {"_continue": token} if token else {}
            page = await lister(label_selector=f"{LABEL[0]}={LABEL[1]}", limit=5000, **more)
            count += len(page.items)
            token = page.metadata._continue
            if not token:
                return count

    async def ensure_class(self) -> None:
        body = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {"name": INGRESS_CLASS},
            "spec": {"controller": DEFAULT_CONTROLLER},
        }
        await _tolerate_conflict(self.net.create_ingress_class(cast(client.V1IngressClass, body)))

    async def tenant(self, ns: str) -> None:
        await _tolerate_conflict(
            self.core.create_namespace(cast(client.V1Namespace, {"metadata": {"name": ns}}))
        )
        await _tolerate_conflict(
            self.core.create_namespaced_service(
                ns, cast(client.V1Service, service_manifest(SERVICE, target_port=BACKEND[1]))
            )
        )
        await _tolerate_conflict(
            self.discovery.create_namespaced_endpoint_slice(
                ns,
                cast(
                    client.V1EndpointSlice,
                    endpoint_slice_manifest(SERVICE, address=self.backend_ip, port=BACKEND[1]),
                ),
            )
        )

    async def ingress(self, ns: str, name: str, host: str, *, loaded: bool = False) -> None:
        """Create an Ingress; a preloaded one is labelled (and may exist already)."""
        body = ingress_manifest(name, host, [("/", SERVICE)])
        if loaded:
            await _tolerate_conflict(
                self.net.create_namespaced_ingress(ns, cast(client.V1Ingress, labelled(body)))
            )
        else:
            await self.net.create_namespaced_ingress(ns, cast(client.V1Ingress, body))

    async def delete_fresh(self, items: Sequence[tuple[str, str, str]]) -> None:
        async def delete(ns: str, name: str) -> None:
            with contextlib.suppress(ApiException):
                await self.net.delete_namespaced_ingress(name, ns)

        await run_bounded(
            [functools.partial(delete, ns, name) for ns, name, _ in items],
            limit=self.plan.concurrency,
        )


# -- HTTP through the gateway ----------------------------------------------------------------


@dataclass(slots=True)
class Tally:
    ok: int = 0
    failures: list[tuple[float, str, int]] = field(default_factory=list)  # (t, host, status)


async def get_status(session: aiohttp.ClientSession, port: int, host: str) -> int:
    """GET / with Host on a keep-alive connection; 0 when there is no HTTP answer."""
    try:
        async with session.get(
            f"http://127.0.0.1:{port}/",
            headers={"Host": host},
            timeout=aiohttp.ClientTimeout(total=5),
        ) as resp:
            body = await resp.read()
            if resp.status == 200 and not body.startswith(f"backend={BACKEND[0]} ".encode()):
                return 299  # a 200 from something else than the backend
            return resp.status
    except (aiohttp.ClientError, TimeoutError, OSError):
        return 0


async def background_prober(
    port: int, hosts: Sequence[str], tally: Tally, *, interval_s: float = 0.01
) -> None:
    """Hit random loaded hosts until cancelled; every answer but the backend's 200 fails."""
    rng = random.Random(7)
    connector = aiohttp.TCPConnector(limit=4)
    async with aiohttp.ClientSession(connector=connector) as session:
        while True:
            host = rng.choice(hosts)
            status = await get_status(session, port, host)
            if status == 200:
                tally.ok += 1
            else:
                tally.failures.append((time.time(), host, status))
            await asyncio.sleep(interval_s)


async def wait_serving(
    port: int,
    hosts: Sequence[str],
    *,
    since: float,
    timeout_s: float,
    errors: list[dict[str, Any]],
    concurrency: int = 16,
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, float]:
    """Poll every host (rounds over those still 404) until each answers 200; returns the
    seconds from `since` to each host's first 200. Answers other than 200/404 go to errors."""
    pending = list(hosts)
    first: dict[str, float] = {}
    deadline = time.monotonic() + timeout_s
    connector = aiohttp.TCPConnector(limit=concurrency)
    last_say = time.monotonic()
    async with aiohttp.ClientSession(connector=connector) as session:
        sem = asyncio.Semaphore(concurrency)

        async def check(host: str) -> None:
            async with sem:
                status = await get_status(session, port, host)
            if status == 200:
                first[host] = time.monotonic() - since
            elif status != 404:
                errors.append({"host": host, "status": status, "t": time.time()})

        while pending:
            await asyncio.gather(*(check(h) for h in pending))
            pending = [h for h in pending if h not in first]
            if time.monotonic() - last_say > 10:
                say(f"  {len(first):,}/{len(hosts):,} serving")
                last_say = time.monotonic()
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} of {len(hosts)} hosts not serving")
            if pending:
                await asyncio.sleep(0.01)
    return first


# -- the benchmark ---------------------------------------------------------------------------


def _say(text: str) -> None:
    print(f"[probe {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


@dataclass(slots=True)
class Run:
    """One benchmark run against the cluster and the gateway; answers other than 200/404
    collect in `errors`."""

    plan: Plan
    cluster: Cluster
    port: int
    errors: list[dict[str, Any]] = field(default_factory=list)
    # (namespace, name, wall-clock time of the create call, create -> 200 ms) of each probe
    marks: list[tuple[str, str, float, float]] = field(default_factory=list)

    async def load(self) -> dict[str, Any]:
        """Create what is missing of the preloaded tenants and Ingresses; wait until all serve."""
        plan, cluster = self.plan, self.cluster
        await cluster.ensure_class()
        loaded = plan.loaded()
        have = await cluster.count_loaded()
        t0 = time.monotonic()
        if have != plan.ingresses:  # another size loaded here: create what is missing
            _say(
                f"loading {plan.ingresses:,} Ingresses in {plan.tenants:,} tenants ({have:,} there)"
            )
            tenants = [plan.tenant(i) for i in range(plan.tenants)]
            await run_bounded(
                [functools.partial(cluster.tenant, ns) for ns in tenants],
                limit=plan.concurrency,
            )
            _say(f"  tenants made in {time.monotonic() - t0:.1f} s")
            await run_bounded(
                [functools.partial(cluster.ingress, *item, loaded=True) for item in loaded],
                limit=plan.concurrency,
            )
        api_s = time.monotonic() - t0
        _say(f"  API load {api_s:.1f} s; waiting until every loaded host serves")
        hosts = [h for _, _, h in loaded]
        await wait_serving(self.port, hosts, since=t0, timeout_s=1800, errors=self.errors, say=_say)
        serving_s = time.monotonic() - t0
        _say(f"  all {plan.ingresses:,} serving after {serving_s:.1f} s")
        return {
            "api_s": round(api_s, 2),
            "serving_s": round(serving_s, 2),
            "skipped": have == plan.ingresses,
            "errors": len(self.errors),
        }

    async def probe(self, items: Sequence[tuple[str, str, str]]) -> dict[str, Any]:
        """Create one Ingress at a time; poll its host (fresh connections) until 200."""
        before = len(self.errors)
        latencies: list[float] = []
        api_ms: list[float] = []
        polls = 0
        _say(f"probe: {len(items)} new Ingresses, one at a time")
        for ns, name, host in items:
            wall, t = time.time(), time.monotonic()
            await self.cluster.ingress(ns, name, host)
            api_ms.append((time.monotonic() - t) * 1000)
            poll = await poll_until(
                host, "/", port=self.port, done=lambda a: a.status == 200, since=t, timeout_s=60
            )
            polls += poll.answers
            latencies.append(poll.elapsed_s * 1000)
            self.marks.append((ns, name, wall, poll.elapsed_s * 1000))
            self.errors.extend(
                {"host": host, "status": a.status, "body": a.body[:120].decode(errors="replace")}
                for a in poll.errors
            )
            if len(latencies) % 50 == 0:
                shown = {k: round(v) for k, v in percentiles(latencies).items()}
                _say(f"  {len(latencies)} done, ms: {shown}")
        return {
            "count": len(latencies),
            "latency_ms": {k: round(v, 1) for k, v in percentiles(latencies).items()},
            "samples_ms": [round(x, 1) for x in latencies],
            "api_create_ms": {k: round(v, 1) for k, v in percentiles(api_ms).items()},
            "gets": polls,
            "errors": len(self.errors) - before,
        }

    async def burst(self, items: Sequence[tuple[str, str, str]]) -> dict[str, Any]:
        """Create all at once (bounded concurrency) while polling every host until 200."""
        before = len(self.errors)
        _say(f"burst: {len(items):,} new Ingresses at once")
        created: dict[str, float] = {}  # host -> seconds from t0 to its create's answer
        t0 = time.monotonic()

        async def create(ns: str, name: str, host: str) -> None:
            await self.cluster.ingress(ns, name, host)
            created[host] = time.monotonic() - t0

        creating = asyncio.create_task(
            run_bounded(
                [functools.partial(create, *item) for item in items], limit=self.plan.concurrency
            )
        )
        first = await wait_serving(
            self.port,
            [h for _, _, h in items],
            since=t0,
            timeout_s=600,
            errors=self.errors,
            say=_say,
        )
        await creating
        _say(
            f"  burst: last create answered after {max(created.values()):.2f} s, "
            f"all serving after {max(first.values()):.2f} s"
        )
        after_create = [max(0.0, first[h] - created[h]) for h in first]
        return {
            "count": len(items),
            "created_s": round(max(created.values()), 2),
            "all_serving_s": round(max(first.values()), 2),
            "first_200_s": {k: round(v, 3) for k, v in percentiles(list(first.values())).items()},
            "create_answer_to_200_s": {
                k: round(v, 3) for k, v in percentiles(after_create).items()
            },
            "samples_s": sorted(round(v, 3) for v in first.values()),
            "errors": len(self.errors) - before,
        }


def _chains(trace: dict[str, Any], name: str) -> list[list[tuple[str, int, int]]]:
    """Per watcher publish of Ingress `name` in one Jaeger trace: (service/span, start us,
    duration us) of that span and of every span below it."""
    services = {k: v["serviceName"] for k, v in trace["processes"].items()}
    spans = {raw["spanID"]: raw for raw in trace["spans"]}
    children: dict[str, list[str]] = {}
    for raw in spans.values():
        for ref in raw.get("references", []):
            if ref["refType"] == "CHILD_OF":
                children.setdefault(ref["spanID"], []).append(raw["spanID"])
    chains = []
    for sid, raw in spans.items():
        tags = {t["key"]: t["value"] for t in raw.get("tags", [])}
        if raw["operationName"] != "watcher.publish" or tags.get("ripple.name") != name:
            continue
        chain, todo = [], [sid]
        while todo:
            span = spans[todo.pop()]
            key = f"{services[span['processID']]}/{span['operationName']}"
            chain.append((key, int(span["startTime"]), int(span["duration"])))
            todo += children.get(span["spanID"], [])
        chains.append(chain)
    return chains


async def _trace_spans(
    session: aiohttp.ClientSession, query_url: str, ns: str, name: str
) -> list[tuple[str, int, int]]:
    """The chain of the first watcher publish of Ingress ns/name (its creation; later ones
    are its status updates and deletion), from the Jaeger query API; empty when not found."""
    tags = json.dumps({"ripple.tenant": ns, "ripple.kind": "Ingress", "ripple.name": name})
    params = {
        "service": "ripple-watcher",
        "operation": "watcher.publish",
        "tags": tags,
        "lookback": "1h",
        "limit": "20",
    }
    timeout = aiohttp.ClientTimeout(total=10)
    async with session.get(f"{query_url}/api/traces", params=params, timeout=timeout) as resp:
        found = ((await resp.json()).get("data") or []) if resp.status == 200 else []
    chains = []
    for trace_id in {t["traceID"] for t in found}:
        async with session.get(f"{query_url}/api/traces/{trace_id}", timeout=timeout) as resp:
            traces = ((await resp.json()).get("data") or []) if resp.status == 200 else []
        for trace in traces:
            chains += _chains(trace, name)
    return min(chains, key=lambda chain: chain[0][1]) if chains else []


async def stage_breakdown(
    query_url: str, marks: Sequence[tuple[str, str, float, float]]
) -> dict[str, Any]:
    """Where a probe's time goes: each span of its trace (the watcher's publish and what
    descends from it), as start and end in ms after the create call; medians over probes."""
    starts: dict[str, list[float]] = {}
    ends: dict[str, list[float]] = {}
    traced = 0
    async with aiohttp.ClientSession() as session:
        for ns, name, wall, latency_ms in marks:
            try:
                spans = await _trace_spans(session, query_url, ns, name)
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError):
                continue
            if not spans:
                continue
            traced += 1
            for key, start_us, duration_us in spans:
                offset = start_us / 1000 - wall * 1000
                starts.setdefault(key, []).append(offset)
                ends.setdefault(key, []).append(offset + duration_us / 1000)
            starts.setdefault("gateway/first 200", []).append(latency_ms)
            ends.setdefault("gateway/first 200", []).append(latency_ms)
    stages = {
        key: {
            "start_ms": round(statistics.median(starts[key]), 1),
            "end_ms": round(statistics.median(ends[key]), 1),
            "n": len(starts[key]),
        }
        for key in sorted(starts, key=lambda k: statistics.median(starts[k]))
    }
    return {"probes": len(marks), "traced": traced, "median_ms_after_create": stages}


async def bench(
    plan: Plan, *, kubeconfig: str, port: int, backend_ip: str, query_url: str | None
) -> dict[str, Any]:
    """Load, then probe and burst under the background prober; the fresh Ingresses are
    deleted afterwards (the loaded ones are kept for the next run)."""
    api = await config.new_client_from_config(config_file=kubeconfig)
    cluster = Cluster(api, plan, backend_ip)
    tag = f"n{int(time.time()) % 1_000_000:06d}"
    run = Run(plan, cluster, port)
    probes, burst = plan.fresh(f"{tag}p", plan.probes), plan.fresh(f"{tag}b", plan.burst)
    try:
        load = await run.load()
        tally = Tally()
        loaded_hosts = [h for _, _, h in plan.loaded()]
        prober = asyncio.create_task(background_prober(port, loaded_hosts, tally))
        try:
            await asyncio.sleep(0.5)
            probe = await run.probe(probes)
            bursted = await run.burst(burst)
            await asyncio.sleep(0.5)
        finally:
            prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await prober
        await cluster.delete_fresh([*probes, *burst])
        stages: dict[str, Any] = {}
        if query_url:
            _say("stage breakdown of the last 50 probes from their traces in Jaeger")
            await asyncio.sleep(6)  # the services export spans in batches (every 5 s)
            stages = await stage_breakdown(query_url, run.marks[-50:])
    finally:
        await api.close()
    return {
        "load": load,
        "probe": probe,
        "stages": stages,
        "burst": bursted,
        "prober": {
            "ok": tally.ok,
            "failures": len(tally.failures),
            "failure_samples": tally.failures[:20],
        },
        "errors": {"total": len(run.errors) + len(tally.failures), "samples": run.errors[:50]},
    }


def plot(result: dict[str, Any], path: Path) -> None:
    """Left: each one-at-a-time create's latency; right: CDFs of both phases."""
    probe = result["probe"]["samples_ms"]
    burst = [s * 1000 for s in result["burst"]["samples_s"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(range(1, len(probe) + 1), probe, ".", markersize=4)
    for q, style in (("p50", "--"), ("p99", ":")):
        left.axhline(result["probe"]["latency_ms"][q], linestyle=style, color="gray", label=q)
    left.set_xlabel("new Ingress #")
    left.set_ylabel("create -> first 200 (ms)")
    left.set_title(
        f"one at a time, {result['plan']['ingresses']:,} loaded in "
        f"{result['plan']['tenants']:,} tenants"
    )
    left.legend()
    for samples, label in ((probe, "one at a time"), (burst, f"burst of {len(burst):,}")):
        if samples:
            ordered = sorted(samples)
            right.plot(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], label=label)
    right.set_xscale("log")
    right.set_xlabel("ms to first 200 (burst: from its start), log")
    right.set_ylabel("fraction serving")
    right.set_title("CDF")
    right.legend()
    fig.suptitle(f"ripple probe benchmark, {result['date'][:16]} UTC, {result['commit']}")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def summary(result: dict[str, Any]) -> str:
    plan, load, p = result["plan"], result["load"], result["probe"]["latency_ms"]
    prober = result["prober"]
    return (
        f"{plan['ingresses']:,} Ingresses in {plan['tenants']:,} tenants: load "
        f"{load['api_s']} s (API), {load['serving_s']} s (all serving); create -> 200 "
        f"p50 {p['p50']} p90 {p['p90']} p99 {p['p99']} max {p['max']} ms "
        f"(n={result['probe']['count']}); burst {result['burst']['count']:,} -> all serving "
        f"in {result['burst']['all_serving_s']} s; errors {result['errors']['total']} "
        f"(prober {prober['failures']} failed of {prober['ok'] + prober['failures']})"
    )


def write_results(result: dict[str, Any], results: Path, *, readme: bool) -> Path:
    """JSON + PNG under `results`; with `readme`, README's table from every result there."""
    results.mkdir(parents=True, exist_ok=True)
    stamp = result["date"].replace(":", "").replace("-", "")
    stem = results / f"probe-{result['plan']['mode']}-{stamp}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    plot(result, stem.with_suffix(".png"))
    if readme:
        update_readme(results)
    return stem


def update_readme(results: Path) -> None:
    block = readme_table(json.loads(f.read_text()) for f in results.glob("probe-*.json"))
    README.write_text(replace_block(README.read_text(), block))
    print(f"README table updated ({README})")


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, Plan]:
    parser = argparse.ArgumentParser(prog="python -m bench.probe", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--quick", action="store_true", help="100 Ingresses in 10 tenants")
    parser.add_argument("--ingresses", type=int, help="loaded Ingresses (default 20,000)")
    parser.add_argument("--tenants", type=int, help="tenants they are spread over (2,000)")
    parser.add_argument("--probes", type=int, help="one-at-a-time creates (200; quick 50)")
    parser.add_argument("--burst", type=int, help="Ingresses of the burst (2,000; quick 200)")
    parser.add_argument("--concurrency", type=int, default=64, help="API requests in flight")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="results directory")
    parser.add_argument("--readme", action="store_true", help="rewrite README's table")
    parser.add_argument(
        "--readme-only", action="store_true", help="only rewrite README's table from --results"
    )
    parser.add_argument("--keep", action="store_true", help="leave the pipeline and backend up")
    parser.add_argument(
        "--shared-stack",
        action="store_true",
        help="allow more than 1,000 Ingresses in the default run directory (.stack)",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    plan = Plan(
        mode="quick" if quick else "full",
        ingresses=args.ingresses or (100 if quick else 20_000),
        tenants=args.tenants or (10 if quick else 2_000),
        probes=args.probes or (50 if quick else 200),
        burst=args.burst or (200 if quick else 2_000),
        concurrency=args.concurrency,
    )
    if run_dir() == REPO_DIR / ".stack" and plan.ingresses > 1_000 and not args.shared_stack:
        parser.error(
            "the full size belongs on a separate stack: set RIPPLE_RUN and the RIPPLE_*_PORT "
            "variables (see the docstring), or pass --shared-stack"
        )
    return args, plan


def main(argv: Sequence[str] | None = None) -> int:
    args, plan = parse_args(argv)
    if args.readme_only:
        update_readme(args.results)
        return 0
    run = run_dir()
    stack = second_stack_env(run, _say)
    if stack is None:
        return 1
    pipeline = Pipeline(run=run, stack_env=stack, ports=Ports.from_env(os.environ))
    backend = NetnsBackend(state_dir=run / "probe-backend", layout=PROBE_LAYOUT)
    had_backend = backend.status().up
    started: list[str] = []
    try:
        backend.up()
        started = pipeline.up(timeout_s=300, say=lambda s: _say(f"pipeline: {s}"))
        date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        out = asyncio.run(
            bench(
                plan,
                kubeconfig=stack["KUBECONFIG"],
                port=pipeline.gateway_port,
                backend_ip=PROBE_LAYOUT.backend_ip,
                query_url=stack.get("RIPPLE_JAEGER_QUERY_URL")
                if "RIPPLE_OTLP_ENDPOINT" in stack
                else None,
            )
        )
        rss = {st.name: st.rss_mib for st in pipeline.status()}
        for comp in ("envoy", "apiserver", "etcd", "kafka", "redis"):
            rss[comp] = session_rss_mib(run / comp / "pid")
        result = {
            "benchmark": "probe",
            "date": date,
            "commit": commit(),
            "machine": machine(),
            "plan": asdict(plan),
            "tracing": "RIPPLE_OTLP_ENDPOINT" in stack,
            **out,
            "rss_mib_after": rss,
        }
        stem = write_results(result, args.results, readme=args.readme)
        print(summary(result))
        print(f"results: {stem}.json, {stem}.png")
        return 0
    except (BackendError, PipelineError, TimeoutError, ApiException) as exc:
        _say(f"ERROR: {exc}")
        return 1
    finally:
        if not args.keep:
            pipeline.down(started, say=lambda s: _say(f"pipeline: {s}"))
            if not had_backend:
                backend.down()


if __name__ == "__main__":
    sys.exit(main())
