"""Flood benchmark through Envoy (issue #15): a neighbour's create -> first HTTP 200 while one
tenant creates thousands of Ingresses through the kube-apiserver, and the takeover after
kill -9 of a translator mid-flood.

`bench.flood` times the translators' share only (watcher publish -> stored in Redis); this is
the user-visible path: each neighbour probe creates one Ingress through the API and polls its
host through the gateway Envoy (fresh connections, every 5 ms) until it answers 200 with the
backend's body. The whole pipeline runs (scripts.pipeline: xds, 2 translators as static
members with a 3 s session, watcher) on the stack of $RIPPLE_RUN, with the backend in its own
network namespace (`ripple-flood`, 198.18.2.2:8080).

Each run (`flood`, then `kill` unless `--no-kill`):

1. baseline: `--baseline` probes one at a time, round robin over the neighbour tenants
   (`--per-partition` tenants in each of the events topic's partitions, the flooding tenant's
   included), before the flood;
2. the flood: one tenant creates `--flood` Ingresses (default 5,000; `--quick` 1,000) through
   the API as fast as it takes them (`--concurrency` requests in flight, from a child process
   so the load generator does not slow the probes' event loop); meanwhile `--probers`
   sequential probers (each one Ingress at a time) keep probing the neighbours. "during" is
   every probe started between the flood's first create and the moment the flood serves (a
   sample of its hosts, every 100th and the last, answers 200; then every one of its hosts is
   checked once more: `flood_all_served_s`);
3. `kill` only: when half the flood is created, SIGKILL the translator owning the flooding
   tenant's partition and at once probe one neighbour in each partition it owned: create ->
   200 of each (`takeover`); the killed translator is started again after the run.

Rebalances are `kafka.revoked` lines in the translators' logs (after their first assignment)
during the flood; `metrics` holds each translator's counter deltas (ripple_translator_*) and
the highest writes waiting / consumer lag sampled every second. The flood and the probes'
Ingresses are deleted after each run. Results: one JSON line per run appended to
`--json` (default bench/results/flood-served.jsonl), with the load average.

It refuses the shared stack (.stack): run it on a second one, every port moved (README
"Flood benchmark"):

    export RIPPLE_RUN=$HOME/ripple-flood-stack RIPPLE_REDIS_PORT=24379 RIPPLE_KAFKA_PORT=24092 \\
      RIPPLE_KAFKA_CONTROLLER_PORT=24093 RIPPLE_KAFKA_SASL_PORT=24094 RIPPLE_ETCD_PORT=24479 \\
      RIPPLE_ETCD_PEER_PORT=24480 RIPPLE_APISERVER_PORT=24443 RIPPLE_JAEGER_OTLP_GRPC_PORT=24317 \\
      RIPPLE_JAEGER_OTLP_HTTP_PORT=24318 RIPPLE_JAEGER_QUERY_PORT=24686 \\
      RIPPLE_ENVOY_ADMIN_PORT=24901 RIPPLE_XDS_PORT=24000 RIPPLE_ENVOY_BASE_ID=11 \\
      RIPPLE_GATEWAY_HTTP_PORT=24080 RIPPLE_GATEWAY_HTTPS_PORT=24444 \\
      RIPPLE_PIPELINE_HEALTH_PORT=24081
    stack/stack up && .venv/bin/python -m bench.flood_served     # --quick: 1,000
    stack/stack down

With tracing on (the stack's Jaeger), `stages_of_the_20_slowest_during` is where the slowest
neighbour probes' time went (bench.probe's stage breakdown: each span's start and end, ms
after the create call, medians over those 20 probes). Needs root (the backend's network
namespace).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import multiprocessing
import os
import re
import signal
import sys
import time
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any, Final

from kubernetes_asyncio import config
from kubernetes_asyncio.client.exceptions import ApiException

from bench.flood import partition_of
from bench.probe import (
    RESULTS_DIR,
    Cluster,
    Plan,
    commit,
    machine,
    percentiles,
    run_bounded,
    second_stack_env,
    stage_breakdown,
    wait_serving,
)
from ripple_common.envelope import EVENTS_TOPIC
from scripts.demo import http_get, poll_until, serves
from scripts.netns_backend import BackendError, NetnsBackend, NetnsLayout
from scripts.pipeline import (
    EVENTS_PARTITIONS,
    Pipeline,
    PipelineError,
    Ports,
    ensure_topic,
    owned_partitions,
)
from scripts.stack_env import REPO_DIR, run_dir

FLOOD_LAYOUT: Final = NetnsLayout(
    namespace="ripple-flood",
    host_if="rbf-host",
    ns_if="rbf-ns",
    host_ip="198.18.2.1",
    backend_ip="198.18.2.2",
)
BACKEND: Final = "be-a"  # bench.probe's Cluster routes every Ingress to Service web -> be-a
HOST_SUFFIX: Final = "flood.test"
FLOODER: Final = "flood-x"
START_MARK: Final = "==== "  # scripts.pipeline writes it at each start of an instance


def _say(text: str) -> None:
    print(f"[flood-served {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# -- pure parts ------------------------------------------------------------------------------


def spread_tenants(partitions: int, per_partition: int, *, prefix: str = "flood-n") -> list[str]:
    """Neighbour namespaces, `per_partition` in each partition of the events topic (the key is
    the tenant), in round-robin partition order so consecutive probes hit other partitions."""
    by_partition: dict[int, list[str]] = {p: [] for p in range(partitions)}
    i = 0
    while any(len(names) < per_partition for names in by_partition.values()):
        name = f"{prefix}{i:03d}"
        names = by_partition[partition_of(name, partitions)]
        if len(names) < per_partition:
            names.append(name)
        i += 1
    return [by_partition[p][k] for k in range(per_partition) for p in range(partitions)]


def stats_ms(samples: Sequence[float]) -> dict[str, Any]:
    """n, p50/p90/p99/max/mean in ms of the finite samples (seconds); `unserved` the others."""
    finite = [s for s in samples if math.isfinite(s)]
    out: dict[str, Any] = {"n": len(finite), "unserved": len(samples) - len(finite)}
    out.update({f"{k}_ms": round(v * 1000, 1) for k, v in percentiles(finite).items()})
    return out


def since_last_start(lines: Iterable[str]) -> list[str]:
    """The log lines of an instance's current process (after its last start mark)."""
    current: list[str] = []
    for line in lines:
        if line.startswith(START_MARK):
            current = []
        else:
            current.append(line)
    return current


