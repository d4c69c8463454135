"""Ripple end to end, live: route changes timed through a real Envoy while traffic flows.

With the local stack up (`./dev up` runs this last), it starts what is missing: the test
backends (`ripple-be` network namespace: be-a at 198.18.0.2:8080, be-b at :8081) and the
pipeline (xds, two translator instances in one consumer group, watcher). Then, through the
stack's gateway Envoy (HTTP on 127.0.0.1:10080, routed by Host):

1. three tenants (namespaces `demo-<id>-shop|blog|api`, Services `web` -> be-a and `v2` ->
   be-b) each get an Ingress; each host is timed from the API call until it serves (404 -> 200);
2. background traffic starts: GETs without pause over every route that must serve, each
   answer checked to come from the right backend;
3. a tenant with a broken Ingress (invalid regex with `use-regex`) is rejected and blocks
   nobody;
4. a pass of six changes on one tenant: add path /v2 -> v2, switch / to v2 and back, a new
   Ingress on a second host, its deletion (-> 404), removal of /v2; with `--duration`, passes
   repeat over the tenants until the time is up.

One table row per change, as it happens: tenant, change, API call -> first expected answer
through Envoy (ms), GETs it took, and the background traffic's requests and errors meanwhile
(any answer other than 200/404 while polling counts as an error too). At the end: a summary,
and the Jaeger query API links to the changes' traces (one trace per change: watcher ->
translator -> xds -> Envoy ACK).

    python -m scripts.demo [--duration SECONDS] [--translators 2] [--keep]   (needs root)

Ctrl-C (or SIGTERM) stops it cleanly: the summary is printed, the demo's Kubernetes objects
deleted, and what it started (services, backends) stopped unless --keep. Exit status 0 when
no error was seen, 1 otherwise, 130 when interrupted. The pieces (objects, HTTP probe) are
shared with the e2e tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import re
import signal
import sys
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

import aiohttp
import redis.asyncio as aioredis
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from ripple_translator.store import KeyLayout, RedisTenantStore
from ripple_translator.translate import DEFAULT_CONTROLLER
from scripts.netns_backend import BACKEND_IP, BackendError, NetnsBackend
from scripts.pipeline import REDIS_PREFIX, Pipeline, PipelineError
from scripts.stack_env import load_stack_env, stack_env_file

INGRESS_CLASS: Final = "ripple"
HOST_SUFFIX: Final = "e2e.test"
BACKEND_A: Final = ("be-a", 8080)
BACKEND_B: Final = ("be-b", 8081)
USE_REGEX: Final = "nginx.ingress.kubernetes.io/use-regex"

# -- HTTP through the gateway ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    status: int  # 0: no HTTP answer (connection refused, reset, timeout)
    body: bytes

    def shows(self, backend: str) -> bool:
        return self.status == 200 and f"backend={backend} ".encode() in self.body


async def http_get(host: str, path: str = "/", *, port: int, timeout_s: float = 2.0) -> Answer:
    """One GET to 127.0.0.1:`port` with `Host: host`, on a fresh connection."""
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
                )
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                # Read by Content-Length, as curl does: waiting for EOF would wait out
                # Envoy's delayed close (1 s) after its local replies.
                length = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
                if length is not None:
                    body = await reader.readexactly(int(length.group(1)))
                else:
                    body = await reader.read()
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return Answer(0, b"")
    match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    return Answer(int(match.group(1)) if match else 0, body)


@dataclass(slots=True)
class Poll:
    elapsed_s: float
    answers: int
    last: Answer
    seen: dict[int, int] = field(default_factory=dict)  # status -> count
    errors: list[Answer] = field(default_factory=list)  # neither 200 nor 404


async def poll_until(
    host: str,
    path: str,
    *,
    port: int,
    done: Callable[[Answer], bool],
    since: float,
    timeout_s: float = 30.0,
    interval_s: float = 0.005,
) -> Poll:
    """GET until `done(answer)`; elapsed is from `since` (time.monotonic()) to that answer."""
    seen: dict[int, int] = {}
    errors: list[Answer] = []
    count = 0
    deadline = time.monotonic() + timeout_s
    while True:
        answer = await http_get(host, path, port=port)
        count += 1
        seen[answer.status] = seen.get(answer.status, 0) + 1
        if answer.status not in (200, 404):
            errors.append(answer)
        if done(answer):
            return Poll(time.monotonic() - since, count, answer, seen, errors)
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{host}{path}: no expected answer in {timeout_s}s; statuses seen {seen}, "
                f"last {answer.status} {answer.body[:200]!r}"
            )
        await asyncio.sleep(interval_s)


class Prober:
    """Hits one host in the background; counts answers that are not the expected backend."""

    def __init__(self, host: str, backend: str, *, port: int, interval_s: float = 0.02) -> None:
        self.host = host
        self.backend = backend
        self.port = port
        self.interval_s = interval_s
        self.ok = 0
        self.failures: list[tuple[float, int, bytes]] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            answer = await http_get(self.host, port=self.port)
            if answer.shows(self.backend):
                self.ok += 1
            else:
                self.failures.append((time.time(), answer.status, answer.body[:200]))
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"prober {self.host}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


# -- Kubernetes objects ----------------------------------------------------------------------


def service_manifest(name: str, *, target_port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "ports": [{"name": "http", "port": 80, "targetPort": target_port, "protocol": "TCP"}]
        },
    }


def endpoint_slice_manifest(service: str, *, address: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": f"{service}-1", "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
    }


def ingress_manifest(
    name: str,
    host: str,
    paths: Sequence[tuple[str, str]],
    *,
    path_type: str = "Prefix",
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An Ingress of class `ripple` routing `host`'s paths to (path, service) port 80."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "annotations": dict(annotations or {})},
        "spec": {
            "ingressClassName": INGRESS_CLASS,
            "rules": [
                {
                    "host": host,
                    "http": {
                        "paths": [
                            {
                                "path": path,
                                "pathType": path_type,
                                "backend": {"service": {"name": svc, "port": {"number": 80}}},
                            }
                            for path, svc in paths
                        ]
                    },
                }
            ],
        },
    }


class Kube:
    """The few kube-apiserver calls the scenario makes; remembers what to delete."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.net = client.NetworkingV1Api(api)
        self.discovery = client.DiscoveryV1Api(api)
        self.namespaces: list[str] = []

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, kubeconfig: str) -> AsyncIterator[Kube]:
        api = await config.new_client_from_config(config_file=kubeconfig)
        kube = cls(api)
        try:
            await kube.wait_ready()
            yield kube
        finally:
            try:
                await kube.cleanup()
            finally:
                await api.close()

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Wait out an apiserver restart (the stack's apiserver is shared with other tests)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                await client.VersionApi(self.api).get_code()
                return
            except (OSError, aiohttp.ClientError, ApiException):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    async def ensure_ingress_class(self) -> None:
        """The cluster-scoped IngressClass `ripple` (ripple's controller); kept afterwards."""
        body = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {"name": INGRESS_CLASS},
            "spec": {"controller": DEFAULT_CONTROLLER},
        }
        try:
            await self.net.create_ingress_class(cast(client.V1IngressClass, body))
        except ApiException as exc:
            if exc.status != 409:
                raise

    async def namespace(self, name: str) -> None:
        await self.core.create_namespace(cast(client.V1Namespace, {"metadata": {"name": name}}))
        self.namespaces.append(name)

    async def service(self, ns: str, name: str, *, target_port: int) -> None:
        await self.core.create_namespaced_service(
            ns, cast(client.V1Service, service_manifest(name, target_port=target_port))
        )
        await self.discovery.create_namespaced_endpoint_slice(
            ns,
            cast(
                client.V1EndpointSlice,
                endpoint_slice_manifest(name, address=BACKEND_IP, port=target_port),
            ),
        )

    async def create_ingress(self, ns: str, body: dict[str, Any]) -> None:
        await self.net.create_namespaced_ingress(ns, cast(client.V1Ingress, body))

    async def replace_ingress(self, ns: str, body: dict[str, Any]) -> None:
        current = await self.net.read_namespaced_ingress(body["metadata"]["name"], ns)
        body = {**body, "metadata": {**body["metadata"]}}
        body["metadata"]["resourceVersion"] = current.metadata.resource_version
        await self.net.replace_namespaced_ingress(
            body["metadata"]["name"], ns, cast(client.V1Ingress, body)
        )

    async def delete_ingress(self, ns: str, name: str) -> None:
        await self.net.delete_namespaced_ingress(name, ns)

    async def cleanup(self) -> None:
        """Delete the objects, then the namespaces (there is no namespace controller here, so
        a namespace's objects would otherwise outlive it)."""
        for ns in self.namespaces:
            for delete in (
                self.net.delete_collection_namespaced_ingress,
                self.discovery.delete_collection_namespaced_endpoint_slice,
            ):
                with contextlib.suppress(ApiException):
                    await delete(ns)
            with contextlib.suppress(ApiException):
                for svc in (await self.core.list_namespaced_service(ns)).items:
                    await self.core.delete_namespaced_service(svc.metadata.name, ns)
            with contextlib.suppress(ApiException):
                await self.core.delete_namespace(ns)
                # Finish the deletion as the namespace controller would (empty finalizers).
                body = {"metadata": {"name": ns}, "spec": {"finalizers": []}}
                await self.core.replace_namespace_finalize(ns, cast(client.V1Namespace, body))
        self.namespaces.clear()


