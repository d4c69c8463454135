"""A minimal HTTP/1.0 GET server for health, readiness and Prometheus metrics, shared by the
services (asyncio streams, no framework). Routes are pure functions returning (status, body);
`prom_escape` and `prom_number` help render the Prometheus text format."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping

import structlog

log = structlog.get_logger(__name__)

Route = Callable[[], tuple[int, str]]
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def prom_number(value: float) -> str:
    """Integers exactly (counters of bytes outgrow `:g`'s six digits), floats as repr."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def prom_escape(value: str) -> str:
    """A Prometheus label value, escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class HealthServer:
    """A minimal HTTP/1.0 GET server for probes and scrapes (start/stop fit the lifecycle)."""

    def __init__(self, *, host: str, port: int, routes: Mapping[str, Route]) -> None:
        self._host = host
        self._port = port
        self._routes = dict(routes)
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self._port)
        log.info("health endpoint listening", host=self._host, port=self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                request = await reader.readline()
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
            status, body = self.respond(request.decode(errors="replace"))
            payload = body.encode()
            head = (
                f"HTTP/1.0 {status} {_REASONS.get(status, 'Status')}\r\n"
                "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + payload)
            await writer.drain()
        except (TimeoutError, ConnectionError) as exc:
            log.debug("health request dropped", error=repr(exc))
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def respond(self, request_line: str) -> tuple[int, str]:
        """Status and body for one request line (`GET /path HTTP/1.1`)."""
        method, _, rest = request_line.partition(" ")
        path = rest.split(" ", 1)[0].split("?", 1)[0]
        route = self._routes.get(path)
        if method != "GET":
            return 405, "GET only\n"
        if route is None:
            return 404, "not found\n"
        return route()