def rebalances(lines: Iterable[str]) -> int:
    """`kafka.revoked` lines after the first `kafka.assigned` (JSON log lines)."""
    assigned, revoked = False, 0
    for line in lines:
        if '"kafka.' not in line:
            continue
        with contextlib.suppress(ValueError):
            event = json.loads(line).get("event")
            if event == "kafka.assigned":
                assigned = True
            elif event == "kafka.revoked" and assigned:
                revoked += 1
    return revoked


METRIC_LINE: Final = re.compile(r"^(ripple_translator_[a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$")


def parse_metrics(text: str) -> dict[str, float]:
    """ripple_translator_* samples without labels (counters, gauges, histogram sums/counts),
    plus `consumer_lag` summed over partitions."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        match = METRIC_LINE.match(line)
        if match is None:
            continue
        name, labels, value = match.groups()
        short = name.removeprefix("ripple_translator_")
        if short == "consumer_lag":
            out[short] = out.get(short, 0.0) + float(value)
        elif labels is None:
            out[short] = float(value)
    return out


# -- the pipeline's translators --------------------------------------------------------------


@dataclass(slots=True)
class Translators:
    """The pipeline's translator instances, read from their logs and /metrics."""

    pipeline: Pipeline
    names: list[str]

    def lines(self, name: str) -> list[str]:
        try:
            text = self.pipeline.log_path(name).read_text(errors="replace")
        except OSError:
            return []
        return since_last_start(text.splitlines())

    def owned(self, name: str) -> set[int]:
        return owned_partitions(self.lines(name))

    def rebalances(self) -> dict[str, int]:
        return {n: rebalances(self.lines(n)) for n in self.names if self.pipeline.is_running(n)}

    def metrics(self, name: str) -> dict[str, float]:
        n = 1 if name == "translator" else int(name.rsplit("-", 1)[1])
        url = f"http://127.0.0.1:{self.pipeline.ports.translator_health(n)}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return parse_metrics(answer.read().decode())
        except OSError:
            return {}

    def kill(self, name: str) -> int:
        pid = self.pipeline.pid(name)
        if pid is None:
            raise PipelineError(f"{name} is not running")
        os.killpg(pid, signal.SIGKILL)
        return pid


