"""Scale benchmark: N Ingresses in N/10 tenants (default 200,000 in 20,000; `--quick`: 2,000 in
200) through the API, then what bench.probe measures (create -> 200 p50/p99 one at a time, a
burst, the background prober) and what grows with size: the resident memory of each service
and of Envoy, Redis's memory (INFO), Kafka's disk, the start-up time of a fresh xds replica
(start until ready: every tenant loaded) and the time a translator joining the group and one
leaving it take until the group owns every partition again (partitions handed over, their
tenants loaded).

    export RIPPLE_RUN=/tmp/scale-stack RIPPLE_REDIS_PORT=... (every RIPPLE_*_PORT, as for
    bench.probe: README "Propagation benchmark")
    stack/stack up && .venv/bin/python -m bench.scale [--quick] [--gateway-groups 2]

It refuses the default run directory (.stack): the shared stack is never loaded this way. The
load is resumable: objects are labelled and kept, so an interrupted or repeated run creates
only what is missing (bench.probe's loader, with progress lines). Results:
bench/results/scale-<mode>-<UTC stamp>.json (rewritten after each phase, so an interrupted run
keeps what it measured), and a summary with memory per 10,000 Ingresses.

`--gateway-groups N` also runs one xds replica and one Envoy per gateway group (the tenants
split by name prefix, RIPPLE_XDS_GATEWAYS over mTLS: bench.scale_groups) and records each
one's resident memory beside the single xds and Envoy holding everything."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Final

from kubernetes_asyncio.client.exceptions import ApiException

from bench import scale_groups
from bench.probe import (
    RESULTS_DIR,
    Plan,
    bench,
    commit,
    machine,
    second_stack_env,
    session_open_files,
    session_rss_mib,
)
from ripple_common.redis_client import redis_client
from scripts.netns_backend import BackendError, NetnsBackend, NetnsLayout
from scripts.pipeline import Pipeline, PipelineError, Ports, ServiceSpec, http_ready
from scripts.stack_env import REPO_DIR, run_dir

PER: Final = 10_000
# The backend's own namespace and /24: bench.probe's (`ripple-probe`) may run beside it on
# another stack, and a backend's `down` deletes its namespace.
SCALE_LAYOUT: Final = NetnsLayout(
    namespace="ripple-scale",
    host_if="rbs-host",
    ns_if="rbs-ns",
    host_ip="198.18.3.1",
    backend_ip="198.18.3.2",
)


# The translators' Kafka session here (the pipeline's is 3 s): with 3 s, on the shared 2-core
# machine at 20,000 Ingresses, the group expelled its members in turn while each loaded its
# partitions' tenants (each held all 12 partitions in turn for minutes; nothing served).
SESSION_TIMEOUT_MS: Final = "10000"
# The translators' upstream keepalive here (production's is 60 s, ingress-nginx's): Envoy holds
# one file per cluster used within it, and this machine's hard limit on open files is 20,000
# (`ulimit -Hn`; it cannot be raised here, where production gateways run with 1,048,576). At
# 200,000 Ingresses the stack's Envoy serves 20,000 clusters, and checking every host within
# a minute used them all: `socket(2) failed: Too many open files`, 503s.
KEEPALIVE_S: Final = "5"


class ScalePipeline(Pipeline):
    """The pipeline, its translators with a `SESSION_TIMEOUT_MS` session and a `KEEPALIVE_S`
    upstream keepalive."""

    def specs(self) -> dict[str, ServiceSpec]:
        session = {
            "RIPPLE_TRANSLATOR_SESSION_TIMEOUT_MS": SESSION_TIMEOUT_MS,
            "RIPPLE_TRANSLATOR_UPSTREAM_KEEPALIVE_TIMEOUT_S": KEEPALIVE_S,
        }
        return {
            name: replace(spec, env={**spec.env, **session})
            if spec.service == "translator"
            else spec
            for name, spec in super().specs().items()
        }


def _say(text: str) -> None:
    print(f"[scale {time.strftime('%H:%M:%S')}] {text}", flush=True)


def per_10k(mib: float | None, ingresses: int) -> float | None:
    """MiB per 10,000 Ingresses (the whole process divided by the load's size)."""
    if mib is None or ingresses <= 0:
        return None
    return round(mib * PER / ingresses, 1)


def dir_mib(path: Path) -> float | None:
    if not path.is_dir():
        return None
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return round(total / 2**20, 1)


async def redis_memory(url: str) -> dict[str, Any]:
    client = redis_client(url)
    try:
        info = await client.info("memory")
        keys = await client.dbsize()
    finally:
        await client.aclose()
    return {"used_mib": round(int(info["used_memory"]) / 2**20, 1), "keys": int(keys)}


def fresh_xds_startup(pipeline: Pipeline, *, timeout_s: float = 600) -> float:
    """Seconds from starting one more xds replica (own ports: the pipeline's health base + 90
    and + 91) until its /readyz answers 200 (it has loaded every tenant)."""
    spec = pipeline.specs()["xds"]
    health = pipeline.ports.health_base + 91
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIPPLE_")}
    env.update(spec.env)
    env["RIPPLE_XDS_LISTEN"] = f"127.0.0.1:{pipeline.ports.health_base + 90}"
    env["RIPPLE_XDS_HEALTH_PORT"] = str(health)
    log = pipeline.dir / "scale-xds.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ripple_xds"],
            cwd=REPO_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        while not http_ready(f"http://127.0.0.1:{health}/readyz"):
            if proc.poll() is not None:
                raise PipelineError(f"the extra xds replica exited; log: {log}")
            if time.monotonic() - started > timeout_s:
                raise PipelineError(f"the extra xds replica not ready in {timeout_s} s")
            time.sleep(0.05)
        return round(time.monotonic() - started, 2)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def translator_handover(stack: dict[str, str], ports: Ports) -> dict[str, float]:
    """A third translator joins the group (seconds until the group owns every partition again,
    the newcomer's tenants loaded), then leaves (seconds until the other two own them all)."""
    three = ScalePipeline(run=run_dir(), stack_env=stack, translators=3, ports=ports)
    started = time.monotonic()
    names = three.up(["translator"], timeout_s=600)
    joined = time.monotonic() - started
    two = ScalePipeline(run=run_dir(), stack_env=stack, translators=2, ports=ports)
    started = time.monotonic()
    for name in names:
        three.stop(name)
    while not two.translators_ready():
        if time.monotonic() - started > 600:
            raise PipelineError("the group did not settle after a translator left")
        time.sleep(0.05)
    return {"join_s": round(joined, 2), "leave_s": round(time.monotonic() - started, 2)}


