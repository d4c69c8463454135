"""Leader election per kind over coordination.k8s.io Leases: one active replica per kind.

`decide` is the pure rule; `Elector` runs it against a LeaseApi (kube.py implements it) and
runs a piece of work only while it holds the lease: when a renewal does not succeed within the
renew deadline the work is cancelled before the lease can expire, so two replicas never publish
the same kind at once (as long as clocks agree to within the lease margin).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


class LeaseConflictError(Exception):
    """Someone else wrote the lease first (create: exists; update: resourceVersion moved)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseRecord:
    name: str
    holder: str | None
    duration_seconds: int
    renew_time: datetime | None = None
    acquire_time: datetime | None = None
    transitions: int = 0
    resource_version: str | None = None


class LeaseApi(Protocol):
    async def get(self, name: str) -> LeaseRecord | None: ...

    async def create(self, record: LeaseRecord) -> LeaseRecord: ...

    async def update(self, record: LeaseRecord) -> LeaseRecord:
        """Compare-and-swap on `record.resource_version`; LeaseConflictError if it moved."""
        ...


class Decision(enum.Enum):
    CREATE = "create"
    RENEW = "renew"
    TAKE_OVER = "take-over"
    WAIT = "wait"


def decide(record: LeaseRecord | None, *, identity: str, now: datetime) -> Decision:
    if record is None:
        return Decision.CREATE
    if record.holder == identity:
        return Decision.RENEW
    if not record.holder or record.renew_time is None:
        return Decision.TAKE_OVER
    if record.renew_time + timedelta(seconds=record.duration_seconds) < now:
        return Decision.TAKE_OVER
    return Decision.WAIT


def utcnow() -> datetime:
    return datetime.now(UTC)


class Elector:
    """Holds one lease for one piece of work."""

    def __init__(
        self,
        api: LeaseApi,
        *,
        name: str,
        identity: str,
        duration_seconds: int,
        renew_interval_seconds: float,
        clock: Clock = utcnow,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if renew_interval_seconds * 2 > duration_seconds:
            raise ValueError("renew at least twice per lease duration")
        self._api = api
        self.name = name
        self.identity = identity
        self._duration = duration_seconds
        self._renew = renew_interval_seconds
        self._clock = clock
        self._sleep = sleep
        self._record: LeaseRecord | None = None
        self.leading = False
        self._log = log.bind(lease=name, identity=identity)

    async def try_acquire(self) -> bool:
        """One attempt to take or renew the lease; True while this replica holds it."""
        now = self._clock()
        try:
            current = await self._api.get(self.name)
            decision = decide(current, identity=self.identity, now=now)
            if decision is Decision.WAIT:
                self._record = current  # held by someone else
                return self._set_leading(False)
            if current is None:
                self._record = await self._api.create(
                    LeaseRecord(
                        name=self.name,
                        holder=self.identity,
                        duration_seconds=self._duration,
                        renew_time=now,
                        acquire_time=now,
                    )
                )
            elif decision is Decision.RENEW:
                self._record = await self._api.update(replace(current, renew_time=now))
            else:
                self._record = await self._api.update(
                    replace(
                        current,
                        holder=self.identity,
                        duration_seconds=self._duration,
                        renew_time=now,
                        acquire_time=now,
                        transitions=current.transitions + 1,
                    )
                )
        except LeaseConflictError:
            return self._set_leading(False)
        return self._set_leading(True)

    async def release(self) -> None:
        """Give the lease up now (on shutdown) so another replica takes over at once."""
        if not self.leading or self._record is None:
            return
        try:
            await self._api.update(replace(self._record, holder=None, renew_time=None))
        except (LeaseConflictError, OSError, TimeoutError) as exc:
            self._log.warning("lease release failed", error=repr(exc))
        self._set_leading(False)

    async def run_while_leading(
        self, work: Callable[[], Awaitable[None]], *, on_lost: Callable[[], None]
    ) -> None:
        """Forever: wait for the lease, run `work` while renewals succeed, cancel it when the
        lease is lost (then call `on_lost`), and wait again. Releases the lease on cancel."""
        try:
            while True:
                while not await self._attempt():
                    await self._sleep(self._renew)
                task = asyncio.ensure_future(work())
                try:
                    await self._renew_until_lost(task)
                finally:
                    if not task.done():
                        task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                failure = task.exception() if task.done() and not task.cancelled() else None
                if failure is not None:
                    raise failure
                on_lost()
        finally:
            await asyncio.shield(self.release())

    async def _attempt(self) -> bool:
        try:
            return await self.try_acquire()
        except (OSError, TimeoutError, ValueError) as exc:
            self._log.warning("lease attempt failed", error=repr(exc))
            return self._set_leading(False)

    async def _renew_until_lost(self, task: asyncio.Future[None]) -> None:
        # Give up leading before the lease could expire: renew deadline = duration - interval.
        deadline = self._duration - self._renew
        last_ok = asyncio.get_running_loop().time()
        while not task.done():
            done, _ = await asyncio.wait({task}, timeout=self._renew)
            if done:
                return
            if await self._attempt():
                last_ok = asyncio.get_running_loop().time()
            elif (
                self._record is None
                or self._record.holder != self.identity
                or asyncio.get_running_loop().time() - last_ok > deadline
            ):
                self._log.warning("lease lost")
                return

    def _set_leading(self, leading: bool) -> bool:
        if leading != self.leading:
            self._log.info("lease acquired" if leading else "lease not held")
        self.leading = leading
        return leading