@dataclass(slots=True)
class Sampler:
    """Every second: the highest writes waiting and consumer lag of each translator."""

    translators: Translators
    peaks: dict[str, dict[str, float]] = field(default_factory=dict)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for name in self.translators.names:
                now = await asyncio.to_thread(self.translators.metrics, name)
                peak = self.peaks.setdefault(name, {})
                for key in ("writes_waiting", "writes_in_flight", "consumer_lag"):
                    if key in now:
                        peak[key] = max(peak.get(key, 0.0), now[key])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)


# -- probes ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    tenant: str
    name: str  # the Ingress
    wall: float  # time.time() before the create call (for its trace)
    partition: int
    started: float  # time.monotonic() before the create call
    api_s: float  # the create call's answer
    latency_s: float  # create -> first 200 from the backend; inf: not served in time


@dataclass(slots=True)
class Probes:
    """Neighbour probes: create one Ingress, poll its host through Envoy until the backend
    answers."""

    cluster: Cluster
    port: int
    partitions: int
    tag: str
    timeout_s: float = 60.0
    samples: list[Sample] = field(default_factory=list)
    created: list[tuple[str, str, str]] = field(default_factory=list)  # (ns, name, host)
    errors: list[dict[str, Any]] = field(default_factory=list)

    async def one(self, tenant: str, *, record: bool = True) -> Sample:
        k = len(self.created)
        name = f"{self.tag}-{k:05d}"
        host = f"{name}.{tenant}.{HOST_SUFFIX}"
        wall, started = time.time(), time.monotonic()
        await self.cluster.ingress(tenant, name, host)
        api_s = time.monotonic() - started
        self.created.append((tenant, name, host))
        try:
            poll = await poll_until(
                host,
                "/",
                port=self.port,
                done=serves(BACKEND),
                since=started,
                timeout_s=self.timeout_s,
            )
            latency = poll.elapsed_s
            self.errors += [{"host": host, "status": a.status} for a in poll.errors]
        except TimeoutError:
            latency = math.inf
        sample = Sample(
            tenant, name, wall, partition_of(tenant, self.partitions), started, api_s, latency
        )
        if record:
            self.samples.append(sample)
        return sample

    async def sequential(self, tenants: Sequence[str], count: int, *, gap_s: float) -> None:
        for i in range(count):
            await self.one(tenants[i % len(tenants)])
            await asyncio.sleep(gap_s)

    async def until(self, stop: asyncio.Event, tenants: Sequence[str], *, gap_s: float) -> None:
        """One probe at a time over `tenants` until `stop` is set."""
        i = 0
        while not stop.is_set():
            await self.one(tenants[i % len(tenants)])
            i += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=gap_s)

    def window(self, start: float, end: float) -> list[Sample]:
        return [s for s in self.samples if start <= s.started < end]


# -- the flood (a child process) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FloodJob:
    kubeconfig: str
    ns: str
    names: list[tuple[str, str]]  # (Ingress name, host)
    concurrency: int


@dataclass(frozen=True, slots=True)
class FloodSync:
    """Shared with the flood's process: `ready` once it is set up (a spawned Python takes
    seconds to import on a loaded machine), it starts at `go`, counts its answered creates in
    `created` and puts the seconds from its first create to its last answer in `out`."""

    ready: Any  # multiprocessing Events and Queue
    go: Any
    created: Synchronized[int]
    out: Any


def flood_worker(job: FloodJob, sync: FloodSync) -> None:
    """Create the job's Ingresses, `concurrency` at a time (see FloodSync)."""
    ns, names, created = job.ns, job.names, sync.created

    async def go() -> float:
        api = await config.new_client_from_config(config_file=job.kubeconfig)
        cluster = Cluster(api, Plan(mode="flood", ingresses=0, tenants=0, probes=0, burst=0), "")
        sync.ready.set()
        await asyncio.to_thread(sync.go.wait)
        t0 = time.monotonic()

        async def create(name: str, host: str) -> None:
            await cluster.ingress(ns, name, host, loaded=True)  # labelled, 409 tolerated
            with created.get_lock():
                created.value += 1

        try:
            await run_bounded(
                [functools.partial(create, n, h) for n, h in names], limit=job.concurrency
            )
        finally:
            await api.close()
        return time.monotonic() - t0

    sync.out.put(asyncio.run(go()))


