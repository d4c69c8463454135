from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ripple_watcher.leases import (
    Decision,
    Elector,
    LeaseConflictError,
    LeaseRecord,
    decide,
)
from tests.waiting import eventually

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class FakeLeaseApi:
    """Leases in memory with resourceVersion compare-and-swap, like the apiserver."""

    def __init__(self) -> None:
        self.leases: dict[str, LeaseRecord] = {}
        self._rv = 0

    def _store(self, record: LeaseRecord) -> LeaseRecord:
        self._rv += 1
        stored = replace(record, resource_version=str(self._rv))
        self.leases[record.name] = stored
        return stored

    async def get(self, name: str) -> LeaseRecord | None:
        return self.leases.get(name)

    async def create(self, record: LeaseRecord) -> LeaseRecord:
        if record.name in self.leases:
            raise LeaseConflictError("exists")
        return self._store(record)

    async def update(self, record: LeaseRecord) -> LeaseRecord:
        current = self.leases.get(record.name)
        if current is None or current.resource_version != record.resource_version:
            raise LeaseConflictError("moved")
        return self._store(record)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _elector(api: FakeLeaseApi, identity: str, clock: Clock, *, renew: float = 1.0) -> Elector:
    return Elector(
        api,
        name="ripple-watcher-ingress",
        identity=identity,
        duration_seconds=10,
        renew_interval_seconds=renew,
        clock=clock,
    )


def _held(holder: str, *, renewed: datetime) -> LeaseRecord:
    return LeaseRecord(name="l", holder=holder, duration_seconds=10, renew_time=renewed)


def test_missing_lease_is_created() -> None:
    assert decide(None, identity="a", now=T0) is Decision.CREATE


def test_own_lease_is_renewed() -> None:
    assert decide(_held("a", renewed=T0), identity="a", now=T0) is Decision.RENEW


def test_fresh_lease_of_another_is_waited_for() -> None:
    now = T0 + timedelta(seconds=9)
    assert decide(_held("b", renewed=T0), identity="a", now=now) is Decision.WAIT


def test_expired_lease_of_another_is_taken_over() -> None:
    now = T0 + timedelta(seconds=11)
    assert decide(_held("b", renewed=T0), identity="a", now=now) is Decision.TAKE_OVER


def test_released_lease_is_taken_over() -> None:
    released = LeaseRecord(name="l", holder=None, duration_seconds=10)
    assert decide(released, identity="a", now=T0) is Decision.TAKE_OVER


async def test_first_replica_leads_and_second_waits() -> None:
    api, clock = FakeLeaseApi(), Clock()
    a, b = _elector(api, "a", clock), _elector(api, "b", clock)
    assert await a.try_acquire() is True
    assert await b.try_acquire() is False


async def test_standby_takes_over_an_expired_lease() -> None:
    api, clock = FakeLeaseApi(), Clock()
    a, b = _elector(api, "a", clock), _elector(api, "b", clock)
    await a.try_acquire()
    clock.now += timedelta(seconds=11)
    assert await b.try_acquire() is True
    lease = api.leases["ripple-watcher-ingress"]
    assert (lease.holder, lease.transitions) == ("b", 1)


async def test_released_lease_goes_to_the_standby_at_once() -> None:
    api, clock = FakeLeaseApi(), Clock()
    a, b = _elector(api, "a", clock), _elector(api, "b", clock)
    await a.try_acquire()
    await a.release()
    assert await b.try_acquire() is True


async def test_losing_a_write_race_means_not_leading() -> None:
    api, clock = FakeLeaseApi(), Clock()
    a = _elector(api, "a", clock)
    await a.try_acquire()
    clock.now += timedelta(seconds=11)
    stale = api.leases["ripple-watcher-ingress"]
    api.leases["ripple-watcher-ingress"] = replace(stale, resource_version="other")
    b = _elector(api, "b", clock)

    async def racing_get(name: str) -> LeaseRecord | None:
        return stale

    api.get = racing_get  # type: ignore[method-assign]
    assert await b.try_acquire() is False


async def test_work_is_cancelled_when_the_lease_is_taken() -> None:
    api, clock = FakeLeaseApi(), Clock()
    a = _elector(api, "a", clock, renew=0.01)
    running = asyncio.Event()
    lost: list[bool] = []

    async def work() -> None:
        running.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(a.run_while_leading(work, on_lost=lambda: lost.append(True)))
    await asyncio.wait_for(running.wait(), 1)
    lease = api.leases["ripple-watcher-ingress"]
    api.leases[lease.name] = replace(lease, holder="b", renew_time=clock.now)
    await eventually(lambda: bool(lost), within_s=2)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert a.leading is False


async def test_cancelled_leader_releases_its_lease() -> None:
    api, clock = FakeLeaseApi(), Clock()
    a = _elector(api, "a", clock, renew=0.01)
    running = asyncio.Event()

    async def work() -> None:
        running.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(a.run_while_leading(work, on_lost=lambda: None))
    await asyncio.wait_for(running.wait(), 1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert api.leases["ripple-watcher-ingress"].holder is None


def test_renewing_less_than_twice_per_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        Elector(
            FakeLeaseApi(), name="l", identity="a", duration_seconds=2, renew_interval_seconds=1.5
        )
