"""Wildcard hosts through a real Envoy: the translator's resources of two tenants and the
gateway's own listener (scope key filter), served by the xds server over Delta ADS.

Tenant `wild` serves `*.foo.test`; tenant `exact` serves `a.foo.test` (only `/only`, which
redirects). The exact host must stay with its owner for every path, a wildcard covers one label,
and a client cannot pick a scope with its own `x-ripple-scope` header."""

from __future__ import annotations

import asyncio
import http.client
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ripple_common.resources import Resource
from ripple_xds.gateway import http_listener
from ripple_xds.server import XdsServer
from ripple_xds.snapshot import SnapshotCache
from tests.conftest import StackEnv
from tests.integration.loopback import free_port
from tests.integration.xds import envoy_resources as er
from tests.integration.xds.test_envoy_ads import DEADLINE_S, _start_envoy, _tail
from tests.unit.translator import k8s
from tests.waiting import eventually


class _Echo(BaseHTTPRequestHandler):
    """Answers 200 with the Host and the scope header as the backend sees them."""

    def do_GET(self) -> None:
        body = f"host={self.headers.get('Host')} scope={self.headers.get('x-ripple-scope')}"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def _get(port: int, path: str, host: str, **headers: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path, headers={"Host": host, **headers})
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def _tenant(tenant: str, host: str, *, backend_port: int, redirect: bool = False) -> list[Resource]:
    ingress = k8s.ingress(
        rules=[k8s.rule(host, k8s.path("/only" if redirect else "/"))],
        annotations=k8s.nginx(permanent_redirect="https://moved.test/") if redirect else None,
    )
    slices = [
        k8s.endpoint_slice(
            endpoints=[k8s.endpoint("127.0.0.1")],
            ports=[{"name": "http", "port": backend_port, "protocol": "TCP"}],
        )
    ]
    t = k8s.run(ingress, services=[k8s.service()], slices=slices, tenant=tenant)
    assert t.hosts == (host,), t.diagnostics
    return list(t.resources)


@pytest.fixture
async def gateway_port(
    stack: StackEnv, echo_port: int, tmp_path: Path
) -> AsyncIterator[tuple[int, Path]]:
    cache = SnapshotCache()
    listen_port = free_port()
    cache.apply(
        upserts=[
            http_listener(address="127.0.0.1", port=listen_port),
            *_tenant("wild", "*.foo.test", backend_port=echo_port),
            *_tenant("exact", "a.foo.test", backend_port=echo_port, redirect=True),
        ]
    )
    server = XdsServer(cache, host="127.0.0.1", port=0, grace_seconds=0.5)
    await server.start()
    config = tmp_path / "envoy.yaml"
    config.write_text(
        er.bootstrap(
            node_id="wildcard-test",
            admin_port=free_port(),
            xds_port=server.port,
            api_type="DELTA_GRPC",
        )
    )
    log = tmp_path / "envoy.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        proc = await asyncio.to_thread(
            _start_envoy, stack["RIPPLE_ENVOY_BIN"], config=config, log=log
        )

        async def ready() -> bool:
            try:
                answer = await asyncio.to_thread(_get, listen_port, "/", "x.foo.test")
            except OSError:
                return False
            return answer[0] == 200

        await eventually(
            ready, within_s=DEADLINE_S, what="x.foo.test served", detail=lambda: _tail(log)
        )
        yield listen_port, log
    finally:
        if proc is not None:
            proc.terminate()
            try:
                await asyncio.to_thread(proc.wait, 20)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait, 5)
        await server.stop()


async def test_wildcard_serves_one_label_and_exact_host_stays_with_its_owner(
    gateway_port: tuple[int, Path],
) -> None:
    port, _ = gateway_port

    async def get(path: str, host: str, **headers: str) -> tuple[int, str]:
        return await asyncio.to_thread(_get, port, path, host, **headers)

    # The wildcard serves any one label, with or without a port, in any case.
    assert await get("/", "x.foo.test") == (200, "host=x.foo.test scope=None")
    assert await get("/p", "y.foo.test:8080") == (200, "host=y.foo.test:8080 scope=None")
    assert (await get("/", "Z.FOO.test"))[0] == 200
    # Tenant `exact` owns a.foo.test: its route answers, and its unrouted paths are its 404s,
    # never the other tenant's wildcard.
    status, _ = await get("/only", "a.foo.test")
    assert status == 301
    assert (await get("/", "a.foo.test"))[0] == 404
    assert (await get("/other", "a.foo.test:80"))[0] == 404
    # One label only; the bare suffix is not covered.
    assert (await get("/", "b.x.foo.test"))[0] == 404
    assert (await get("/", "foo.test"))[0] == 404
    # A client's own scope header is replaced: it cannot reach another scope.
    assert (await get("/", "a.foo.test", **{"x-ripple-scope": "*.foo.test"}))[0] == 404
    assert (await get("/", "nothing.test", **{"x-ripple-scope": "x.foo.test"}))[0] == 404
    assert await get("/", "x.foo.test", **{"x-ripple-scope": "a.foo.test"}) == (
        200,
        "host=x.foo.test scope=None",
    )
