"""A member loading its partitions for longer than the session timeout is waited for, against
the stack's Kafka (issue #17, found at 200,000 Ingresses): a translator loads a new
partition's tenants inside the assignment callback and rejoins a rebalance only after it.
With aiokafka's default rebalance timeout (the session timeout) a member still loading when
another joined was expelled; the other then got every partition, loaded them as long, was
expelled in turn when the first rejoined, and the two handed all partitions back and forth
for ever (20,000 tenants: every ~50 s for as long as the benchmark ran, nothing served)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from ripple_common.lifecycle import Lifecycle
from ripple_translator.app import start_translator
from ripple_translator.consumer import KafkaEventSource
from ripple_translator.service import ConsumeLoop
from ripple_translator.settings import TranslatorSettings
from ripple_translator.store import PartitionCheckpoint, RedisPartitionStore
from tests.conftest import StackEnv
from tests.integration.translator_service.conftest import PARTITIONS
from tests.integration.translator_service.support import eventually, loop_settings

SESSION_MS = 6000  # the broker's lowest (group.min.session.timeout.ms)
LOAD_S = 9.0  # each partition load: longer than the session timeout


async def start(settings: TranslatorSettings) -> tuple[Lifecycle, ConsumeLoop, KafkaEventSource]:
    lc = Lifecycle()
    loop = await start_translator(lc, settings)
    assert isinstance(loop.source, KafkaEventSource)
    return lc, loop, loop.source


async def test_a_member_loading_longer_than_the_session_is_not_expelled(
    stack: StackEnv, prefix: str, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    loading = asyncio.Event()
    load = RedisPartitionStore.load_partition

    async def slow_load(self: RedisPartitionStore, t: str, p: int) -> PartitionCheckpoint:
        loading.set()
        await asyncio.sleep(LOAD_S)
        return await load(self, t, p)

    monkeypatch.setattr(RedisPartitionStore, "load_partition", slow_load)
    group = f"it-slow-{uuid.uuid4().hex[:8]}"

    def settings() -> TranslatorSettings:
        return loop_settings(
            stack, topic=topic, prefix=prefix, group=group, session_timeout_ms=SESSION_MS
        )

    # A starts alone and gets both partitions; while its assignment callback is still loading
    # them, B joins (start returns once the member's first assignment is loaded).
    a_task = asyncio.create_task(start(settings()))
    await asyncio.wait_for(loading.wait(), 30)
    b_task = asyncio.create_task(start(settings()))
    try:
        _, loop_a, source_a = await asyncio.wait_for(a_task, 120)
        _, loop_b, source_b = await asyncio.wait_for(b_task, 120)

        async def split() -> bool:
            return all(len(loop.engine.owned) == PARTITIONS // 2 for loop in (loop_a, loop_b))

        await eventually(split, timeout_s=60)
        # A: both partitions, then half once B was in; B: half. A member expelled while
        # loading would have been assigned again (and again).
        assert (source_a.assignments, source_b.assignments) == (2, 1)
    finally:
        await asyncio.gather(a_task, b_task, return_exceptions=True)
        for task in (a_task, b_task):
            if not task.cancelled() and task.exception() is None:
                await task.result()[0].aclose()
