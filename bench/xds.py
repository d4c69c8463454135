"""The xds server at scale: one `python -m ripple_xds` process with 100,000 routes loaded.

Against the local stack's Redis and Envoy binary (`./dev up`):

1. seed Redis (a fresh key prefix) through the translator's store with T tenants x H hosts
   (default 2,000 x 50 = 100,000 hosts, one route each): per tenant one RouteConfiguration
   (H virtual hosts), H scopes, one EDS cluster and its endpoints (a loopback backend);
2. start the xds process: time from start to /readyz 200 (load), its RSS;
3. start a real Envoy (Delta ADS): time until a host of the last tenant answers 200 through
   it (full load into Envoy), Envoy's RSS;
4. route change -> ACK, `--runs` times (default 20): rewrite one tenant's RouteConfiguration
   (a header value on its first route changes) and time from the write until the xds server
   counts Envoy's ACK of it (`ripple_xds_acks_total{mode="delta",type="rds"}`, polled every
   2 ms); the bytes and resources sent per change come from the server's counters;
5. fan-out, `--runs` times: C Delta ADS streams (default 200, over 4 channels, in this
   process) subscribe to one tenant's RouteConfiguration by name; time from the write until
   every stream has received the new version (each ACKs it, as an Envoy would);
6. the server's RSS (VmRSS, VmHWM) at the end.

Medians, p10 and p90 in the harness's format (the RSS column is the xds process's peak);
--json appends the measurements as JSON lines. The Redis keys are deleted at the end.

    UV_NO_SYNC=1 uv run python -m bench.xds              # 2,000 x 50, 20 runs
    UV_NO_SYNC=1 uv run python -m bench.xds --small      # 200 x 50
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import redis.asyncio as aioredis
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2, scoped_route_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from bench.harness import Measurement, summarize
from ripple_common.gateway_contract import SCOPE_FILTER, SERVED_KEY
from ripple_common.resources import Resource, TypeUrl
from ripple_translator.store import KafkaOffset, KeyLayout, RedisTenantStore
from ripple_xds.gateway import ads_config_source
from scripts.stack_env import load_stack_env
from tests.integration.loopback import Backend, free_port
from tests.integration.xds_service.support import (
    Ports,
    XdsProcess,
    start_envoy,
    stop_process,
    xds_settings,
)

CHANNELS = 4
POLL_S = 0.002
WAIT_S = 600.0
RDS = TypeUrl.ROUTE.value
RDS_PUSHES = 'ripple_xds_pushes_total{mode="delta",type="rds"}'
RDS_ACKS = 'ripple_xds_acks_total{mode="delta",type="rds"}'
RDS_NACKS = 'ripple_xds_nacks_total{mode="delta",type="rds"}'


@dataclass(frozen=True, slots=True)
class Sizes:
    tenants: int
    hosts: int
    clients: int
    xds_log_level: str = "WARNING"


@dataclass
class Result:
    measurement: Measurement
    extra: dict[str, float] = field(default_factory=dict)

    def print(self) -> None:
        print(self.measurement.line(), flush=True)
        if self.extra:
            extra = "  ".join(f"{k} {v:,.1f}" for k, v in self.extra.items())
            print(f"{'':40} {extra}", flush=True)


def tenant_name(i: int) -> str:
    return f"bt{i:05d}"


def host_name(tenant: str, j: int) -> str:
    return f"h{j}.{tenant}.bench.example"


def tenant_resources(
    tenant: str, *, hosts: int, backend_port: int, variant: int = 0
) -> list[Resource]:
    """What the translator writes for a tenant whose Ingress routes `hosts` hosts to one
    service (names follow its naming: `<tenant>/...`)."""
    service = f"{tenant}/{tenant}/web:80"
    cluster = cluster_pb2.Cluster(
        name=service,
        type=cluster_pb2.Cluster.EDS,
        eds_cluster_config=cluster_pb2.Cluster.EdsClusterConfig(eds_config=ads_config_source()),
    )
    cluster.connect_timeout.FromMilliseconds(1000)
    cla = endpoint_pb2.ClusterLoadAssignment(cluster_name=service)
    group = cla.endpoints.add()
    group.locality.SetInParent()
    group.locality.zone = "loopback"
    group.load_balancing_weight.value = 1
    address = group.lb_endpoints.add().endpoint.address.socket_address
    address.address, address.port_value = "127.0.0.1", backend_port
    routes_name = f"{tenant}/routes"
    routes = route_pb2.RouteConfiguration(name=routes_name, ignore_port_in_host_matching=True)
    out = [
        Resource(TypeUrl.CLUSTER, service, cluster.SerializeToString(deterministic=True)),
        Resource(TypeUrl.ENDPOINT, service, cla.SerializeToString(deterministic=True)),
    ]
    for j in range(hosts):
        host = host_name(tenant, j)
        vhost = routes.virtual_hosts.add(name=host, domains=[host])
        # The marker the gateway's scope-key filter reads: this exact host is served.
        vhost.metadata.filter_metadata[SCOPE_FILTER].fields[SERVED_KEY].bool_value = True
        route = vhost.routes.add(match=route_components_pb2.RouteMatch(prefix="/"))
        route.route.cluster = service
        if j == 0:
            header = route.response_headers_to_add.add()
            header.header.key, header.header.value = "x-bench-variant", str(variant)
        scope = scoped_route_pb2.ScopedRouteConfiguration(
            name=f"{tenant}/scope/{host}",
            route_configuration_name=routes_name,
            key=scoped_route_pb2.ScopedRouteConfiguration.Key(
                fragments=[scoped_route_pb2.ScopedRouteConfiguration.Key.Fragment(string_key=host)]
            ),
        )
        out.append(
            Resource(TypeUrl.SCOPED_ROUTE, scope.name, scope.SerializeToString(deterministic=True))
        )
    out.append(Resource(TypeUrl.ROUTE, routes_name, routes.SerializeToString(deterministic=True)))
    return out


class Store:
    """The translator's store under a fresh prefix: versions written as the translator does."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.store = RedisTenantStore(client, layout=KeyLayout(prefix=prefix))
        self.versions: dict[str, int] = {}

    async def write(self, tenant: str, resources: list[Resource]) -> None:
        version = self.versions.get(tenant, 0)
        self.versions[tenant] = await self.store.write_version(
            tenant,
            resources,
            (),
            offset=KafkaOffset(topic="bench-xds", partition=0, offset=version + 1),
            expected_version=version,
            trace_fields={},
        )