# -- the scenario ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tenant:
    ns: str
    host: str


def tenants(run_id: str | None = None) -> tuple[Tenant, Tenant, Tenant]:
    """Steady, changing and broken tenants with unique namespaces and hosts."""
    rid = run_id or uuid.uuid4().hex[:8]
    return (
        Tenant(f"e2e-{rid}-steady", f"steady-{rid}.{HOST_SUFFIX}"),
        Tenant(f"e2e-{rid}-app", f"app-{rid}.{HOST_SUFFIX}"),
        Tenant(f"e2e-{rid}-broken", f"broken-{rid}.{HOST_SUFFIX}"),
    )


async def add_tenant(kube: Kube, tenant: Tenant, *, services: Sequence[tuple[str, int]]) -> None:
    """Namespace plus one Service (+ EndpointSlice) per (name, backend port)."""
    await kube.namespace(tenant.ns)
    for name, port in services:
        await kube.service(tenant.ns, name, target_port=port)


def serves(backend: str) -> Callable[[Answer], bool]:
    return lambda answer: answer.shows(backend)


def not_found(answer: Answer) -> bool:
    return answer.status == 404


class Stored:
    """What the translator wrote to Redis for a tenant (for diagnosis when Envoy lags)."""

    def __init__(self, redis_url: str, prefix: str = REDIS_PREFIX) -> None:
        self.client: aioredis.Redis = aioredis.from_url(redis_url, decode_responses=False)
        self.store = RedisTenantStore(self.client, layout=KeyLayout(prefix=prefix))

    async def names(self, tenant: str) -> set[str]:
        checkpoint = await self.store.load_checkpoint(tenant)
        return {name for _, name in checkpoint.resource_versions}

    async def close(self) -> None:
        await self.client.aclose()


