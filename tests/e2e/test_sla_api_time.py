"""Honest SLA timing (issue #15 point 4): a change made while the watcher is down is timed
from the API's own time of the change, not from when the restarted watcher saw it.

This module runs its own pipeline on the local stack, apart from the shared one and from
other tests: a watcher (a subprocess, so it can be stopped and started again) publishing only
the namespace labelled with this run's id to its own Kafka topic, a translator consuming that
topic into its own Redis key prefix, an xds process serving that prefix with
RIPPLE_XDS_SLA_S=2, and a real Envoy doing Delta ADS to it, all tracing into the stack's
Jaeger. Then:

- a first Ingress goes through the whole pipeline (everything warm);
- the watcher is stopped (SIGTERM), an Ingress created, and after PAUSE_S (> the SLA) the
  watcher started again: it re-lists, the translator writes the new Ingress, the Envoy ACKs;
- xds's `sla breach` line names api_ack only: API -> ACK >= PAUSE_S (the outage counted),
  observed -> ACK (`total`) below PAUSE_S (it is not);
- /metrics counts the api_ack stage (an observation above the SLA) and
  ripple_xds_sla_breaches_api_total; `ripple sla` prints the api_ack row and its BREACH from
  the metrics (exit 1) and an api_ack row from Jaeger;
- the change's `xds.ack` span carries ripple.api_at_ns (the Ingress's creationTimestamp) and
  ripple.api_ack_ms, and the trace's root (`watcher.publish`) an `api.change` event at the API
  time.

On the code before the fix none of the api_ack figures exist and no breach is logged."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
import redis.asyncio as aioredis
from kubernetes_asyncio import client

from scripts.demo import INGRESS_CLASS, ingress_manifest
from scripts.pipeline import ensure_topic
from tests.conftest import StackEnv
from tests.e2e.kube_api import api_client, kube_setup
from tests.integration.watcher.support import delete_topic
from tests.integration.xds_service.support import start_envoy, stop_process, tail
from tests.waiting import eventually_blocking

SLA_S = 2.0
PAUSE_S = 4.0  # the watcher's outage, above the SLA
NODE = "api-time-gateway"
WITHIN_S = 60.0
T = TypeVar("T")


def low_port() -> int:
    """A free 127.0.0.1 port below 32768 (the ephemeral range is left to the system)."""
    for _ in range(200):
        port = random.randint(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below 32768")


@dataclass
class Rig:
    """This module's pipeline."""

    rid: str
    tenant: str
    prefix: str
    kubeconfig: str
    jaeger: str
    metrics_url: str
    logs: dict[str, Path]
    watcher_cmd: Callable[[], subprocess.Popen[bytes]]
    watcher: subprocess.Popen[bytes]
    procs: list[subprocess.Popen[bytes]]

    def check_alive(self) -> None:
        for proc in (*self.procs, self.watcher):
            if proc.poll() is not None:
                logs = "\n".join(f"--- {n}\n{tail(p)}" for n, p in self.logs.items())
                raise AssertionError(f"{proc.args!r} exited with {proc.returncode}\n{logs}")


def wait_for(
    what: str, check: Callable[[], T | None], rig: Rig, *, within_s: float = WITHIN_S
) -> T:
    """`eventually_blocking(check)` while the rig's processes live; fails with their logs."""

    def alive_and_checked() -> T | None:
        rig.check_alive()
        return check()

    return eventually_blocking(
        alive_and_checked,
        within_s=within_s,
        every_s=0.2,
        what=what,
        detail=lambda: "\n".join(f"--- {n}\n{tail(p)}" for n, p in rig.logs.items()),
    )


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
    return body.decode()


