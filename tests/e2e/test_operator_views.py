"""The operator's views against a real pipeline: `ripple trace` and `ripple status` (#18).

This module runs its own pipeline on the local stack, isolated from the shared one and from
other tests: a watcher publishing only the namespaces labelled with this run's id to its own
Kafka topic, a translator consuming that topic into its own Redis key prefix, an xds process
serving that prefix (SLA 1 s, so lag is past it quickly) and a real Envoy doing Delta ADS to it,
all tracing into the stack's Jaeger. Then:

- an Ingress created in the tenant's namespace is served (its version ACKed by the Envoy);
  `ripple trace` prints its waterfall: the watcher's publish, the translator's write, xds's
  apply, the pushes and the Envoy's ACK, each with its timing, the SLA verdict and the Jaeger
  URL; `ripple status` shows the node with every tenant current (exit 0);
- the Envoy is paused (SIGSTOP) and the Ingress changed: `ripple status` names the tenant
  lagging on that node past the SLA (exit 1), also with `--tenant`, and `ripple trace` of that
  change says it is not ACKed; after SIGCONT, the node is current again (exit 0) and the
  change's trace shows the SLA breach the pause caused;
- a tenant's version Envoy rejects (a route regex that does not compile, written into the
  prefix as the translator would) is shown by `ripple status` as a NACK with the tenant,
  the version and Envoy's error text (exit 1 once past the SLA); `--tenant` narrows to it; the
  next good version clears it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from kubernetes_asyncio import client

from ripple_translator.store import KeyLayout, RedisTenantStore
from scripts.demo import INGRESS_CLASS, ingress_manifest
from scripts.pipeline import ensure_topic
from tests.conftest import StackEnv
from tests.e2e.kube_api import api_client, kube_setup
from tests.integration.watcher.support import delete_topic
from tests.integration.xds_service.support import (
    start_envoy,
    stop_process,
    tail,
    tenant_resources,
    write_tenant,
)
from tests.integration.xds_service.test_xds_nack import BAD_REGEX, with_bad_route
from tests.waiting import eventually_blocking

SLA_S = 1.0
NODE = "ops-view-gateway"
GATEWAY = "ripple-test"  # the test bootstrap's node cluster: the node's gateway group
WITHIN_S = 30.0


@dataclass(frozen=True, slots=True)
class Views:
    """This module's pipeline and what the CLI needs to look at it."""

    rid: str
    tenant: str  # the namespace the watcher publishes
    nack_tenant: str  # written straight into the prefix (Envoy rejects one of its versions)
    prefix: str
    redis_url: str
    xds_health: str  # base URL of the xds replica's health port
    translator_health: str
    topic: str
    jaeger: str
    kubeconfig: str
    envoy: subprocess.Popen[bytes]
    logs: tuple[Path, ...]


def low_port() -> int:
    """A free TCP port on 127.0.0.1 below 32768 (the ephemeral range is left to clients)."""
    while True:
        port = random.randrange(20000, 32000)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def cli(*args: str) -> tuple[int, str]:
    """`python -m ripple_cli ARGS`: exit code and stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "ripple_cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert not done.stderr.strip() or done.returncode in (0, 1, 3), done.stderr
    return done.returncode, done.stdout


def nodes_doc(views: Views) -> dict[str, Any]:
    with urllib.request.urlopen(f"{views.xds_health}/debug/nodes", timeout=5) as response:
        doc: dict[str, Any] = json.loads(response.read())
    return doc


def wait_for(what: str, check: Any, views: Views, *, within_s: float = WITHIN_S) -> Any:
    """`eventually_blocking(check)` that fails with the pipeline's logs."""
    return eventually_blocking(
        check,
        within_s=within_s,
        every_s=0.2,
        what=what,
        detail=lambda: "\n".join(f"--- {p.name}\n{tail(p)}" for p in views.logs),
    )


def node_entry(views: Views) -> dict[str, Any] | None:
    for node in nodes_doc(views)["nodes"]:
        if node["node"] == NODE:
            return cast(dict[str, Any], node)
    return None


def acked_version(views: Views, tenant: str) -> int | None:
    """The version of `tenant` the node ACKed, when it is also the newest stored one."""
    doc = nodes_doc(views)
    stored = doc["versions"].get(tenant)
    for node in doc["nodes"]:
        acked = node["acked"].get(tenant)
        if node["node"] == NODE and acked is not None and acked["version"] == stored:
            return int(stored)
    return None


def acked_after(views: Views, before: int) -> int | None:
    """The Ingress tenant's version ACKed, once newer than `before`."""
    version = acked_version(views, views.tenant)
    return version if version is not None and version > before else None