# -- the demo --------------------------------------------------------------------------------

DEMO_SUFFIX: Final = "demo.test"
DEMO_TENANTS: Final = ("shop", "blog", "api")
PAUSE_S: Final = 0.3  # between changes, so the table reads as it goes


@dataclass(slots=True)
class Traffic:
    """Real HTTP through the gateway, without pause, over every route that must serve: each
    answer must be a 200 from one of the route's expected backends, anything else is an error.
    Routes are expected before they serve and forgotten before they are removed."""

    port: int
    routes: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    sent: int = 0
    errors: list[tuple[float, str, str, int, bytes]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def expect(self, host: str, path: str, *backends: str) -> None:
        self.routes[(host, path)] = frozenset(backends)

    def forget(self, host: str) -> None:
        for key in [k for k in self.routes if k[0] == host]:
            del self.routes[key]

    def forget_path(self, host: str, path: str) -> None:
        self.routes.pop((host, path), None)

    async def _run(self) -> None:
        while True:
            if not self.routes:
                await asyncio.sleep(0.05)
                continue
            for (host, path), backends in list(self.routes.items()):
                answer = await http_get(host, path, port=self.port)
                if (host, path) not in self.routes:
                    continue  # forgotten while in flight: its removal was under way
                self.sent += 1
                if not any(answer.shows(b) for b in backends):
                    self.errors.append((time.time(), host, path, answer.status, answer.body[:120]))
                await asyncio.sleep(0.002)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="traffic")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@dataclass(frozen=True, slots=True)