def sample(text: str, name: str) -> float:
    """The sum of a metric's samples over all label sets (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", line)
        if match:
            total += float(match.group(1))
    return total


def stage_count(text: str, stage: str, *, le: str | None = None) -> float:
    """Observations of `stage` in every tenant bucket (those <= `le` when given)."""
    total = 0.0
    for line in text.splitlines():
        if le is None:
            pattern = rf'^ripple_xds_propagation_seconds_count\{{stage="{stage}",[^}}]*\}} (\S+)$'
        else:
            pattern = (
                rf'^ripple_xds_propagation_seconds_bucket\{{stage="{stage}",'
                rf'tenant_bucket="\d+",le="{re.escape(le)}"\}} (\S+)$'
            )
        match = re.match(pattern, line)
        if match:
            total += float(match.group(1))
    return total


def breaches(log: Path, tenant: str) -> list[dict[str, Any]]:
    """The xds process's `sla breach` lines of `tenant`."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if '"sla breach"' not in line:
            continue
        with contextlib.suppress(json.JSONDecodeError):
            doc = json.loads(line)
            if doc.get("event") == "sla breach" and doc.get("tenant") == tenant:
                out.append(doc)
    return out


def cli(*args: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "ripple_cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def _spawn(
    module: str, prefix: str, settings: Mapping[str, str], log: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # export spans quickly: the test reads them back
        **{f"{prefix}{k.upper()}": v for k, v in settings.items()},
    }
    with log.open("a") as out:
        return subprocess.Popen(
            [sys.executable, "-m", module], env=env, stdout=out, stderr=subprocess.STDOUT
        )


async def _create_ingress(kubeconfig: str, ns: str, name: str, host: str) -> str:
    """Create the Ingress; its creationTimestamp."""
    async with await api_client(kubeconfig) as api:
        net = client.NetworkingV1Api(api)
        created = await net.create_namespaced_ingress(
            ns, cast(client.V1Ingress, ingress_manifest(name, host, [("/", "web")]))
        )
        stamp = created.metadata.creation_timestamp
        assert isinstance(stamp, datetime), stamp
        return stamp.isoformat()


async def _kube_cleanup(kubeconfig: str, ns: str) -> None:
    async with await api_client(kubeconfig) as api:
        core, net = client.CoreV1Api(api), client.NetworkingV1Api(api)
        for call in (
            lambda: net.delete_collection_namespaced_ingress(ns),
            lambda: core.delete_namespaced_service("web", ns),
            lambda: core.delete_namespace(ns),
        ):
            with contextlib.suppress(client.ApiException):
                await call()


async def _redis_cleanup(url: str, prefix: str) -> None:
    redis = aioredis.from_url(url, decode_responses=False)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


def jaeger_acks(rig: Rig) -> list[dict[str, Any]]:
    """The tags of the tenant's `xds.ack` spans, each with the times (µs) of the `api.change`
    events of its trace (`api_events`)."""
    query = urllib.parse.urlencode(
        {
            "service": "ripple-xds",
            "operation": "xds.ack",
            "tags": json.dumps({"ripple.tenant": rig.tenant}),
            "lookback": "1h",
            "limit": "20",
        }
    )
    found = json.loads(scrape(f"{rig.jaeger}/api/traces?{query}"))
    out = []
    for trace_id in sorted({t["traceID"] for t in found.get("data") or []}):
        # The whole trace by id (a search answer may hold only part of it).
        full = json.loads(scrape(f"{rig.jaeger}/api/traces/{trace_id}"))
        spans = [s for t in full.get("data") or [] for s in t.get("spans", [])]
        events = [
            int(log["timestamp"])
            for s in spans
            if s["operationName"] == "watcher.publish"
            for log in s.get("logs") or []
            if {"key": "event", "type": "string", "value": "api.change"} in log.get("fields", [])
        ]
        for span in spans:
            if span["operationName"] == "xds.ack":
                tags = {t["key"]: t["value"] for t in span.get("tags", [])}
                out.append({**tags, "api_events": events})
    return out


