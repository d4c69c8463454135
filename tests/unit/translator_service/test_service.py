"""The consume loop with a fake event source: commits follow durable writes, and a stop
drains the writes in flight and commits them before returning."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest
from pydantic import ValidationError

from ripple_translator.app import translate_options, writer_config
from ripple_translator.engine import RESERVED_CONNECTIONS, Engine, Record
from ripple_translator.service import consume
from ripple_translator.settings import TranslatorSettings
from ripple_translator.slot import TopicPartition
from ripple_translator.writer import WriterConfig
from tests.unit.translator_service.support import (
    TOPIC,
    FakePartitions,
    FakeStore,
    cluster,
    event,
    ingress,
    ingress_class,
    record,
    service,
)
from tests.waiting import eventually

TP = (TOPIC, 0)


class FakeSource:
    def __init__(self, store: FakeStore) -> None:
        self.queue: asyncio.Queue[list[Record]] = asyncio.Queue()
        self.commits: list[dict[TopicPartition, int]] = []
        self.durable_at_commit: list[int] = []
        self._store = store

    async def fetch(self, *, timeout_ms: int, max_records: int) -> Sequence[Record]:
        try:
            return await asyncio.wait_for(self.queue.get(), timeout_ms / 1000)
        except TimeoutError:
            return []

    async def commit(self, positions: Mapping[TopicPartition, int]) -> None:
        if positions:
            self.commits.append(dict(positions))
            stored = self._store.tenants.get("a")
            self.durable_at_commit.append(stored.offset.offset if stored and stored.offset else 0)

    async def fence(self) -> None:
        """A fence: an empty batch queued after everything else; once the loop fetched it,
        it has handled every batch before it and made the commit that follows each."""
        await self.queue.put([])
        await eventually(self.queue.empty, within_s=5, what="the fence batch fetched")


class DrainSeen(Engine):
    """The engine, telling when the loop begins to drain it (the loop saw its stop)."""

    def __init__(self, store: FakeStore) -> None:
        super().__init__(store=store, partitions=FakePartitions(), config=WriterConfig())
        self.draining = asyncio.Event()

    async def drain(self, *, timeout_s: float) -> dict[TopicPartition, int]:
        self.draining.set()
        return await super().drain(timeout_s=timeout_s)


async def test_loop_commits_after_writes_and_drains_on_stop() -> None:
    store = FakeStore()
    engine = DrainSeen(store)
    await engine.assign([TP])
    source = FakeSource(store)
    stopping = asyncio.Event()
    loop = asyncio.create_task(
        consume(engine, source, stopping=stopping, poll_ms=20, max_records=100, drain_timeout_s=5)
    )
    await source.queue.put(
        [
            record(0, cluster(ingress_class())),
            record(1, event("a", service("a"))),
            record(2, event("a", ingress("a", "web", "a.example.com"))),
        ]
    )
    await eventually(lambda: source.commits and source.commits[-1] == {TP: 3}, within_s=5)
    # Every commit position is covered by what the store holds (never ahead of a write).
    for commit, durable in zip(source.commits, source.durable_at_commit, strict=True):
        assert commit[TP] <= max(durable, 1)

    store.gate.clear()
    await source.queue.put([record(3, event("a", ingress("a", "two", "two.example.com")))])
    await source.fence()
    assert source.commits[-1] == {TP: 3}
    stopping.set()
    await asyncio.wait_for(engine.draining.wait(), 5)
    assert not loop.done(), "stop waits for the write in flight"
    store.gate.set()
    await asyncio.wait_for(loop, 5)
    assert source.commits[-1] == {TP: 4}
    assert "a/scope/two.example.com" in store.names("a")


def test_settings_become_translate_options() -> None:
    settings = TranslatorSettings(watch_without_class=True, extra_class_names=frozenset({"x"}))
    options = translate_options(settings)
    assert options.classes.watch_without_class
    assert options.classes.extra_class_names == {"x"}


def test_write_bound_and_pool_size_defaults_leave_room() -> None:
    settings = TranslatorSettings()
    assert settings.max_concurrent_writes == 32
    assert settings.redis_max_connections == 64
    assert settings.max_concurrent_writes + RESERVED_CONNECTIONS <= settings.redis_max_connections
    assert writer_config(settings).max_concurrent_writes == 32


def test_write_bound_and_pool_size_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RIPPLE_TRANSLATOR_MAX_CONCURRENT_WRITES", "100")
    monkeypatch.setenv("RIPPLE_TRANSLATOR_REDIS_MAX_CONNECTIONS", "200")
    settings = TranslatorSettings()
    assert (settings.max_concurrent_writes, settings.redis_max_connections) == (100, 200)
    assert writer_config(settings).max_concurrent_writes == 100


@pytest.mark.parametrize(
    ("writes", "pool"),
    [
        (0, 64),  # no write could ever run
        (-1, 64),
        (64, 64),  # the bound must stay below the pool
        (64 - RESERVED_CONNECTIONS + 1, 64),  # and leave the engine's other calls room
        (1, 0),
    ],
)
def test_write_bound_must_fit_the_pool(writes: int, pool: int) -> None:
    with pytest.raises(ValidationError):
        TranslatorSettings(max_concurrent_writes=writes, redis_max_connections=pool)


def test_the_largest_bound_that_fits_is_accepted() -> None:
    settings = TranslatorSettings(
        max_concurrent_writes=64 - RESERVED_CONNECTIONS, redis_max_connections=64
    )
    assert settings.max_concurrent_writes == 64 - RESERVED_CONNECTIONS