# -- one run ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Bench:
    args: argparse.Namespace
    kubeconfig: str
    pipeline: Pipeline
    translators: Translators
    partitions: int
    neighbours: list[str]
    query_url: str | None = None  # Jaeger's, for the slowest probes' stage breakdown

    async def run(self, *, kill: bool) -> dict[str, Any]:
        args = self.args
        mode = "kill" if kill else "flood"
        tag = f"{mode[0]}{int(time.time()) % 1_000_000:06d}"
        api = await config.new_client_from_config(config_file=self.kubeconfig)
        plan = Plan(mode=mode, ingresses=0, tenants=0, probes=0, burst=0)
        cluster = Cluster(api, plan, FLOOD_LAYOUT.backend_ip)
        port = self.pipeline.gateway_port
        probes = Probes(cluster, port, self.partitions, f"{tag}p", timeout_s=args.probe_timeout_s)
        flood_names = [
            (f"{tag}f{i:05d}", f"{tag}f{i:05d}.{FLOODER}.{HOST_SUFFIX}") for i in range(args.flood)
        ]
        try:
            for tenant in self.neighbours:  # warm: each neighbour served once this run
                await probes.one(tenant, record=False)
            load_before = os.getloadavg()
            _say(f"{mode}: baseline, {args.baseline} probes one at a time")
            base_start = time.monotonic()
            await probes.sequential(self.neighbours, args.baseline, gap_s=args.gap_s)
            baseline = probes.window(base_start, time.monotonic())
            _say(f"  baseline {stats_ms([s.latency_s for s in baseline])}")
            revoked_before = self.translators.rebalances()
            owner = {p: n for n in self.translators.names for p in self.translators.owned(n)}
            flooder = owner.get(partition_of(FLOODER, self.partitions))
            metrics_before = {n: self.translators.metrics(n) for n in self.translators.names}
            flood = await self.flood(probes, flood_names, kill=kill)
            revoked_after = self.translators.rebalances()
            metrics_after = {n: self.translators.metrics(n) for n in self.translators.names}
            during = probes.window(flood["start"], flood["start"] + flood["served_s"])
            stages: dict[str, Any] = {}
            if self.query_url:
                slowest = sorted(during, key=lambda s: s.latency_s)[-20:]
                await asyncio.sleep(6)  # the services export spans in batches (every 5 s)
                stages = await stage_breakdown(
                    self.query_url,
                    [(s.tenant, s.name, s.wall, s.latency_s * 1000) for s in slowest],
                )
            return {
                "bench": "flood_served",
                "mode": mode,
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "commit": commit(),
                "machine": machine()["summary"],
                "flood": args.flood,
                "concurrency": args.concurrency,
                "partitions": self.partitions,
                "neighbours": len(self.neighbours),
                "flooder_partition": partition_of(FLOODER, self.partitions),
                "probers": args.probers,
                "baseline": _phase(baseline),
                "during_flood": _phase(during),
                "during_flood_flooder_partition": _phase(
                    [s for s in during if s.partition == partition_of(FLOODER, self.partitions)]
                ),
                # Neighbours whose partition the flooding tenant's translator owned at the
                # start, and the others (a translator's CPU is shared by its tenants).
                "during_flood_flooders_translator": _phase(
                    [s for s in during if owner.get(s.partition) == flooder]
                ),
                "during_flood_other_translators": _phase(
                    [s for s in during if owner.get(s.partition) != flooder]
                ),
                "flood_api_s": flood["api_s"],
                "flood_rate_per_s": round(args.flood / flood["api_s"], 1),
                "flood_served_s": round(flood["served_s"], 2),
                "flood_all_served_s": flood["all_served_s"],
                "rebalances": {
                    n: revoked_after[n] - revoked_before.get(n, 0) for n in revoked_after
                },
                "takeover": flood.get("takeover"),
                "probe_errors": len(probes.errors),
                "flood_errors": flood["errors"],
                "loadavg_before": [round(x, 2) for x in load_before],
                "loadavg_after_flood": [round(x, 2) for x in flood["loadavg"]],
                "metrics": {
                    n: {
                        k: round(metrics_after[n].get(k, 0.0) - v, 3)
                        for k, v in metrics_before[n].items()
                        if k.endswith(("_total", "_sum", "_count"))
                    }
                    for n in metrics_before
                    if metrics_after.get(n)
                },
                "peaks": flood["peaks"],
                "stages_of_the_20_slowest_during": stages,
            }
        finally:
            await self.cleanup(cluster, probes, flood_names)
            await api.close()
            if kill:  # the killed translator back (static member: it gets its partitions)
                await asyncio.to_thread(
                    self.pipeline.up, ["translator"], timeout_s=300, say=lambda s: _say(f"  {s}")
                )

    async def flood(
        self, probes: Probes, names: Sequence[tuple[str, str]], *, kill: bool
    ) -> dict[str, Any]:
        args = self.args
        ctx = multiprocessing.get_context("spawn")
        sync = FloodSync(ctx.Event(), ctx.Event(), ctx.Value("i", 0), ctx.Queue())
        worker = ctx.Process(
            target=flood_worker,
            args=(FloodJob(self.kubeconfig, FLOODER, list(names), args.concurrency), sync),
            daemon=True,
        )
        worker.start()
        if not await asyncio.to_thread(sync.ready.wait, 300):
            worker.kill()
            raise TimeoutError("the flood's process was not ready in 300 s")
        stop = asyncio.Event()
        sampler = Sampler(self.translators)
        sampling = asyncio.create_task(sampler.run(stop))
        probers = [
            asyncio.create_task(
                probes.until(stop, self.neighbours[i :: args.probers], gap_s=args.gap_s)
            )
            for i in range(args.probers)
        ]
        sample_hosts = [h for _, h in names[::100]] + [names[-1][1]]
        errors: list[dict[str, Any]] = []
        _say(f"flood: {len(names):,} Ingresses in {FLOODER} ({args.concurrency} in flight)")
        start = time.monotonic()
        sync.go.set()
        takeover: dict[str, Any] | None = None
        try:
            killing = (
                asyncio.create_task(self.kill_at_half(probes, sync.created, len(names)))
                if kill
                else None
            )
            served_s = await serving_at(
                probes.port, sample_hosts, since=start, timeout_s=args.timeout_s
            )
            loadavg = os.getloadavg()
            api_s = await asyncio.to_thread(sync.out.get, True, args.timeout_s)
            await asyncio.to_thread(worker.join, 30)
            if killing is not None:
                takeover = await killing
        finally:
            stop.set()
            await asyncio.gather(*probers, sampling, return_exceptions=True)
            if worker.is_alive():
                worker.kill()
                worker.join()
        _say(f"  API took {api_s:.1f} s, sample served after {served_s:.1f} s; checking all")
        every = await wait_serving(
            probes.port,
            [h for _, h in names],
            since=start,
            timeout_s=args.timeout_s,
            errors=errors,
        )
        return {
            "start": start,
            "api_s": round(api_s, 2),
            "served_s": served_s,
            "all_served_s": round(max(every.values()), 2),
            "errors": len(errors),
            "loadavg": loadavg,
            "takeover": takeover,
            "peaks": sampler.peaks,
        }

    async def kill_at_half(
        self, probes: Probes, created: Synchronized[int], total: int
    ) -> dict[str, Any]:
        # The counter lives in shared memory, written by the flood's process: polled.
        while created.value < total // 2:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        flood_partition = partition_of(FLOODER, self.partitions)
        names = self.translators.names
        victim = next((n for n in names if flood_partition in self.translators.owned(n)), names[0])
        owned = sorted(self.translators.owned(victim))
        pid = self.translators.kill(victim)
        killed_at = time.monotonic()
        _say(f"  kill -9 {victim} (pid {pid}, partitions {owned}) at {created.value:,} created")
        chosen = {}
        for tenant in self.neighbours:
            p = partition_of(tenant, self.partitions)
            if p in owned and p not in chosen:
                chosen[p] = tenant
        samples = await asyncio.gather(*(probes.one(t, record=False) for t in chosen.values()))
        latencies = [s.latency_s for s in samples]
        return {
            "victim": victim,
            "partitions": owned,
            "at_created": total // 2,
            "probes": stats_ms(latencies),
            "per_partition_s": {
                str(s.partition): round(s.latency_s, 3) if math.isfinite(s.latency_s) else None
                for s in samples
            },
            "probes_started_s_after_kill": round(min(s.started for s in samples) - killed_at, 3),
        }

    async def cleanup(
        self, cluster: Cluster, probes: Probes, flood_names: Sequence[tuple[str, str]]
    ) -> None:
        """Delete the flood and the probes' Ingresses; wait until the flood's hosts are gone
        (its deletion is a flood too: the next run starts on a quiet pipeline)."""
        _say("  cleaning up")
        with contextlib.suppress(ApiException):
            await cluster.net.delete_collection_namespaced_ingress(FLOODER)
        await cluster.delete_fresh(probes.created)
        gone = [h for _, h in flood_names[::500]] + [flood_names[-1][1]]
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            answers = await asyncio.gather(*(http_get(h, port=probes.port) for h in gone))
            if all(a.status == 404 for a in answers):
                return
            await asyncio.sleep(0.5)
        _say("  the flood's hosts still serve 300 s after its deletion")