def _spawn(
    module: str, prefix: str, settings: Mapping[str, str], log: Path, *, pipeline: str
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # export spans quickly: the CLI reads them back
        # A process tag on every span: `ripple trace --tag` picks this pipeline's traces (a
        # shared pipeline started on the stack also publishes this namespace's events).
        "OTEL_RESOURCE_ATTRIBUTES": f"ripple.pipeline={pipeline}",
        **{f"{prefix}{k.upper()}": v for k, v in settings.items()},
    }
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", module], env=env, stdout=out, stderr=subprocess.STDOUT
        )


async def _kube_ingress(kubeconfig: str, ns: str, hosts: list[str], *, name: str = "web") -> None:
    """Create the Ingress `name`, or replace it with these hosts."""
    body = ingress_manifest(name, hosts[0], [("/", "web")])
    body["spec"]["ingressClassName"] = INGRESS_CLASS
    rules = body["spec"]["rules"]
    body["spec"]["rules"] = [{**rules[0], "host": h} for h in hosts]
    api = await api_client(kubeconfig)
    async with api:
        net = client.NetworkingV1Api(api)
        try:
            current = await net.read_namespaced_ingress(name, ns)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            await net.create_namespaced_ingress(ns, cast(client.V1Ingress, body))
            return
        body["metadata"]["resourceVersion"] = current.metadata.resource_version
        await net.replace_namespaced_ingress(name, ns, cast(client.V1Ingress, body))