@pytest.fixture(scope="module")
def rig(stack: StackEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    rid = uuid.uuid4().hex[:8]
    work = tmp_path_factory.mktemp("api-time")
    tenant = f"apit-{rid}"
    topic, prefix, label = f"api-time-{rid}", f"it-apit-{rid}", "ripple-api-time"
    kubeconfig, bootstrap = stack["KUBECONFIG"], stack["RIPPLE_KAFKA_BOOTSTRAP"]
    redis_url, otlp = stack["RIPPLE_REDIS_URL"], stack["RIPPLE_OTLP_ENDPOINT"]
    key = base64.b64encode(os.urandom(32)).decode()
    xds_port, http_port, health_port, admin_port = (low_port() for _ in range(4))
    common = {"otlp_endpoint": otlp, "log_json": "true", "sealing_key": key}
    logs = {name: work / f"{name}.log" for name in ("xds", "translator", "watcher", "envoy")}
    asyncio.run(ensure_topic(bootstrap, topic, 1))
    asyncio.run(kube_setup(kubeconfig, tenant, label, rid))

    def watcher() -> subprocess.Popen[bytes]:
        settings = {
            **common,
            "kubeconfig": kubeconfig,
            "kafka_bootstrap": bootstrap,
            "topic": topic,
            "namespace_selector": f"{label}={rid}",
            "linger_ms": "1",
            "health_port": "0",
        }
        return _spawn("ripple_watcher", "RIPPLE_WATCHER_", settings, logs["watcher"])

    procs: list[subprocess.Popen[bytes]] = []
    rig: Rig | None = None
    try:
        xds_settings = {
            **common,
            "redis_url": redis_url,
            "redis_prefix": prefix,
            "listen": f"127.0.0.1:{xds_port}",
            "gateway_http_address": "127.0.0.1",
            "gateway_http_port": str(http_port),
            "health_port": str(health_port),
            "shutdown_grace_s": "1",
            "block_ms": "500",
            "insecure_dev_secrets": "true",
            "sla_s": str(SLA_S),
        }
        procs.append(_spawn("ripple_xds", "RIPPLE_XDS_", xds_settings, logs["xds"]))
        translator_settings = {
            **common,
            "kafka_bootstrap": bootstrap,
            "redis_url": redis_url,
            "topic": topic,
            "group_id": f"api-time-{rid}",
            "redis_prefix": prefix,
            "poll_ms": "50",
            "health_port": "0",
            "extra_class_names": json.dumps([INGRESS_CLASS]),
        }
        procs.append(
            _spawn(
                "ripple_translator", "RIPPLE_TRANSLATOR_", translator_settings, logs["translator"]
            )
        )
        envoy, envoy_log = start_envoy(
            stack["RIPPLE_ENVOY_BIN"],
            xds_port=xds_port,
            admin_port=admin_port,
            node_id=NODE,
            workdir=work,
        )
        logs["envoy"] = envoy_log
        procs.append(envoy)
        rig = Rig(
            rid=rid,
            tenant=tenant,
            prefix=prefix,
            kubeconfig=kubeconfig,
            jaeger=stack["RIPPLE_JAEGER_QUERY_URL"],
            metrics_url=f"http://127.0.0.1:{health_port}/metrics",
            logs=logs,
            watcher_cmd=watcher,
            watcher=watcher(),
            procs=procs,
        )
        # A first Ingress through the whole pipeline: every service warm, the Envoy ACKing.
        asyncio.run(_create_ingress(kubeconfig, tenant, "warm", f"warm-{rid}.apit.test"))

        def warm() -> bool:
            with contextlib.suppress(OSError):
                return sample(scrape(rig.metrics_url), "ripple_xds_propagation_acked_total") >= 1
            return False

        wait_for("the warm-up Ingress ACKed", warm, rig)
        yield rig
    finally:
        if rig is not None:
            stop_process(rig.watcher)
        for proc in reversed(procs):
            stop_process(proc)
        asyncio.run(_kube_cleanup(kubeconfig, tenant))
        asyncio.run(_redis_cleanup(redis_url, prefix))
        asyncio.run(delete_topic(bootstrap, topic))


def test_a_change_made_while_the_watcher_is_down_is_timed_from_the_api(rig: Rig) -> None:
    before = scrape(rig.metrics_url)
    acked_before = sample(before, "ripple_xds_propagation_acked_total")
    # (The warm-up Ingress may have breached too: created while the watcher was starting.)
    known = len(breaches(rig.logs["xds"], rig.tenant))

    # Kubernetes times are whole seconds and the late Ingress is told apart from the warm-up
    # one by its API time below: create it in a later second than the warm-up Ingress.
    time.sleep(1.1)
    # The watcher goes down; an Ingress is created while it is; PAUSE_S later it comes back.
    rig.watcher.send_signal(signal.SIGTERM)
    assert rig.watcher.wait(30) == 0, tail(rig.logs["watcher"])
    created = asyncio.run(
        _create_ingress(rig.kubeconfig, rig.tenant, "late", f"late-{rig.rid}.apit.test")
    )
    created_at = time.time()
    time.sleep(PAUSE_S)
    rig.watcher = rig.watcher_cmd()
    restarted_at = time.time()
    outage_s = restarted_at - created_at
    api_ns = int(datetime.fromisoformat(created).timestamp()) * 1_000_000_000

    (breach,) = wait_for(
        "the late Ingress's SLA breach logged",
        lambda: breaches(rig.logs["xds"], rig.tenant)[known:],
        rig,
    )
    print(json.dumps(breach, indent=1))
    # API -> ACK counts the outage; observed -> ACK does not.
    assert "api_ack" in breach["breached"], breach
    # (`total` breaches too only if the restarted pipeline took over SLA_S on its own.)
    assert ("total" in breach["breached"]) == (breach["total_s"] > SLA_S), breach
    assert breach["api_time"] == "api", breach
    assert breach["api_ack_s"] >= outage_s >= PAUSE_S, (breach, outage_s)
    assert breach["total_s"] < PAUSE_S, breach
    assert breach["node"] == NODE, breach

    # /metrics: the api_ack stage counted it above the SLA; the breach counters.
    after = scrape(rig.metrics_url)
    assert sample(after, "ripple_xds_propagation_acked_total") > acked_before
    assert stage_count(after, "api_ack") > stage_count(before, "api_ack")
    above_sla = stage_count(after, "api_ack") - stage_count(after, "api_ack", le="2.5")
    assert above_sla >= 1, after
    assert sample(after, "ripple_xds_sla_breaches_api_total") >= 1, after
    observed_breaches = sample(after, "ripple_xds_sla_breaches_total") - sample(
        before, "ripple_xds_sla_breaches_total"
    )
    assert observed_breaches == (1 if breach["total_s"] > SLA_S else 0), after

    # `ripple sla` from the metrics: the api_ack row beside the others, its BREACH.
    code, out = cli("sla", "--metrics", rig.metrics_url, "--sla", str(SLA_S))
    print(out)
    assert code == 1, out
    row = re.search(r"^api_ack\s+(\d+)\s", out, re.MULTILINE)
    assert row is not None, out
    assert int(row.group(1)) >= 2, out
    assert f"SLA {SLA_S:g} s on p99 api_ack: BREACH" in out, out

    # Jaeger: the xds.ack span carries the API time; the trace has an event at it.
    def late_ack() -> dict[str, Any] | None:
        with contextlib.suppress(OSError, ValueError):
            for tags in jaeger_acks(rig):
                # (Jaeger's JSON gives an int64 as text.) Only this rig's Envoy: the shared
                # pipeline's watcher, if it runs, sees this namespace too and its xds ACKs
                # the same tenant's change, timed by a watcher that was never down.
                if tags.get("ripple.node") != NODE:
                    continue
                if int(tags.get("ripple.api_at_ns", 0)) == api_ns:
                    return tags
        return None

    tags = wait_for("the late Ingress's xds.ack span in Jaeger", late_ack, rig, within_s=20)
    assert tags["ripple.api_time"] == "api", tags
    assert float(tags["ripple.api_ack_ms"]) >= outage_s * 1000, tags
    assert float(tags["ripple.total_ms"]) < PAUSE_S * 1000, tags
    assert api_ns // 1000 in tags["api_events"], tags

    code, out = cli("sla", "--source", "jaeger", "--jaeger", rig.jaeger, "--lookback", "5m")
    print(out)
    assert re.search(r"^api_ack\s+[1-9]\d*\s", out, re.MULTILINE), out