def rss_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def http_get(port: int, path: str, host: str = "localhost") -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        key, _, value = line.rpartition(" ")
        if key == name:
            return float(value)
    return 0.0


async def until(what: str, check: Callable[[], Awaitable[bool]], *, poll_s: float = 0.05) -> float:
    started = time.perf_counter()
    while not await check():
        if time.perf_counter() - started > WAIT_S:
            raise TimeoutError(f"{what} not within {WAIT_S} s")
        await asyncio.sleep(poll_s)
    return time.perf_counter() - started


class Clients:
    """C Delta ADS streams subscribed by name to one RouteConfiguration (in this process)."""

    def __init__(self, port: int, count: int) -> None:
        self._channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}") for _ in range(CHANNELS)]
        self._count = count
        self._calls: list[Any] = []

    async def open(self, name: str) -> None:
        async def one(i: int) -> Any:
            stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self._channels[i % CHANNELS])
            call = stub.DeltaAggregatedResources()
            await call.write(
                discovery_pb2.DeltaDiscoveryRequest(
                    node=base_pb2.Node(id=f"bench-client-{i}", cluster="bench"),
                    type_url=RDS,
                    resource_names_subscribe=[name],
                )
            )
            await self._ack(call)
            return call

        self._calls = list(await asyncio.gather(*(one(i) for i in range(self._count))))

    @staticmethod
    async def _ack(call: Any) -> int:
        response = await call.read()
        await call.write(
            discovery_pb2.DeltaDiscoveryRequest(type_url=RDS, response_nonce=response.nonce)
        )
        return len(response.resources)

    async def receive_all(self) -> int:
        """Wait until every stream got (and ACKed) one response; the resources received."""
        return sum(await asyncio.gather(*(self._ack(c) for c in self._calls)))

    async def close(self) -> None:
        for call in self._calls:
            call.cancel()
        for channel in self._channels:
            await channel.close()


