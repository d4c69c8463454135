"""Loopback helpers shared by the integration tests: free ports, a tiny HTTP backend, and
HTTP(S) requests with a Host header and SNI (for probing Envoy's routes)."""

from __future__ import annotations

import asyncio
import http.client
import socket
import ssl
from http.server import BaseHTTPRequestHandler


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Backend(BaseHTTPRequestHandler):
    """Answers every GET with 200 and the request's Host."""

    def do_GET(self) -> None:
        body = f"backend host={self.headers.get('Host', '')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def http_get(port: int, path: str, *, host: str = "localhost") -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


async def status(port: int, path: str = "/", *, host: str = "localhost") -> int | None:
    """The status of GET `path` with `host`; None when nothing answers."""
    try:
        code, _ = await asyncio.to_thread(http_get, port, path, host=host)
    except OSError:
        return None
    return code


def https_get(port: int, host: str) -> tuple[bytes, str]:
    """GET / over TLS to 127.0.0.1:`port` with SNI and Host `host`: the server's certificate
    (DER) and the status line."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=3) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    return der, data.split(b"\r\n", 1)[0].decode()
