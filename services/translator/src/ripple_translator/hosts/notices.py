"""The host-notice follower: reads `P.hostevents` (`HostRegistry`) and wakes the owned tenants
it names (`Engine.wake`), so a tenant displaced from a host (or free to take one up) is
re-translated by whichever translator owns it (docs/host-ownership.md). A lifecycle
resource."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Protocol

import structlog

from ripple_common.backoff import Backoff
from ripple_translator.hosts.model import HostNotice, HostRegistry

log = structlog.get_logger("ripple_translator.host_notices")
RETRY_MAX_S = 5.0  # a Redis outage: the follower retries at most this far apart


class Wakeable(Protocol):
    def wake(self, notices: Sequence[HostNotice]) -> int:
        """Re-translate the owned tenants the notices name; returns how many."""
        ...


class NoticeFollower:
    def __init__(
        self,
        registry: HostRegistry,
        engine: Wakeable,
        *,
        block_ms: int = 1000,
        retry_s: float = 1.0,
    ) -> None:
        self._registry = registry
        self._engine = engine
        self._block_ms = block_ms
        self._retry_s = retry_s  # the first retry's delay; doubling up to RETRY_MAX_S
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Start at the current end: older notices are covered by the host check each
        # assignment runs (Engine.check_hosts).
        position = await self._registry.notices_position()
        self._task = asyncio.create_task(self._follow(position), name="host notices")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self, position: str) -> None:
        backoff = Backoff(initial=self._retry_s, maximum=max(self._retry_s, RETRY_MAX_S))
        while True:
            try:
                position, notices = await self._registry.read_notices(
                    position, block_ms=self._block_ms
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("host_notices.read_failed", error=repr(exc))
                await asyncio.sleep(backoff.next())
                continue
            backoff.reset()
            if notices:
                woken = self._engine.wake(notices)
                if woken:
                    log.info("host_notices.woke", tenants=woken, notices=len(notices))
