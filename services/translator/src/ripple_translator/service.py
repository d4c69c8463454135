"""The consume loop: fetch records, hand them to the engine (which schedules tenant writes)
and commit the positions the engine reports durable. SIGTERM stops intake (no further
fetch), lets every write in flight finish and commits a last time. The wiring around it is
`app.py`."""

from __future__ import annotations

import asyncio

import structlog

from ripple_translator.engine import Engine
from ripple_translator.ports import EventSource
from ripple_translator.settings import TranslatorSettings

log = structlog.get_logger("ripple_translator.service")
STOP_GRACE_S = 5.0


async def consume(
    engine: Engine,
    source: EventSource,
    *,
    stopping: asyncio.Event,
    poll_ms: int,
    max_records: int,
    drain_timeout_s: float,
) -> None:
    """Fetch, apply, commit what is durable; on `stopping`, drain and commit a last time."""
    try:
        while not stopping.is_set():
            records = await source.fetch(timeout_ms=poll_ms, max_records=max_records)
            if records:
                await engine.handle(records)
            await source.commit(await engine.checkpoint())
    finally:
        positions = await engine.drain(timeout_s=drain_timeout_s)
        await source.commit(positions)


class ConsumeLoop:
    """The consume loop as a lifecycle resource: `stop` ends intake and drains."""

    def __init__(self, engine: Engine, source: EventSource, settings: TranslatorSettings) -> None:
        self._engine = engine
        self._source = source
        self._settings = settings
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def source(self) -> EventSource:
        return self._source

    @property
    def task(self) -> asyncio.Task[None]:
        assert self._task is not None
        return self._task

    async def start(self) -> None:
        self._task = asyncio.create_task(
            consume(
                self._engine,
                self._source,
                stopping=self._stopping,
                poll_ms=self._settings.poll_ms,
                max_records=self._settings.max_records,
                drain_timeout_s=self._settings.drain_timeout_s,
            ),
            name="consume",
        )

    async def stop(self) -> None:
        """Stop intake and drain. A loop that does not see the stop in time (a fetch held by a
        Kafka rebalance that does not finish) is cancelled, which still drains and commits
        (`consume`'s finally): shutdown is bounded."""
        self._stopping.set()
        if self._task is None:
            return
        grace_s = self._settings.poll_ms / 1000 + self._settings.drain_timeout_s + STOP_GRACE_S
        done, _ = await asyncio.wait({self._task}, timeout=grace_s)  # `serve` raises failures
        if not done:
            log.warning("consume loop did not stop in time: cancelling it", waited_s=grace_s)
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=self._settings.drain_timeout_s + STOP_GRACE_S)