class Change:
    """One row of the live table."""

    n: int
    at_s: float
    tenant: str
    what: str
    ms: float | None  # change applied in the API -> first expected answer through Envoy
    gets: int
    traffic_sent: int
    traffic_errors: int
    poll_errors: int

    HEADER = (
        f"{'#':>3} {'at':>6}  {'tenant':<22} {'change':<40} {'-> served':>10} {'GETs':>5}"
        f"  traffic: requests / errors"
    )

    def row(self) -> str:
        ms = f"{self.ms:7.0f} ms" if self.ms is not None else f"{'-':>10}"
        errors = self.traffic_errors + self.poll_errors
        mark = "" if errors == 0 else "   <-- ERRORS"
        return (
            f"{self.n:>3} {self.at_s:5.1f}s  {self.tenant:<22} {self.what:<40} {ms} "
            f"{self.gets:>5}  {self.traffic_sent:>8} / {errors}{mark}"
        )


@dataclass(slots=True)
class Site:
    """A demo tenant: Services `web` (backend be-a) and `v2` (be-b); Ingress `web` on its host."""

    tenant: Tenant
    extra_host: str
    paths: list[tuple[str, str]] = field(default_factory=list)  # the Ingress `web`'s paths


class Demo:
    """Demo tenants, continuous traffic, and timed route changes, one table row each."""

    def __init__(self, kube: Kube, *, port: int, run_id: str) -> None:
        self.kube = kube
        self.port = port
        self.traffic = Traffic(port)
        self.changes: list[Change] = []
        self.sites = [
            Site(
                Tenant(f"demo-{run_id}-{name}", f"{name}-{run_id}.{DEMO_SUFFIX}"),
                extra_host=f"{name}-extra-{run_id}.{DEMO_SUFFIX}",
            )
            for name in DEMO_TENANTS
        ]
        self.broken = Tenant(f"demo-{run_id}-broken", f"broken-{run_id}.{DEMO_SUFFIX}")
        self.t0 = time.monotonic()

    def backend_of(self, service: str) -> str:
        return BACKEND_A[0] if service == "web" else BACKEND_B[0]

    async def timed(
        self,
        site: Site | Tenant,
        what: str,
        apply: Callable[[], Awaitable[Any]],
        *,
        host: str,
        path: str = "/",
        done: Callable[[Answer], bool],
    ) -> Change:
        """Apply a change, poll its host until `done`, print the row."""
        tenant = site.tenant if isinstance(site, Site) else site
        sent, errors = self.traffic.sent, len(self.traffic.errors)
        t = time.monotonic()
        await apply()
        poll = await poll_until(host, path, port=self.port, done=done, since=t, timeout_s=30)
        change = Change(
            n=len(self.changes) + 1,
            at_s=t - self.t0,
            tenant=tenant.ns,
            what=what,
            ms=poll.elapsed_s * 1000,
            gets=poll.answers,
            traffic_sent=self.traffic.sent - sent,
            traffic_errors=len(self.traffic.errors) - errors,
            poll_errors=len(poll.errors),
        )
        self.changes.append(change)
        print(change.row(), flush=True)
        return change

    async def _set_paths(self, site: Site, paths: list[tuple[str, str]]) -> None:
        site.paths = paths
        body = ingress_manifest("web", site.tenant.host, paths)
        await self.kube.replace_ingress(site.tenant.ns, body)

    async def setup(self) -> None:
        """Each tenant: namespace, Services, then its Ingress: a timed 404 -> 200."""
        for site in self.sites:
            await add_tenant(
                self.kube, site.tenant, services=[("web", BACKEND_A[1]), ("v2", BACKEND_B[1])]
            )
        for site in self.sites:
            host = site.tenant.host
            site.paths = [("/", "web")]
            body = ingress_manifest("web", host, site.paths)
            await self.timed(
                site,
                f"new Ingress {host.split('.')[0]}",
                functools.partial(self.kube.create_ingress, site.tenant.ns, body),
                host=host,
                done=serves(BACKEND_A[0]),
            )
            self.traffic.expect(host, "/", BACKEND_A[0])

    async def broken_ingress(self) -> None:
        """An Ingress the translator rejects (invalid regex) blocks nobody; its host stays 404."""
        await add_tenant(self.kube, self.broken, services=[("web", BACKEND_A[1])])
        body = ingress_manifest(
            "bad",
            self.broken.host,
            [("/(unclosed", "web")],
            path_type="ImplementationSpecific",
            annotations={USE_REGEX: "true"},
        )
        sent, errors = self.traffic.sent, len(self.traffic.errors)
        t = time.monotonic()
        await self.kube.create_ingress(self.broken.ns, body)
        await asyncio.sleep(1.0)  # time to (not) serve it
        answer = await http_get(self.broken.host, port=self.port)
        change = Change(
            n=len(self.changes) + 1,
            at_s=t - self.t0,
            tenant=self.broken.ns,
            what=f"broken Ingress (bad regex): {answer.status}",
            ms=None,
            gets=1,
            traffic_sent=self.traffic.sent - sent,
            traffic_errors=len(self.traffic.errors) - errors,
            poll_errors=0 if answer.status == 404 else 1,
        )
        self.changes.append(change)
        print(change.row(), flush=True)

    async def one_pass(self, site: Site) -> None:
        """Six route changes on one tenant, ending where it started."""
        host, ns = site.tenant.host, site.tenant.ns
        a, b = BACKEND_A[0], BACKEND_B[0]
        await self.timed(
            site,
            "add path /v2 -> Service v2",
            lambda: self._set_paths(site, [("/", "web"), ("/v2", "v2")]),
            host=host,
            path="/v2",
            done=serves(b),
        )
        self.traffic.expect(host, "/v2", b)
        await asyncio.sleep(PAUSE_S)
        for to, backend in (("v2", b), ("web", a)):
            self.traffic.expect(host, "/", a, b)  # either, while it switches
            await self.timed(
                site,
                f"switch / to Service {to}",
                functools.partial(self._set_paths, site, [("/", to), ("/v2", "v2")]),
                host=host,
                done=serves(backend),
            )
            self.traffic.expect(host, "/", backend)
            await asyncio.sleep(PAUSE_S)
        extra = ingress_manifest("extra", site.extra_host, [("/", "web")])
        await self.timed(
            site,
            f"new Ingress {site.extra_host.split('.')[0]}",
            lambda: self.kube.create_ingress(ns, extra),
            host=site.extra_host,
            done=serves(a),
        )
        self.traffic.expect(site.extra_host, "/", a)
        await asyncio.sleep(PAUSE_S)
        self.traffic.forget(site.extra_host)
        await self.timed(
            site,
            f"delete Ingress {site.extra_host.split('.')[0]} (-> 404)",
            lambda: self.kube.delete_ingress(ns, "extra"),
            host=site.extra_host,
            done=not_found,
        )
        await asyncio.sleep(PAUSE_S)
        self.traffic.forget_path(host, "/v2")
        await self.timed(
            site,
            "remove path /v2 (-> / serves it)",
            lambda: self._set_paths(site, [("/", "web")]),
            host=host,
            path="/v2",
            done=serves(a),
        )
        await asyncio.sleep(PAUSE_S)

    async def run(self, *, duration_s: float) -> None:
        print(Change.HEADER, flush=True)
        await self.setup()
        self.traffic.start()
        started = time.monotonic()
        await self.broken_ingress()
        n = 0
        while True:
            await self.one_pass(self.sites[n % len(self.sites)])
            n += 1
            if time.monotonic() - started >= duration_s:
                break


