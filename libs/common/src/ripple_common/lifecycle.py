"""Service lifecycle: resources close in reverse start order; SIGTERM/SIGINT stop intake.

async def serve(lc: Lifecycle) -> None:
    producer = await lc.start(make_producer(), name="kafka producer")
    ...
    await lc.stopping.wait()

run(serve)
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Protocol, TypeVar

import structlog

log = structlog.get_logger(__name__)


class Closeable(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


C = TypeVar("C", bound=Closeable)


class Lifecycle:
    def __init__(self) -> None:
        self.stopping = asyncio.Event()
        self._stack = AsyncExitStack()

    async def start(self, resource: C, *, name: str) -> C:
        """Start `resource` now and stop it, in reverse order, when the service ends."""
        await resource.start()
        log.info("started", component=name)

        async def _stop() -> None:
            log.info("stopping", component=name)
            await resource.stop()

        self._stack.push_async_callback(_stop)
        return resource

    def on_close(self, fn: Callable[[], Awaitable[None]]) -> None:
        self._stack.push_async_callback(fn)

    def request_stop(self) -> None:
        self.stopping.set()

    async def aclose(self) -> None:
        await self._stack.aclose()


async def run_until_stopped(serve: Callable[[Lifecycle], Awaitable[None]]) -> None:
    """Run `serve` with signal handlers installed; close everything it started on exit."""
    lc = Lifecycle()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lc.request_stop)
    try:
        await serve(lc)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await lc.aclose()


def run(serve: Callable[[Lifecycle], Awaitable[None]]) -> None:
    asyncio.run(run_until_stopped(serve))
