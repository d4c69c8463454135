from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ripple_common.envelope import EventType
from ripple_common.sealing import Sealer
from ripple_watcher.kinds import INGRESS
from ripple_watcher.ports import ResourceExpiredError
from ripple_watcher.reconcile import Reconciler
from ripple_watcher.tenancy import TenantResolver
from ripple_watcher.watchloop import KindWatcher, WatchOptions
from tests.unit.watcher.fakes import (
    HANG,
    FakeKindApi,
    FakeSleep,
    RecordingSink,
    bookmark,
    event,
    gone,
    ingress,
)
from tests.waiting import eventually


def _watcher(
    api: FakeKindApi, sink: RecordingSink, sleep: FakeSleep, *, idle: float = 5.0
) -> KindWatcher:
    reconciler = Reconciler(
        INGRESS, resolver=TenantResolver(tenant_label=None), sealer=Sealer(b"k" * 32)
    )
    options = WatchOptions(idle_timeout_seconds=idle, page_size=2)
    return KindWatcher(api, reconciler, sink, options=options, sleep=sleep, rng=lambda: 1.0)


@pytest.fixture
async def running() -> AsyncIterator[list[asyncio.Task[None]]]:
    tasks: list[asyncio.Task[None]] = []
    yield tasks
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_watch_starts_from_the_list_resource_version(
    running: list[asyncio.Task[None]],
) -> None:
    api = FakeKindApi(listings=[("100", [ingress("a", "web")])])
    w = _watcher(api, RecordingSink(), FakeSleep())
    running.append(asyncio.create_task(w.run()))
    await eventually(lambda: bool(api.watch_calls), within_s=2)
    assert api.watch_calls == ["100"]


async def test_list_is_paginated_and_framed_by_markers(running: list[asyncio.Task[None]]) -> None:
    items = [ingress("a", f"web-{i}") for i in range(5)]
    sink = RecordingSink()
    w = _watcher(FakeKindApi(listings=[("100", items)]), sink, FakeSleep())
    running.append(asyncio.create_task(w.run()))
    await w.synced.wait()
    assert [e.type for e in sink.envelopes] == [
        EventType.RELIST_STARTED,
        *[EventType.ADDED] * 5,
        EventType.RELIST_FINISHED,
    ]


async def test_stream_that_ends_resumes_from_the_last_bookmark(
    running: list[asyncio.Task[None]],
) -> None:
    api = FakeKindApi(listings=[("100", [])], scripts=[[bookmark("150")], [HANG]])
    w = _watcher(api, RecordingSink(), FakeSleep())
    running.append(asyncio.create_task(w.run()))
    await eventually(lambda: len(api.watch_calls) == 2, within_s=2)
    assert api.watch_calls == ["100", "150"]
    assert api.list_calls == 1


async def test_events_are_published_and_track_the_resource_version(
    running: list[asyncio.Task[None]],
) -> None:
    api = FakeKindApi(
        listings=[("100", [])],
        scripts=[[event("ADDED", ingress("a", "web", rv="101"))], [HANG]],
    )
    sink = RecordingSink()
    w = _watcher(api, sink, FakeSleep())
    running.append(asyncio.create_task(w.run()))
    await eventually(lambda: len(api.watch_calls) == 2, within_s=2)
    assert sink.summary()[-1] == ("ADDED", "a", "web")
    assert api.watch_calls[-1] == "101"


async def test_gone_error_event_relists_and_publishes_deletions(
    running: list[asyncio.Task[None]],
) -> None:
    api = FakeKindApi(
        listings=[
            ("100", [ingress("a", "web"), ingress("a", "old")]),
            ("200", [ingress("a", "web")]),
        ],
        scripts=[[gone()]],
    )
    sink = RecordingSink()
    w = _watcher(api, sink, FakeSleep())
    running.append(asyncio.create_task(w.run()))
    await eventually(lambda: api.list_calls == 2 and len(api.watch_calls) == 2, within_s=2)
    assert sink.summary()[-1] == ("DELETED", "a", "old")
    assert api.watch_calls == ["100", "200"]
    assert w.stats.restart_reasons == {"expired": 1}