async def serving_at(
    port: int, hosts: Sequence[str], *, since: float, timeout_s: float, every_s: float = 0.25
) -> float:
    """Seconds from `since` until every one of `hosts` answers 200 from the backend: each
    round (every `every_s`) checks them in order and stops at the first that does not serve
    yet (light next to the probes, unlike bench.probe's wait_serving, which polls every host
    without pause)."""
    pending = list(hosts)
    while pending:
        if time.monotonic() - since > timeout_s:
            raise TimeoutError(f"{len(pending)} of {len(hosts)} sampled flood hosts not serving")
        while pending and (await http_get(pending[0], port=port)).shows(BACKEND):
            pending.pop(0)
        if pending:
            await asyncio.sleep(every_s)
    return time.monotonic() - since


def _phase(samples: Sequence[Sample]) -> dict[str, Any]:
    out = stats_ms([s.latency_s for s in samples])
    api = stats_ms([s.api_s for s in samples])
    out["api_create_p50_ms"] = api.get("p50_ms")
    out["api_create_max_ms"] = api.get("max_ms")
    out["over_1s"] = sum(1 for s in samples if s.latency_s > 1.0)
    return out


# -- main ------------------------------------------------------------------------------------


async def prepare(kubeconfig: str, tenants: Sequence[str]) -> None:
    """The IngressClass and each tenant's namespace, Service and EndpointSlice."""
    api = await config.new_client_from_config(config_file=kubeconfig)
    try:
        cluster = Cluster(
            api,
            Plan(mode="prep", ingresses=0, tenants=0, probes=0, burst=0),
            FLOOD_LAYOUT.backend_ip,
        )
        await cluster.ensure_class()
        await run_bounded([functools.partial(cluster.tenant, t) for t in tenants], limit=16)
    finally:
        await api.close()


