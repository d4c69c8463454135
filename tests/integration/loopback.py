"""Loopback helpers shared by the integration tests: free ports, a tiny HTTP backend and
plain HTTP requests with a Host header (for probing Envoy's routes)."""

from __future__ import annotations

import asyncio
import http.client
import socket
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