async def test_gone_raised_by_the_api_relists(running: list[asyncio.Task[None]]) -> None:
    api = FakeKindApi(listings=[("100", [])], scripts=[[ResourceExpiredError("410")]])
    w = _watcher(api, RecordingSink(), FakeSleep())
    running.append(asyncio.create_task(w.run()))
    await eventually(lambda: api.list_calls == 2, within_s=2)
    assert w.stats.restart_reasons == {"expired": 1}


async def test_idle_stream_is_abandoned_and_relisted(running: list[asyncio.Task[None]]) -> None:
    api = FakeKindApi(listings=[("100", [])], scripts=[[HANG]])
    w = _watcher(api, RecordingSink(), FakeSleep(), idle=0.02)
    running.append(asyncio.create_task(w.run()))
    await eventually(lambda: api.list_calls == 2, within_s=2)
    assert w.stats.restart_reasons["idle"] >= 1


async def test_dropped_connection_backs_off_exponentially(
    running: list[asyncio.Task[None]],
) -> None:
    api = FakeKindApi(
        listings=[("100", [])],
        scripts=[[ConnectionResetError()], [ConnectionResetError()], [ConnectionResetError()]],
    )
    sleep = FakeSleep()
    w = _watcher(api, RecordingSink(), sleep)
    running.append(asyncio.create_task(w.run()))
    await eventually(lambda: len(sleep.delays) == 3, within_s=2)
    assert sleep.delays == pytest.approx([0.2, 0.4, 0.8])


async def test_failed_list_is_retried(running: list[asyncio.Task[None]]) -> None:
    api = FakeKindApi(listings=[OSError("refused"), ("100", [])])
    w = _watcher(api, RecordingSink(), FakeSleep())
    running.append(asyncio.create_task(w.run()))
    await w.synced.wait()
    assert api.list_calls == 2


async def test_failed_publish_makes_the_next_relist_full(
    running: list[asyncio.Task[None]],
) -> None:
    api = FakeKindApi(
        listings=[("100", [])],
        scripts=[[event("ADDED", ingress("a", "web", rv="101"))], [HANG]],
    )
    sink = RecordingSink()
    w = _watcher(api, sink, FakeSleep())
    running.append(asyncio.create_task(w.run()))
    await w.synced.wait()
    sink.fail_next = 1
    await eventually(lambda: api.list_calls == 2, within_s=2)
    await eventually(lambda: len(sink.of_type(EventType.RELIST_FINISHED)) == 2, within_s=2)
    assert w.stats.restart_reasons == {"publish-failed": 1}


async def test_requested_relist_interrupts_the_watch_without_backoff(
    running: list[asyncio.Task[None]],
) -> None:
    api = FakeKindApi(listings=[("100", [])])
    sleep = FakeSleep()
    w = _watcher(api, RecordingSink(), sleep)
    running.append(asyncio.create_task(w.run()))
    await eventually(lambda: len(api.watch_calls) == 1, within_s=2)
    w.request_relist()
    await eventually(lambda: len(api.watch_calls) == 2, within_s=2)
    assert (api.list_calls, sleep.delays) == (2, [])


async def test_absent_kind_is_polled_until_served(running: list[asyncio.Task[None]]) -> None:
    api = FakeKindApi(listings=[("100", [])], available=[False, False, True])
    sleep = FakeSleep()
    w = _watcher(api, RecordingSink(), sleep)
    running.append(asyncio.create_task(w.run()))
    await w.synced.wait()
    assert (api.available_calls, len(sleep.delays)) == (3, 2)


async def test_failed_discovery_is_retried(running: list[asyncio.Task[None]]) -> None:
    api = FakeKindApi(listings=[("100", [])])
    real_available = api.available
    failures = [OSError("refused")]

    async def flaky_available() -> bool:
        if failures:
            raise failures.pop()
        return await real_available()

    api.available = flaky_available  # type: ignore[method-assign]
    sleep = FakeSleep()
    w = _watcher(api, RecordingSink(), sleep)
    running.append(asyncio.create_task(w.run()))
    await w.synced.wait()
    assert sleep.delays == pytest.approx([0.2])


async def test_cancel_stops_the_watcher() -> None:
    api = FakeKindApi(listings=[("100", [])])
    w = _watcher(api, RecordingSink(), FakeSleep())
    task = asyncio.create_task(w.run())
    await eventually(lambda: len(api.watch_calls) == 1, within_s=2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