def summary(result: dict[str, Any]) -> str:
    plan, probe, burst = result["plan"], result["probe"], result["burst"]
    lines = [
        f"{plan['ingresses']:,} Ingresses in {plan['tenants']:,} tenants",
        f"create -> 200: {json.dumps(probe.get('latency_ms', probe))}",
        f"burst: {json.dumps(burst)}",
        f"errors: {result['errors']['total']}",
        f"redis: {result['redis']}, kafka disk {result['kafka_disk_mib']} MiB",
        f"Envoy open files: {result.get('envoy_open_files')}",
        f"fresh xds replica ready in {result['xds_startup_s']} s; "
        f"translator join/leave: {result['translator_handover']}",
        "RSS MiB (per 10,000 Ingresses):",
    ]
    for name, mib in sorted(result["rss_mib"].items()):
        lines.append(f"  {name:14} {mib} ({result['rss_mib_per_10k'].get(name)})")
    for name, group in sorted(result.get("gateway_groups", {}).items()):
        lines.append(
            f"{name} ({group['tenants']:,} tenants, {group['ingresses']:,} Ingresses): "
            f"xds {group['xds_rss_mib']} MiB (ready in {group['xds_ready_s']} s, "
            f"{group['xds_tenants_loaded']} tenants loaded), Envoy {group['envoy_rss_mib']} MiB "
            f"(serving after {group['envoy_serving_s']} s; other groups' hosts served: "
            f"{group['foreign_served']} of {group['foreign_sampled']})"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, Plan]:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--quick", action="store_true", help="2,000 Ingresses in 200 tenants")
    parser.add_argument("--ingresses", type=int, help="loaded Ingresses (default 200,000)")
    parser.add_argument("--tenants", type=int, help="tenants (default: a tenth of the Ingresses)")
    parser.add_argument("--probes", type=int, help="one-at-a-time creates (200; quick 50)")
    parser.add_argument("--burst", type=int, help="Ingresses of the burst (2,000; quick 200)")
    parser.add_argument("--concurrency", type=int, default=64, help="API requests in flight")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="results directory")
    parser.add_argument("--keep", action="store_true", help="leave the pipeline and backend up")
    parser.add_argument(
        "--gateway-groups",
        type=int,
        default=0,
        help="also run one xds and one Envoy per gateway group (tenants split by name prefix)",
    )
    args = parser.parse_args(argv)
    ingresses = args.ingresses or (2_000 if args.quick else 200_000)
    if ingresses < 1:
        parser.error("--ingresses must be positive")
    if args.gateway_groups < 0 or args.gateway_groups == 1:
        parser.error("--gateway-groups must be 2 or more (0: none)")
    plan = Plan(
        mode="quick" if args.quick else "full",
        ingresses=ingresses,
        tenants=args.tenants or max(1, ingresses // 10),
        probes=args.probes or (50 if args.quick else 200),
        burst=args.burst or (200 if args.quick else 2_000),
        concurrency=args.concurrency,
    )
    if run_dir() == REPO_DIR / ".stack":
        parser.error(
            "bench.scale never runs on the shared stack: set RIPPLE_RUN and every RIPPLE_*_PORT "
            '(README "Propagation benchmark") and start a second stack there'
        )
    return args, plan


def main(argv: Sequence[str] | None = None) -> int:
    args, plan = parse_args(argv)
    run = run_dir()
    stack = second_stack_env(run, _say)
    if stack is None:
        return 1
    ports = Ports.from_env(os.environ)
    pipeline = ScalePipeline(run=run, stack_env=stack, ports=ports)
    backend = NetnsBackend(state_dir=run / "scale-backend", layout=SCALE_LAYOUT)
    had_backend = backend.status().up
    started: list[str] = []
    try:
        backend.up()
        started = pipeline.up(timeout_s=1200, say=lambda s: _say(f"pipeline: {s}"))
        date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        out = asyncio.run(
            bench(
                plan,
                kubeconfig=stack["KUBECONFIG"],
                port=pipeline.gateway_port,
                backend_ip=SCALE_LAYOUT.backend_ip,
                query_url=None,
            )
        )
        rss: dict[str, float | None] = {
            st.name: round(st.rss_mib, 1) if st.rss_mib is not None else None
            for st in pipeline.status()
        }
        for comp in ("envoy", "apiserver", "etcd", "kafka", "redis"):
            rss[comp] = session_rss_mib(run / comp / "pid")
        # Envoy's files: its upstream connections (one per cluster used within the keepalive
        # timeout) and downstream ones; the stack's limit is 20,000.
        envoy_files = session_open_files(run / "envoy" / "pid")
        _say("memory, Redis, Kafka disk")
        redis = asyncio.run(redis_memory(stack["RIPPLE_REDIS_URL"]))
        result: dict[str, Any] = {
            "benchmark": "scale",
            "date": date,
            "commit": commit(),
            "machine": machine(),
            "plan": asdict(plan),
            **out,
            "rss_mib": rss,
            "envoy_open_files": envoy_files,
            "rss_mib_per_10k": {k: per_10k(v, plan.ingresses) for k, v in rss.items()},
            "redis": redis,
            "redis_mib_per_10k": per_10k(redis["used_mib"], plan.ingresses),
            "kafka_disk_mib": dir_mib(run / "kafka" / "data"),
        }
        args.results.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = args.results / f"scale-{plan.mode}-{stamp}.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        if args.gateway_groups:
            _say(f"{args.gateway_groups} gateway groups: one xds and one Envoy each")
            result["gateway_groups"] = scale_groups.run_groups(
                pipeline,
                plan,
                groups=args.gateway_groups,
                envoy_bin=stack["RIPPLE_ENVOY_BIN"],
                ports_base=ports.health_base + 100,
                say=_say,
            )
            path.write_text(json.dumps(result, indent=2) + "\n")
        _say("a fresh xds replica")
        result["xds_startup_s"] = fresh_xds_startup(pipeline)
        path.write_text(json.dumps(result, indent=2) + "\n")
        _say("a translator joining and leaving the group")
        result["translator_handover"] = translator_handover(stack, ports)
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(summary(result))
        print(f"results: {path}")
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
