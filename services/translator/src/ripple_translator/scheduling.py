"""Which dirty tenant writes next, and how soon a heavy tenant may write again (pure: no I/O,
no clock of its own; the writer passes the time and the costs it measured).

`FairQueue` is start-time fair queueing over tenants: each tenant has a virtual finish time,
the virtual time of its last write's start plus that write's cost (its duration in seconds).
A tenant joining the queue starts at max(virtual now, its finish); the waiting tenant with the
smallest start goes first (ties: first come). A tenant whose writes are expensive (a flood:
thousands of objects re-translated per write) therefore waits behind every tenant whose writes
are cheap, however often it asks, and a tenant that was idle starts at the virtual now: its
single change never queues behind another tenant's backlog. Each tenant is in the queue at
most once (the writer runs one write per tenant at a time and coalesces what arrives meanwhile).

`WriteSlots` grants the writer's bounded write slots in `FairQueue` order (the only part
here that waits: an asyncio future per waiting tenant).

`pace_after` bounds the share of the CPU one tenant's writes take: after a write of cost c the
tenant's next write starts no sooner than `factor * c` later (writes cheaper than `min_cost_s`
are not paced: a lone change is never delayed). With factor 1 a flooding tenant gets at most
half of the time, its batches grow with its translation cost (fewer, larger writes: the
re-translation of a big tenant is not paid per event), and the other half is left to others.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass, field

# Pops between two sweeps of the finish times that no longer matter (O(tenants) each).
PRUNE_EVERY = 1024


@dataclass(slots=True)
class FairQueue:
    """Tenants waiting for a write slot, served by start-time fair queueing."""

    _heap: list[tuple[float, int, str]] = field(default_factory=list)
    _queued: dict[str, float] = field(default_factory=dict)
    _finish: dict[str, float] = field(default_factory=dict)
    _started: dict[str, float] = field(default_factory=dict)
    _now: float = 0.0
    _pops: int = 0
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    def __len__(self) -> int:
        return len(self._queued)

    def __contains__(self, tenant: object) -> bool:
        return tenant in self._queued

    @property
    def virtual_now(self) -> float:
        return self._now

    def push(self, tenant: str) -> None:
        """`tenant` waits for a write slot (at most once at a time)."""
        if tenant in self._queued:
            raise ValueError(f"tenant {tenant!r} is already queued")
        start = max(self._now, self._finish.get(tenant, 0.0))
        self._queued[tenant] = start
        heapq.heappush(self._heap, (start, next(self._seq), tenant))

    def pop(self) -> str:
        """The tenant to write next; its write starts now (virtually)."""
        while self._heap:
            start, _, tenant = heapq.heappop(self._heap)
            if self._queued.get(tenant) != start:
                continue  # withdrawn (and possibly queued again later)
            del self._queued[tenant]
            self._now = max(self._now, start)
            self._started[tenant] = start
            self._forget_idle()
            return tenant
        raise IndexError("no tenant is waiting")

    def withdraw(self, tenant: str) -> None:
        """`tenant` no longer waits (its waiter was cancelled)."""
        self._queued.pop(tenant, None)

    def charge(self, tenant: str, cost: float) -> None:
        """The write of `tenant` popped last took `cost` (seconds)."""
        if cost < 0:
            raise ValueError(f"a cost cannot be negative: {cost}")
        start = self._started.pop(tenant, self._now)
        self._finish[tenant] = start + cost

    def _forget_idle(self) -> None:
        """Finish times at or before the virtual now change nothing (a tenant starts at the
        virtual now anyway): drop them, now and then, so tenants gone idle cost no memory."""
        self._pops += 1
        if self._pops % PRUNE_EVERY == 0:
            self._finish = {t: f for t, f in self._finish.items() if f > self._now}


def pace_after(cost_s: float, *, factor: float, min_cost_s: float) -> float:
    """How long (s) a tenant waits after a write that took `cost_s` before its next write."""
    if factor < 0 or min_cost_s < 0:
        raise ValueError("the pacing factor and its threshold cannot be negative")
    if cost_s < min_cost_s:
        return 0.0
    return cost_s * factor


class WriteSlots:
    """`capacity` write slots, granted to waiting tenants in `FairQueue` order; each tenant
    releases its slot with the cost (seconds) of what it did with it."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a writer needs at least one write slot")
        self._free = capacity
        self._queue = FairQueue()
        self._waiters: dict[str, asyncio.Future[None]] = {}

    async def acquire(self, tenant: str) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[tenant] = waiter
        self._queue.push(tenant)
        self._grant()
        try:
            await waiter
        except asyncio.CancelledError:
            if self._waiters.get(tenant) is waiter:
                del self._waiters[tenant]
                self._queue.withdraw(tenant)
            elif waiter.done() and not waiter.cancelled():
                self.release(tenant, cost=0.0)  # granted as it was cancelled
            raise

    def release(self, tenant: str, *, cost: float) -> None:
        self._queue.charge(tenant, max(cost, 0.0))
        self._free += 1
        self._grant()

    def _grant(self) -> None:
        while self._free and len(self._queue):
            tenant = self._queue.pop()
            waiter = self._waiters.pop(tenant)
            if waiter.done():  # cancelled, its acquire not yet resumed: no slot taken
                continue
            self._free -= 1
            waiter.set_result(None)