async def trace_ids(query_url: str, ns: str, *, timeout_s: float = 8.0) -> list[str]:
    """Trace ids of the tenant's Ingress changes, once Jaeger has them (the services export
    spans in batches, every 5 s); empty if none arrive in time or Jaeger does not answer."""
    tags = json.dumps({"ripple.tenant": ns, "ripple.kind": "Ingress"})
    params = {"service": "ripple-watcher", "tags": tags, "lookback": "1h", "limit": "50"}
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:
        while True:
            try:
                async with session.get(f"{query_url}/api/traces", params=params) as resp:
                    data = ((await resp.json()).get("data") or []) if resp.ok else []
            except (aiohttp.ClientError, TimeoutError, ValueError):
                return []
            if data or time.monotonic() > deadline:
                return sorted({t["traceID"] for t in data})
            await asyncio.sleep(0.5)


def jaeger_links(query_url: str, namespaces: Sequence[str]) -> list[str]:
    """The Jaeger UI and, per tenant, the query API search for its changes' traces."""
    ui = query_url.rstrip("/")
    lines = [
        f"Jaeger: UI {ui}/search?service=ripple-watcher&operation=watcher.publish (the stack's "
        "build serves a placeholder page without the npm-built UI assets; the API works)"
    ]
    for ns in namespaces:
        tags = json.dumps({"ripple.tenant": ns, "ripple.kind": "Ingress"}, separators=(",", ":"))
        query = urllib.parse.urlencode(
            {
                "service": "ripple-watcher",
                "operation": "watcher.publish",
                "tags": tags,
                "lookback": "1h",
                "limit": "20",
            }
        )
        lines.append(f"  traces of {ns}: {ui}/api/traces?{query}")
    return lines