async def _kube_cleanup(kubeconfig: str, ns: str) -> None:
    api = await api_client(kubeconfig)
    async with api:
        core, net = client.CoreV1Api(api), client.NetworkingV1Api(api)
        for call in (
            lambda: net.delete_collection_namespaced_ingress(ns),
            lambda: core.delete_namespaced_service("web", ns),
            lambda: core.delete_namespace(ns),
            lambda: core.replace_namespace_finalize(
                ns, cast(client.V1Namespace, {"metadata": {"name": ns}, "spec": {"finalizers": []}})
            ),
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


async def _write(url: str, prefix: str, tenant: str, *, bad: bool, hosts: list[str]) -> int:
    redis = aioredis.from_url(url, decode_responses=False)
    try:
        store = RedisTenantStore(redis, layout=KeyLayout(prefix=prefix))
        resources = tenant_resources(tenant, hosts, backend_port=9)
        return await write_tenant(store, tenant, with_bad_route(resources) if bad else resources)
    finally:
        await redis.aclose()


@pytest.fixture(scope="module")
def views(stack: StackEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Views]:
    rid = uuid.uuid4().hex[:8]
    work = tmp_path_factory.mktemp("operator-views")
    tenant, nack_tenant = f"ops-{rid}", f"ops-{rid}-nack"
    topic, prefix, label = f"ops-views-{rid}", f"it-ops-{rid}", "ripple-ops-view"
    kubeconfig, bootstrap = stack["KUBECONFIG"], stack["RIPPLE_KAFKA_BOOTSTRAP"]
    redis_url, otlp = stack["RIPPLE_REDIS_URL"], stack["RIPPLE_OTLP_ENDPOINT"]
    jaeger = stack["RIPPLE_JAEGER_QUERY_URL"]
    key = base64.b64encode(os.urandom(32)).decode()
    xds_port, http_port, health_port, admin_port, tr_port = (low_port() for _ in range(5))
    common = {"otlp_endpoint": otlp, "log_json": "true", "sealing_key": key}
    asyncio.run(ensure_topic(bootstrap, topic, 1))
    asyncio.run(kube_setup(kubeconfig, tenant, label, rid))
    procs: list[subprocess.Popen[bytes]] = []
    logs = tuple(work / f"{name}.log" for name in ("xds", "translator", "watcher", "envoy"))
    try:
        procs.append(
            _spawn(
                "ripple_xds",
                "RIPPLE_XDS_",
                {
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
                },
                logs[0],
                pipeline=topic,
            )
        )
        procs.append(
            _spawn(
                "ripple_translator",
                "RIPPLE_TRANSLATOR_",
                {
                    **common,
                    "kafka_bootstrap": bootstrap,
                    "redis_url": redis_url,
                    "topic": topic,
                    "group_id": f"ops-views-{rid}",
                    "redis_prefix": prefix,
                    "poll_ms": "50",
                    "health_port": str(tr_port),
                    "extra_class_names": json.dumps([INGRESS_CLASS]),
                },
                logs[1],
                pipeline=topic,
            )
        )
        procs.append(
            _spawn(
                "ripple_watcher",
                "RIPPLE_WATCHER_",
                {
                    **common,
                    "kubeconfig": kubeconfig,
                    "kafka_bootstrap": bootstrap,
                    "topic": topic,
                    "namespace_selector": f"{label}={rid}",
                    "linger_ms": "1",
                    "health_port": "0",
                },
                logs[2],
                pipeline=topic,
            )
        )
        envoy, _ = start_envoy(
            stack["RIPPLE_ENVOY_BIN"],
            xds_port=xds_port,
            admin_port=admin_port,
            node_id=NODE,
            workdir=work,
        )
        procs.append(envoy)
        views = Views(
            rid=rid,
            tenant=tenant,
            nack_tenant=nack_tenant,
            prefix=prefix,
            redis_url=redis_url,
            xds_health=f"http://127.0.0.1:{health_port}",
            translator_health=f"http://127.0.0.1:{tr_port}",
            topic=topic,
            jaeger=jaeger,
            kubeconfig=kubeconfig,
            envoy=envoy,
            logs=logs,
        )

        def connected() -> bool:
            for proc in procs:
                assert proc.poll() is None, f"{proc.args!r} exited:\n" + "\n".join(
                    tail(p) for p in logs
                )
            try:
                return node_entry(views) is not None
            except OSError:
                return False

        wait_for("the Envoy's stream on the xds replica", connected, views)
        # A first Ingress through the whole pipeline: the translator owns its partition and
        # every service is warm before a test times a change.
        asyncio.run(_kube_ingress(kubeconfig, tenant, [f"warm-{rid}.ops.test"], name="warm"))
        wait_for("the warm-up Ingress ACKed", lambda: acked_version(views, tenant), views)
        yield views
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
            stop_process(proc)
        asyncio.run(_kube_cleanup(kubeconfig, tenant))
        asyncio.run(_redis_cleanup(redis_url, prefix))
        asyncio.run(delete_topic(bootstrap, topic))


def test_trace_prints_the_waterfall_of_a_change_and_status_every_tenant_current(
    views: Views,
) -> None:
    asyncio.run(_kube_ingress(views.kubeconfig, views.tenant, [f"web-{views.rid}.ops.test"]))

    code, out = cli(
        "trace",
        "--tenant", views.tenant,
        "--kind", "Ingress",
        "--name", "web",
        "--jaeger", views.jaeger, "--tag", f"ripple.pipeline={views.topic}",
        "--wait", "20",
    )  # fmt: skip
    print(out)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("trace "), out
    assert f"Ingress {views.tenant}/web" in lines[0], out
    trace_id = lines[0].split()[1].rstrip(":")
    order = [
        "watcher: watcher.publish",
        "translator: translator.write",
        "xds: xds.apply",
        "xds: xds.push",
        "xds: xds.ack",
    ]
    positions = [next(i for i, line in enumerate(lines) if stage in line) for stage in order]
    assert positions == sorted(positions), out
    assert any("(after the Kafka hop)" in line for line in lines), out
    api_row = lines[2].split()  # the API server's time of the change leads (whole seconds)
    assert api_row[3] == "api", out
    assert -5000.0 <= float(api_row[0]) <= 0.0, out
    assert "ms from the API's time)" in out, out
    # The version is the one this change's translator write made (the warm-up Ingress may
    # still be landing as a version of its own: "the first newer version ACKed" may be that).
    version = int(next(line for line in lines if "translator.write" in line).split()[-1][1:])
    wait_for("the Ingress's version ACKed", lambda: acked_after(views, version - 1), views)
    assert f"{NODE} ACKed v{version}" in out, out
    assert f"tenant {views.tenant} v{version}" in out, out
    assert any(line.startswith("SLA 5 s: ok (1 Envoy node(s) ACKed") for line in lines), out
    assert lines[-1] == f"Jaeger UI: {views.jaeger}/trace/{trace_id}", out

    code, out = cli("status", "--xds", views.xds_health)
    print(out)
    assert code == 0, out
    assert f"gateway {GATEWAY}" in out, out
    assert f"node {NODE} (delta, xds {views.xds_health}): 1/1 tenants current" in out, out
    assert out.splitlines()[-1] == "verdict: ok, every Envoy is current", out

    # The translator's consumer lag of its partition: nothing waits once the change is in.
    lag_line = f'ripple_translator_consumer_lag{{topic="{views.topic}",partition="0"}} 0'

    def lag_zero() -> bool:
        with urllib.request.urlopen(f"{views.translator_health}/metrics", timeout=5) as page:
            return lag_line in page.read().decode().splitlines()

    wait_for(f"{lag_line} on the translator's /metrics", lag_zero, views)
    print(lag_line)


def test_status_names_the_tenant_of_a_stalled_envoy_lagging_past_the_sla(views: Views) -> None:
    before = wait_for("the tenant ACKed", lambda: acked_version(views, views.tenant), views)
    os.kill(views.envoy.pid, signal.SIGSTOP)
    try:
        hosts = [f"web-{views.rid}.ops.test", f"more-{views.rid}.ops.test"]
        asyncio.run(_kube_ingress(views.kubeconfig, views.tenant, hosts))

        def lagging_past_sla() -> tuple[int, str] | None:
            code, out = cli("status", "--xds", views.xds_health)
            return (code, out) if code == 1 else None

        code, out = wait_for("ripple status exit 1", lagging_past_sla, views)
        print(out)
        doc = nodes_doc(views)
        print(json.dumps(doc, indent=2))
        stored = doc["versions"][views.tenant]
        assert stored > before
        assert f"node {NODE} (delta, xds {views.xds_health}): 0/1 tenants current, 1 lagging" in out
        lag_line = next(line for line in out.splitlines() if line.strip().startswith("LAG"))
        assert lag_line.strip().startswith(
            f"LAG   {views.tenant}: stored v{stored}, ACKed v{before}, behind "
        ), out
        assert lag_line.endswith("PAST SLA"), out
        assert "response(s) unanswered for" in out, out
        assert out.splitlines()[-1] == (
            f"verdict: BEHIND past the {SLA_S:g} s SLA: 1 tenant(s) on 1 node(s)"
        ), out

        code, out = cli("status", "--xds", views.xds_health, "--tenant", views.tenant)
        print(out)
        assert code == 1, out
        assert f"tenant {views.tenant}" in out.splitlines(), out
        assert f"  gateway {GATEWAY} node {NODE}: LAG   {views.tenant}: stored v{stored}" in out

        code, out = cli(
            "trace", "--tenant", views.tenant, "--kind", "Ingress", "--name", "web",
            "--jaeger", views.jaeger, "--tag", f"ripple.pipeline={views.topic}",
            "--wait", "2", "--sla", str(SLA_S),
        )  # fmt: skip
        print(out)
        assert code == 1, out
        assert "NOT ACKED by any Envoy yet" in out, out
        assert "xds: xds.apply" in out, out
    finally:
        os.kill(views.envoy.pid, signal.SIGCONT)

    wait_for("the stalled change ACKed", lambda: acked_after(views, before), views)
    code, out = cli("status", "--xds", views.xds_health)
    print(out)
    assert code == 0, out
    assert "1/1 tenants current, 0 lagging, 0 NACKed" in out, out

    code, out = cli(
        "trace", "--tenant", views.tenant, "--kind", "Ingress", "--name", "web",
        "--jaeger", views.jaeger, "--tag", f"ripple.pipeline={views.topic}",
        "--wait", "20", "--sla", str(SLA_S),
    )  # fmt: skip
    print(out)
    assert code == 1, out
    assert f"SLA {SLA_S:g} s: BREACH (1 Envoy node(s) ACKed, slowest {NODE}" in out, out


def test_status_shows_a_nack_with_the_tenant_and_envoys_error(views: Views) -> None:
    url, prefix, tenant = views.redis_url, views.prefix, views.nack_tenant
    good = asyncio.run(_write(url, prefix, tenant, bad=False, hosts=[f"n-{views.rid}.ops.test"]))
    wait_for("the good version ACKed", lambda: acked_version(views, tenant) == good, views)
    bad_hosts = [f"n-{views.rid}.ops.test", f"n2-{views.rid}.ops.test"]
    bad = asyncio.run(_write(url, prefix, tenant, bad=True, hosts=bad_hosts))

    def nacked_past_sla() -> tuple[int, str] | None:
        code, out = cli("status", "--xds", views.xds_health)
        return (code, out) if code == 1 and "NACK " in out else None

    code, out = wait_for("ripple status shows the NACK past the SLA", nacked_past_sla, views)
    print(out)
    nack_line = next(line.strip() for line in out.splitlines() if line.strip().startswith("NACK"))
    assert nack_line.startswith(
        f"NACK  {tenant}: v{bad} rejected (rds), serves v{good}, behind "
    ), out
    assert "PAST SLA: " in nack_line, out
    assert BAD_REGEX in nack_line, out
    assert "1/2 tenants current, 0 lagging, 1 NACKed" in out, out

    code, out = cli("status", "--xds", views.xds_health, "--tenant", views.tenant)
    print(out)
    assert code == 0, out  # the other tenant is current: --tenant narrows
    assert f"  gateway {GATEWAY} node {NODE}: current at v" in out, out
    assert "NACK" not in out, out

    code, out = cli("status", "--xds", views.xds_health, "--tenant", tenant)
    assert code == 1, out
    assert f"node {NODE}: NACK  {tenant}: v{bad} rejected (rds)" in out, out

    fixed = asyncio.run(_write(url, prefix, tenant, bad=False, hosts=[f"n3-{views.rid}.ops.test"]))
    wait_for("the fixed version ACKed", lambda: acked_version(views, tenant) == fixed, views)
    code, out = cli("status", "--xds", views.xds_health)
    assert code == 0, out
    assert "2/2 tenants current, 0 lagging, 0 NACKed" in out, out
