"""Helpers of the ingress-nginx parity tests (test_nginx_parity_*.py): an echo backend, one
tenant's Ingresses translated and written to Redis, and raw HTTP requests through Envoy.

Each test writes tenant A's resources (the `xds` fixture's tenant) with its own Ingresses,
whose Services point at an echo backend on loopback, waits until the hosts serve, then sends
the requests ingress-nginx's e2e tests send and expects their answers."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ripple_translator.store import RedisTenantStore
from ripple_translator.translate import Severity, Translation
from tests.integration.xds_service.support import A, Ports, XdsProcess, until, write_tenant
from tests.unit.translator import k8s


class Echo(BaseHTTPRequestHandler):
    """Answers any method with a JSON echo of the request (method, path, headers) and header
    X-Backend (the server's name); ``/status/NNN`` answers NNN."""

    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        code = 200
        if self.path.startswith("/status/"):
            code = int(self.path.split("/")[2][:3])
        body = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
            }
        ).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Backend", getattr(self.server, "name", "echo"))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _answer  # noqa: N815

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def echo_backend(name: str = "echo") -> Iterator[int]:
    """An Echo server on 127.0.0.1; yields its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    server.name = name  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def services(ports: Mapping[str, int]) -> tuple[list[Any], list[Any]]:
    """Services (port 80, named http) and EndpointSlices of tenant A: name -> backend port."""
    svcs = [k8s.service(name, namespace=A) for name in ports]
    slices = [
        k8s.endpoint_slice(
            f"{name}-x",
            service_name=name,
            endpoints=[k8s.endpoint("127.0.0.1")],
            ports=[{"name": "http", "port": port, "protocol": "TCP"}],
            namespace=A,
        )
        for name, port in ports.items()
    ]
    return svcs, slices


def ingress(
    name: str,
    host: str | None,
    *,
    path: str = "/",
    service: str = "web",
    tls: bool = False,
    **annotations: str,
) -> Any:
    return k8s.ingress(
        name,
        rules=[k8s.rule(host, k8s.path(path, service=service))],
        annotations=k8s.nginx(**annotations),
        namespace=A,
        tls=[{"hosts": [host], "secretName": f"{name}-tls"}] if tls and host else (),
    )


def translate(*ingresses: Any, backends: Mapping[str, int]) -> Translation:
    svcs, slices = services(backends)
    return k8s.run(*ingresses, services=svcs, slices=slices, tenant=A)


def errors(t: Translation) -> list[str]:
    return [d.message for d in t.diagnostics if d.severity is Severity.ERROR]


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]  # lowercased names; repeated headers joined with ", "
    body: bytes
    set_cookies: tuple[str, ...] = ()

    def cookies(self) -> str:
        """A Cookie header with every cookie the answer set (name=value)."""
        return "; ".join(c.split(";")[0] for c in self.set_cookies)

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    port: int,
    host: str,
    *,
    method: str = "GET",
    path: str = "/",
    headers: Mapping[str, str] | None = None,
) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, headers={"Host": host, **(headers or {})})
        resp = conn.getresponse()
        body = resp.read()
        merged: dict[str, str] = {}
        for k, v in resp.getheaders():
            key = k.lower()
            merged[key] = f"{merged[key]}, {v}" if key in merged else v
        cookies = tuple(v for k, v in resp.getheaders() if k.lower() == "set-cookie")
        return Answer(resp.status, merged, body, cookies)
    finally:
        conn.close()


class Gateway:
    """Requests through the test Envoy's plain-HTTP listener."""

    def __init__(self, ports: Ports) -> None:
        self.port = ports.http

    async def __call__(
        self,
        host: str,
        path: str = "/",
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        return await asyncio.to_thread(
            request, self.port, host, method=method, path=path, headers=headers
        )


async def serve(
    store: RedisTenantStore,
    xds: XdsProcess,
    gateway: Gateway,
    translation: Translation,
    *,
    ready: Sequence[tuple[str, str, int]],
) -> None:
    """Write tenant A's translation, then wait until each (host, path) answers its status."""
    await write_tenant(store, A, list(translation.resources))
    for host, path, code in ready:

        async def check(host: str = host, path: str = path, code: int = code) -> bool:
            xds.check_alive()
            try:
                return (await gateway(host, path)).status == code
            except OSError:
                return False

        await until(f"{host}{path} -> {code}", check, logs=[xds.log])
