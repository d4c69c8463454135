"""A minimal HTTP/1.0 GET server for health, readiness and Prometheus metrics, shared by the
services (asyncio streams, no framework). Routes are pure functions returning (status, body);
`PromText` (with `Histogram`) renders the Prometheus text format for every service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence

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


class Histogram:
    """A Prometheus histogram's state: per-bucket counts (not cumulative; the last bucket is
    +Inf), the sum and the count of the observed values."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        index = next((i for i, b in enumerate(self.bounds) if value <= b), len(self.bounds))
        self.counts[index] += 1
        self.sum += value
        self.count += 1


class PromText:
    """Prometheus text exposition, every metric name prefixed with `<namespace>_`."""

    def __init__(self, namespace: str) -> None:
        self._prefix = f"{namespace}_"
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {self._prefix}{name} {help_text}")
        self.lines.append(f"# TYPE {self._prefix}{name} {kind}")

    def sample(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        rendered = ",".join(f'{k}="{prom_escape(v)}"' for k, v in (labels or {}).items())
        suffix = f"{{{rendered}}}" if rendered else ""
        self.lines.append(f"{self._prefix}{name}{suffix} {prom_number(value)}")

    def single(self, name: str, kind: str, help_text: str, value: float) -> None:
        """A family with one unlabelled sample."""
        self.family(name, kind, help_text)
        self.sample(name, value)

    def histogram_samples(
        self, name: str, hist: Histogram, labels: Mapping[str, str] | None = None
    ) -> None:
        """The samples of one labelled series of a histogram family (cumulative buckets)."""
        cumulative = 0
        for bound, count in zip((*hist.bounds, None), hist.counts, strict=True):
            cumulative += count
            le = "+Inf" if bound is None else prom_number(bound)
            self.sample(f"{name}_bucket", cumulative, {**(labels or {}), "le": le})
        self.sample(f"{name}_sum", hist.sum, labels)
        self.sample(f"{name}_count", hist.count, labels)

    def histogram(self, name: str, help_text: str, hist: Histogram) -> None:
        self.family(name, "histogram", help_text)
        self.histogram_samples(name, hist)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


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