def summary(changes: Sequence[Change], traffic: Traffic) -> list[str]:
    timed = sorted(c.ms for c in changes if c.ms is not None)
    lines = [f"{len(changes)} changes"]
    if timed:

        def q(p: float) -> float:
            return timed[min(len(timed) - 1, int(p * len(timed)))]

        lines[0] += (
            f"; API -> served through Envoy: median {q(0.5):.0f} ms, p90 {q(0.9):.0f} ms, "
            f"max {timed[-1]:.0f} ms"
        )
    poll_errors = sum(c.poll_errors for c in changes)
    lines.append(
        f"background traffic: {traffic.sent} requests, {len(traffic.errors)} errors; "
        f"answers other than 200/404 while changes propagated: {poll_errors}"
    )
    for t, host, path, status, body in traffic.errors[:10]:
        stamp = time.strftime("%H:%M:%S", time.localtime(t))
        lines.append(f"  error {stamp} {host}{path}: {status} {body[:80]!r}")
    return lines


async def demo(*, port: int, duration_s: float, query_url: str | None) -> int:
    env = load_stack_env()
    if not env:
        print(f"demo: {stack_env_file()} not found; run ./dev up", file=sys.stderr)
        return 1
    run_id = uuid.uuid4().hex[:6]
    async with Kube.connect(env["KUBECONFIG"]) as kube:
        await kube.ensure_ingress_class()
        show = Demo(kube, port=port, run_id=run_id)
        interrupted = False
        try:
            await show.run(duration_s=duration_s)
        except asyncio.CancelledError:
            interrupted = True
            print("\ninterrupted: stopping, deleting the demo's objects", flush=True)
        finally:
            await show.traffic.stop()
            print()
            for line in summary(show.changes, show.traffic):
                print(line)
            if query_url:
                namespaces = [s.tenant.ns for s in show.sites]
                for line in jaeger_links(query_url, namespaces):
                    print(line)
                if not interrupted:
                    ids = await trace_ids(query_url, namespaces[0])
                    base = query_url.rstrip("/")
                    print(f"  {len(ids)} traces of {namespaces[0]} so far, e.g.:")
                    for trace_id in ids[:5]:
                        print(f"    {base}/api/traces/{trace_id}")
        ok = not show.traffic.errors and not any(c.poll_errors for c in show.changes)
    return 130 if interrupted else (0 if ok else 1)


async def _interruptible(coro: Any) -> int:
    """Run `coro`; SIGINT/SIGTERM cancel it (once: a second Ctrl-C aborts)."""
    task = asyncio.ensure_future(coro)
    loop = asyncio.get_running_loop()

    def cancel() -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, cancel)
    try:
        return int(await task)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.demo", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--duration",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="keep changing routes for this long (default 0: one pass, about 20 s in all)",
    )
    parser.add_argument(
        "--translators", type=int, default=2, help="translator instances (default 2)"
    )
    parser.add_argument("--keep", action="store_true", help="leave backends and pipeline up")
    args = parser.parse_args(argv)
    env = load_stack_env()
    backend = NetnsBackend()
    pipeline = Pipeline(translators=args.translators)
    had_backend = backend.status().up
    running_before = {n for n in pipeline.instances() if pipeline.is_running(n)}
    code = 1
    try:
        backend.up()
        pipeline.up(say=lambda s: print(f"[pipeline] {s}", flush=True))
        print(
            f"gateway Envoy http://127.0.0.1:{pipeline.gateway_port}/ (routed by Host); "
            f"backends at {BACKEND_IP}; logs in {pipeline.dir}/<service>/log\n",
            flush=True,
        )
        code = asyncio.run(
            _interruptible(
                demo(
                    port=pipeline.gateway_port,
                    duration_s=args.duration,
                    query_url=env.get("RIPPLE_JAEGER_QUERY_URL"),
                )
            )
        )
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        code = 130
    except (BackendError, PipelineError, TimeoutError) as exc:
        print(f"demo: {exc}", file=sys.stderr)
    finally:
        if not args.keep:
            started = [
                n
                for n in pipeline.instances()
                if n not in running_before and pipeline.is_running(n)
            ]
            pipeline.down(started, say=lambda s: print(f"[pipeline] {s}", flush=True))
            if not had_backend:
                backend.down()
    return code


if __name__ == "__main__":
    sys.exit(main())