def summary(r: dict[str, Any]) -> str:
    def cell(p: dict[str, Any]) -> str:
        if not p.get("n"):
            return f"n=0 (unserved {p.get('unserved')})"
        return (
            f"p50 {p['p50_ms']} / p90 {p['p90_ms']} / p99 {p['p99_ms']} / max {p['max_ms']} ms "
            f"(n={p['n']}, unserved {p['unserved']}, over 1 s {p['over_1s']})"
        )

    lines = [
        f"{r['mode']}: {r['flood']:,} Ingresses through the API in {r['flood_api_s']} s "
        f"({r['flood_rate_per_s']}/s, {r['concurrency']} in flight); the flood serves after "
        f"{r['flood_served_s']} s (all checked: {r['flood_all_served_s']} s)",
        f"  neighbours before: {cell(r['baseline'])}",
        f"  neighbours during: {cell(r['during_flood'])}",
        f"  of which in the flooder's partition: {cell(r['during_flood_flooder_partition'])}",
        f"  on the flooder's translator: {cell(r['during_flood_flooders_translator'])}",
        f"  on the other translator(s): {cell(r['during_flood_other_translators'])}",
        f"  rebalances during the flood: {r['rebalances']}; load average "
        f"{r['loadavg_before']} -> {r['loadavg_after_flood']}",
    ]
    if r["takeover"]:
        t = r["takeover"]
        lines.append(
            f"  kill -9 {t['victim']} (partitions {t['partitions']}): neighbours there served "
            f"after {t['per_partition_s']} s (max {t['probes'].get('max_ms')} ms)"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.flood_served", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--quick", action="store_true", help="1,000 Ingresses (default 5,000)")
    parser.add_argument("--flood", type=int, help="Ingresses the flooding tenant creates")
    parser.add_argument("--concurrency", type=int, default=64, help="flood creates in flight")
    parser.add_argument("--per-partition", type=int, default=2, help="neighbours per partition")
    parser.add_argument("--baseline", type=int, default=48, help="probes before the flood")
    parser.add_argument("--probers", type=int, default=2, help="sequential probers during it")
    parser.add_argument("--gap-s", type=float, default=0.05, help="pause between a prober's probes")
    parser.add_argument("--probe-timeout-s", type=float, default=60.0, help="longest probe wait")
    parser.add_argument("--timeout-s", type=float, default=900.0, help="longest flood wait")
    parser.add_argument("--no-kill", action="store_true", help="skip the kill -9 run")
    parser.add_argument("--only-kill", action="store_true", help="only the kill -9 run")
    parser.add_argument(
        "--json", type=Path, default=RESULTS_DIR / "flood-served.jsonl", help="results file"
    )
    parser.add_argument("--keep", action="store_true", help="leave the pipeline and backend up")
    args = parser.parse_args(argv)
    if args.flood is None:
        args.flood = 1000 if args.quick else 5000
    if args.flood < 200 or args.probers < 1 or args.per_partition < 1:
        parser.error("--flood >= 200, --probers >= 1, --per-partition >= 1")
    if run_dir() == REPO_DIR / ".stack":
        parser.error(
            "bench.flood_served never runs on the shared stack: set RIPPLE_RUN and every "
            'RIPPLE_*_PORT (README "Flood benchmark") and start a second stack there'
        )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    run = run_dir()
    stack = second_stack_env(run, _say)
    if stack is None:
        return 1
    pipeline = Pipeline(run=run, stack_env=stack, ports=Ports.from_env(os.environ))
    backend = NetnsBackend(state_dir=run / "flood-backend", layout=FLOOD_LAYOUT)
    had_backend = backend.status().up
    running = {n for n in pipeline.instances() if pipeline.is_running(n)}
    try:
        backend.up()
        pipeline.up(timeout_s=300, say=lambda s: _say(f"pipeline: {s}"))
        partitions, _ = asyncio.run(
            ensure_topic(stack["RIPPLE_KAFKA_BOOTSTRAP"], EVENTS_TOPIC, EVENTS_PARTITIONS)
        )
        neighbours = spread_tenants(partitions, args.per_partition)
        asyncio.run(prepare(stack["KUBECONFIG"], [FLOODER, *neighbours]))
        names = [n for n in pipeline.instances() if n.startswith("translator")]
        bench = Bench(
            args,
            stack["KUBECONFIG"],
            pipeline,
            Translators(pipeline, names),
            partitions,
            neighbours,
            query_url=stack.get("RIPPLE_JAEGER_QUERY_URL")
            if "RIPPLE_OTLP_ENDPOINT" in stack
            else None,
        )
        modes = [True] if args.only_kill else [False] if args.no_kill else [False, True]
        for kill in modes:
            result = asyncio.run(bench.run(kill=kill))
            print(summary(result), flush=True)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            with args.json.open("a") as fh:
                fh.write(json.dumps(result) + "\n")
        return 0
    except (BackendError, PipelineError, TimeoutError, ApiException) as exc:
        _say(f"ERROR: {exc}")
        return 1
    finally:
        if not args.keep:
            # What this run started (also when `up` failed half-way), by recorded pid.
            started = [n for n in pipeline.instances() if n not in running]
            pipeline.down(started, say=lambda s: _say(f"pipeline: {s}"))
            if not had_backend:
                backend.down()


if __name__ == "__main__":
    sys.exit(main())
