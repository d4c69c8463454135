"""Helpers of the ingress-nginx parity tests (issue #16 points 4, 5, 8): an xds process with
extra settings and a real Envoy for it, an echo backend (answers with the request's headers,
as ingress-nginx's e2e echo server), a TLS backend recording the SNI it is sent, and raw
HTTP(S) requests (optional PROXY protocol header, optional SNI)."""

from __future__ import annotations

import datetime
import socket
import ssl
import subprocess
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.conftest import StackEnv
from tests.integration.xds_service.support import (
    Ports,
    XdsProcess,
    running_envoy,
    running_xds,
    xds_settings,
)
from tests.unit.xds import certs


class EchoHandler(BaseHTTPRequestHandler):
    """200 with `host=<Host>` then one `name=value` line per request header (lower-case
    names), as ingress-nginx's echo backend; the peer address as `peer=`."""

    def do_GET(self) -> None:
        lines = [f"host={self.headers.get('Host', '')}", f"peer={self.client_address[0]}"]
        lines += [f"{k.lower()}={v}" for k, v in self.headers.items()]
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def headers_of(body: str) -> dict[str, str]:
    """The echo backend's `name=value` lines as a dict."""
    return dict(line.split("=", 1) for line in body.splitlines() if "=" in line)


@contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[int]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def echo_backend() -> Iterator[int]:
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)) as port:
        yield port


@dataclass
class TlsBackend:
    port: int
    server_names: list[str | None] = field(default_factory=list)  # SNI of each handshake


@contextmanager
def tls_backend() -> Iterator[TlsBackend]:
    """An HTTPS echo backend on 127.0.0.1 with a self-signed certificate, recording the SNI
    of every handshake (None: the client sent none)."""
    pem = certs.self_signed("backend.test")
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    backend = TlsBackend(port=int(server.server_address[1]))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
        cert.write_bytes(pem.certificate)
        key.write_bytes(pem.private_key)
        context.load_cert_chain(cert, key)

    def record(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        backend.server_names.append(name)

    context.sni_callback = record
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with serving(server):
        yield backend


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: str
    certificate: x509.Certificate | None = None  # over TLS: the server's


def _read_response(sock: socket.socket | ssl.SSLSocket) -> tuple[int, str]:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    return status, body.decode(errors="replace")


def request(
    port: int,
    host: str,
    *,
    headers: Mapping[str, str] | None = None,
    tls: bool = False,
    sni: str | None = None,
    proxy_header: str | None = None,
) -> Answer:
    """GET / with Host `host` (and `headers`) to 127.0.0.1:`port`, `Connection: close`; over
    TLS with SNI `sni` (None: no SNI); after a PROXY protocol v1 line `proxy_header`."""
    lines = ["GET / HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    raw_request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=3) as raw:
        if proxy_header is not None:
            raw.sendall(proxy_header.encode())
        if not tls:
            raw.sendall(raw_request)
            return Answer(*_read_response(raw))
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with context.wrap_socket(raw, server_hostname=sni) as secure:
            der = secure.getpeercert(binary_form=True)
            assert der is not None
            secure.sendall(raw_request)
            status, body = _read_response(secure)
            return Answer(status, body, x509.load_der_x509_certificate(der))


def common_name(certificate: x509.Certificate | None) -> str:
    assert certificate is not None
    return str(certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def still_valid(certificate: x509.Certificate | None) -> bool:
    assert certificate is not None
    return certificate.not_valid_after_utc > datetime.datetime.now(datetime.UTC)


@asynccontextmanager
async def gateway(
    *,
    stack: StackEnv,
    prefix: str,
    ports: Ports,
    tmp_path: Path,
    https_port: int | None = None,
    **settings: str,
) -> AsyncIterator[tuple[XdsProcess, subprocess.Popen[bytes]]]:
    """An xds process with the test's defaults plus `settings` (RIPPLE_XDS_ names, lower
    case), and a real Envoy doing Delta ADS to it (secrets by the development flag)."""
    values = xds_settings(redis_url=stack["RIPPLE_REDIS_URL"], prefix=prefix, ports=ports)
    values["gateway_https_port"] = str(https_port or 0)
    if https_port:
        values["gateway_https_address"] = "127.0.0.1"
    values |= settings
    async with running_xds(values, log=tmp_path / "xds.log", health_port=ports.health) as xds:
        with running_envoy(
            stack["RIPPLE_ENVOY_BIN"],
            xds_port=ports.xds,
            admin_port=ports.admin,
            node_id=f"it-parity-{tmp_path.name}",
            workdir=tmp_path,
        ) as envoy:
            yield xds, envoy