class Bench:
    """One run of the benchmark: the seeded prefix, the xds process, Envoy, the clients."""

    def __init__(self, sizes: Sizes, env: dict[str, str]) -> None:
        self.sizes = sizes
        self.env = env
        self.prefix = f"bench-xds-{uuid.uuid4().hex[:8]}"
        self.client = aioredis.from_url(env["RIPPLE_REDIS_URL"], decode_responses=False)
        self.store = Store(self.client, self.prefix)
        self.backend = ThreadingHTTPServer(("127.0.0.1", 0), Backend)
        threading.Thread(target=self.backend.serve_forever, daemon=True).start()
        self.backend_port = int(self.backend.server_address[1])
        self.workdir = Path(tempfile.mkdtemp(prefix="bench-xds-"))
        self.ports = Ports(xds=free_port(), http=free_port(), health=free_port(), admin=free_port())
        self.xds: XdsProcess | None = None
        self.envoy: subprocess.Popen[bytes] | None = None
        self.clients: Clients | None = None
        self.figures: dict[str, float] = {}
        self.tenant = tenant_name(sizes.tenants // 2)  # the one that changes

    @property
    def routes(self) -> int:
        return self.sizes.tenants * self.sizes.hosts

    def resources(self, tenant: str, variant: int = 0) -> list[Resource]:
        return tenant_resources(
            tenant, hosts=self.sizes.hosts, backend_port=self.backend_port, variant=variant
        )

    async def seed(self) -> None:
        started = time.perf_counter()
        for i in range(self.sizes.tenants):
            await self.store.write(tenant_name(i), self.resources(tenant_name(i)))
        print(
            f"seeded {self.sizes.tenants} tenants x {self.sizes.hosts} hosts = "
            f"{self.routes:,} routes in {time.perf_counter() - started:.1f} s",
            flush=True,
        )

    async def start_xds(self) -> None:
        settings = xds_settings(
            redis_url=self.env["RIPPLE_REDIS_URL"], prefix=self.prefix, ports=self.ports
        )
        settings |= {"log_level": self.sizes.xds_log_level, "gateway_https_port": "0"}
        xds = self.xds = XdsProcess(settings, log=self.workdir / "xds.log")

        async def ready() -> bool:
            xds.check_alive()
            try:
                return (await asyncio.to_thread(http_get, self.ports.health, "/readyz"))[0] == 200
            except OSError:
                return False

        self.figures["load_s"] = await until("xds ready", ready)
        self.figures["xds_rss_loaded_mib"] = rss_mib(xds.proc.pid)[0]
        print(
            f"xds ready (loaded) in {self.figures['load_s']:.2f} s, "
            f"RSS {self.figures['xds_rss_loaded_mib']:.0f} MiB",
            flush=True,
        )

    async def start_envoy(self) -> None:
        envoy, _ = start_envoy(
            self.env["RIPPLE_ENVOY_BIN"],
            xds_port=self.ports.xds,
            admin_port=self.ports.admin,
            node_id="bench-envoy",
            workdir=self.workdir,
        )
        self.envoy = envoy
        last = host_name(tenant_name(self.sizes.tenants - 1), self.sizes.hosts - 1)

        async def served() -> bool:
            if envoy.poll() is not None:
                raise RuntimeError(f"envoy exited with {envoy.returncode}")
            try:
                code, _ = await asyncio.to_thread(http_get, self.ports.http, "/", last)
            except OSError:
                return False
            return code == 200

        self.figures["envoy_load_s"] = await until("envoy serves the last host", served, poll_s=0.1)
        self.figures["envoy_rss_mib"] = rss_mib(envoy.pid)[0]
        print(
            f"envoy serves every host after {self.figures['envoy_load_s']:.2f} s, "
            f"envoy RSS {self.figures['envoy_rss_mib']:.0f} MiB",
            flush=True,
        )

    async def metrics(self) -> str:
        return (await asyncio.to_thread(http_get, self.ports.health, "/metrics"))[1]

    async def change(self, variant: int) -> float:
        """Write a new version of the tenant's RouteConfiguration; the perf_counter before."""
        routes = [r for r in self.resources(self.tenant, variant) if r.type_url is TypeUrl.ROUTE]
        t0 = time.perf_counter()
        await self.store.write(self.tenant, routes)
        return t0

    async def change_to_ack(self, runs: int) -> Result:
        """Per run: wait until every RDS push so far was answered, write the change, and
        time until the push it causes is ACKed (pushes grew, every push answered)."""
        samples: list[float] = []
        sent_bytes: list[float] = []
        sent_resources: list[float] = []
        for run_no in range(runs):
            await until("every RDS push answered", self._rds_settled)
            before = await self.metrics()
            pushes = metric(before, RDS_PUSHES)

            async def acked(pushes: float = pushes) -> bool:
                text = await self.metrics()
                return metric(text, RDS_PUSHES) > pushes and _settled(text)

            t0 = await self.change(run_no + 1)
            await until("envoy ACKs the change", acked, poll_s=POLL_S)
            samples.append(time.perf_counter() - t0)
            after = await self.metrics()
            sent_bytes.append(_delta(before, after, "ripple_xds_bytes_sent_total"))
            sent_resources.append(_delta(before, after, "ripple_xds_resources_sent_total"))
        assert self.xds is not None
        return Result(
            summarize(
                f"xds change->ACK ({self.routes:,} routes)",
                samples,
                ops=1,
                rss_mib=rss_mib(self.xds.proc.pid)[1],
            ),
            {
                "bytes/change": statistics.median(sent_bytes),
                "resources/change": statistics.median(sent_resources),
                **self.figures,
            },
        )

    async def _rds_settled(self) -> bool:
        return _settled(await self.metrics())

    async def fan_out(self, runs: int) -> Result:
        clients = self.clients = Clients(self.ports.xds, self.sizes.clients)
        await clients.open(f"{self.tenant}/routes")
        samples: list[float] = []
        for run_no in range(runs):
            t0 = await self.change(1000 + run_no)
            received = await asyncio.wait_for(clients.receive_all(), WAIT_S)
            samples.append(time.perf_counter() - t0)
            if received != self.sizes.clients:
                raise RuntimeError(f"{received} resources for {self.sizes.clients} streams")
        assert self.xds is not None
        rss, hwm = rss_mib(self.xds.proc.pid)
        return Result(
            summarize(
                f"xds fan-out to {self.sizes.clients} streams",
                samples,
                ops=self.sizes.clients,
                rss_mib=hwm,
            ),
            {"xds_rss_mib": rss, "xds_hwm_mib": hwm},
        )

    async def close(self) -> None:
        if self.clients is not None:
            await self.clients.close()
        if self.envoy is not None:
            stop_process(self.envoy)
        if self.xds is not None and self.xds.proc.poll() is None:
            await asyncio.to_thread(self.xds.terminate)
        self.backend.shutdown()
        keys = [k async for k in self.client.scan_iter(match=f"{self.prefix}*", count=5000)]
        for i in range(0, len(keys), 5000):
            await self.client.delete(*keys[i : i + 5000])
        await self.client.aclose()
        shutil.rmtree(self.workdir, ignore_errors=True)


async def run(sizes: Sizes, runs: int, json_path: Path | None) -> int:
    bench = Bench(sizes, load_stack_env())
    results: list[Result] = []
    try:
        await bench.seed()
        await bench.start_xds()
        await bench.start_envoy()
        for phase in (bench.change_to_ack, bench.fan_out):
            results.append(await phase(runs))
            results[-1].print()
    finally:
        await bench.close()
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        with json_path.open("a") as fh:
            for result in results:
                record = {
                    **asdict(result.measurement),
                    **result.extra,
                    "tenants": sizes.tenants,
                    "hosts": sizes.hosts,
                    "python": platform.python_version(),
                    "ts": time.time(),
                }
                fh.write(json.dumps(record) + "\n")
    return 0


def _settled(text: str) -> bool:
    """Every Delta RDS response sent was answered (ACK or NACK)."""
    answered = metric(text, RDS_ACKS) + metric(text, RDS_NACKS)
    return metric(text, RDS_PUSHES) == answered


def _delta(before: str, after: str, family: str) -> float:
    return sum(metric(after, n) - metric(before, n) for n in _families(after, family))


def _families(text: str, family: str) -> list[str]:
    return [line.rpartition(" ")[0] for line in text.splitlines() if line.startswith(family + "{")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--tenants", type=int, default=2_000)
    parser.add_argument("--hosts", type=int, default=50, help="hosts (routes) per tenant")
    parser.add_argument("--clients", type=int, default=200, help="streams of the fan-out")
    parser.add_argument("--small", action="store_true", help="200 tenants x 50 hosts")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", type=Path, help="append results as JSON lines to this file")
    parser.add_argument("--xds-log-level", default="WARNING", help="the xds process's log level")
    args = parser.parse_args()
    sizes = Sizes(
        tenants=200 if args.small else args.tenants,
        hosts=args.hosts,
        clients=args.clients,
        xds_log_level=args.xds_log_level,
    )
    return asyncio.run(run(sizes, args.runs, args.json))


if __name__ == "__main__":
    sys.exit(main())
