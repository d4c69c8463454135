"""Ingress -> Envoy, end to end, timed: the e2e test's scenario as a short demo.

With the local stack up (`./dev up`), this starts what is missing (the test backends in the
`ripple-be` network namespace, and the pipeline: xds, translator, watcher), then, through the
stack's gateway Envoy (HTTP on 127.0.0.1:10080, routed by Host):

1. a steady tenant is created and served; a prober keeps hitting it for the whole run;
2. a new tenant (namespace, Service 80 -> 8080, EndpointSlice 198.18.0.2:8080, Ingress
   `<unique>.e2e.test` / -> Service) is created; time until its host turns 404 -> 200;
3. the Ingress gets a second path (/v2 -> another Service, backend port 8081); time until /v2
   answers from the second backend;
4. a broken Ingress (invalid regex with `use-regex`) lands in a third tenant; the others keep
   serving;
5. the first Ingress is deleted; time until its host answers 404 again.

    python -m scripts.demo [--keep]   (needs root for the network namespace)

It stops what it started (pipeline services, backends) unless --keep, and deletes its
Kubernetes objects. The pieces (objects, HTTP probe, scenario steps) are shared with
tests/e2e/test_ingress_to_envoy.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

import aiohttp
import redis.asyncio as aioredis
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from ripple_translator.store import KeyLayout, RedisTenantStore
from ripple_translator.translate import DEFAULT_CONTROLLER
from scripts.netns_backend import BACKEND_IP, BackendError, NetnsBackend
from scripts.pipeline import GATEWAY_HTTP_PORT, REDIS_PREFIX, Pipeline, PipelineError
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


def _row(step: str, poll: Poll) -> str:
    statuses = ", ".join(f"{s or 'none'}x{n}" for s, n in sorted(poll.seen.items()))
    return f"  {step:<44} {poll.elapsed_s * 1000:8.0f} ms   ({poll.answers} GETs: {statuses})"


async def demo(*, port: int) -> int:
    env = load_stack_env()
    if not env:
        print(f"demo: {stack_env_file()} not found; run ./dev up", file=sys.stderr)
        return 1
    steady, app, broken = tenants()
    prober = Prober(steady.host, BACKEND_A[0], port=port)
    async with Kube.connect(env["KUBECONFIG"]) as kube:
        await kube.ensure_ingress_class()
        print(f"steady tenant {steady.ns}: {steady.host}")
        t0 = time.monotonic()
        await add_tenant(kube, steady, services=[("web", BACKEND_A[1])])
        await kube.create_ingress(steady.ns, ingress_manifest("web", steady.host, [("/", "web")]))
        print(
            _row(
                "steady host serves",
                await poll_until(steady.host, "/", port=port, done=serves(BACKEND_A[0]), since=t0),
            )
        )
        prober.start()
        try:
            print(f"new tenant {app.ns}: {app.host}")
            await add_tenant(kube, app, services=[("web", BACKEND_A[1]), ("v2", BACKEND_B[1])])
            before = await http_get(app.host, port=port)
            print(f"  before the Ingress: {before.status}")
            t0 = time.monotonic()
            await kube.create_ingress(app.ns, ingress_manifest("web", app.host, [("/", "web")]))
            print(
                _row(
                    "create Ingress -> first 200",
                    await poll_until(app.host, "/", port=port, done=serves(BACKEND_A[0]), since=t0),
                )
            )
            t0 = time.monotonic()
            await kube.replace_ingress(
                app.ns, ingress_manifest("web", app.host, [("/", "web"), ("/v2", "v2")])
            )
            print(
                _row(
                    "add /v2 -> other Service, first 200 from it",
                    await poll_until(
                        app.host, "/v2", port=port, done=serves(BACKEND_B[0]), since=t0
                    ),
                )
            )
            await add_tenant(kube, broken, services=[("web", BACKEND_A[1])])
            await kube.create_ingress(
                broken.ns,
                ingress_manifest(
                    "bad",
                    broken.host,
                    [("/(unclosed", "web")],
                    path_type="ImplementationSpecific",
                    annotations={USE_REGEX: "true"},
                ),
            )
            await asyncio.sleep(1.0)
            still = [
                await http_get(t.host, p, port=port)
                for t, p in ((app, "/"), (app, "/v2"), (steady, "/"), (broken, "/"))
            ]
            print(
                f"  broken Ingress in {broken.ns}: app / {still[0].status}, app /v2 "
                f"{still[1].status}, steady {still[2].status}, broken host {still[3].status}"
            )
            t0 = time.monotonic()
            await kube.delete_ingress(app.ns, "web")
            print(
                _row(
                    "delete Ingress -> 404",
                    await poll_until(app.host, "/", port=port, done=not_found, since=t0),
                )
            )
        finally:
            await prober.stop()
        print(f"steady tenant prober: {prober.ok} good answers, {len(prober.failures)} failures")
    return 0 if not prober.failures else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.demo", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--keep", action="store_true", help="leave backends and pipeline up")
    args = parser.parse_args(argv)
    backend = NetnsBackend()
    pipeline = Pipeline()
    had_backend = backend.status().up
    started: list[str] = []
    try:
        backend.up()
        started = pipeline.up(say=lambda s: print(f"[pipeline] {s}"))
        return asyncio.run(demo(port=GATEWAY_HTTP_PORT))
    except (BackendError, PipelineError, TimeoutError) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            pipeline.down(started, say=lambda s: print(f"[pipeline] {s}"))
            if not had_backend:
                backend.down()


if __name__ == "__main__":
    sys.exit(main())
