"""Static membership of the translators' consumer group against the stack's Kafka (issue #15
point 2): a translator restarted with the same group instance id (the pod name) within the
session timeout gets its partitions back and the other member is not rebalanced (no
revocation, no new assignment); without an instance id the same restart moves partitions
twice; and a member rejoining (as aiokafka does on a metadata change) rebalances no one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import redis.asyncio as aioredis

from ripple_common.lifecycle import Lifecycle
from ripple_translator.app import start_translator
from ripple_translator.consumer import KafkaEventSource
from ripple_translator.service import ConsumeLoop
from ripple_translator.settings import TranslatorSettings
from tests.conftest import StackEnv
from tests.integration.translator_service.conftest import PARTITIONS
from tests.integration.translator_service.support import eventually, loop_settings


async def start(settings: TranslatorSettings) -> tuple[Lifecycle, ConsumeLoop, KafkaEventSource]:
    lc = Lifecycle()
    loop = await start_translator(lc, settings)
    source = loop.source
    assert isinstance(source, KafkaEventSource)
    return lc, loop, source


def member_settings(
    stack: StackEnv, *, topic: str, prefix: str, group_prefix: str
) -> Callable[[str], TranslatorSettings]:
    """The settings of one group's static members, by instance id."""
    group = f"{group_prefix}-{uuid.uuid4().hex[:8]}"

    def settings(instance: str) -> TranslatorSettings:
        return loop_settings(
            stack, topic=topic, prefix=prefix, group=group, group_instance_id=instance
        )

    return settings


async def test_a_restart_with_the_same_instance_id_keeps_partitions_without_a_rebalance(
    stack: StackEnv, redis_client: aioredis.Redis, prefix: str, topic: str
) -> None:
    settings = member_settings(stack, topic=topic, prefix=prefix, group_prefix="it-static")

    lc_a, loop_a, source_a = await start(settings("translator-a"))
    lc_b: Lifecycle | None = None
    try:

        async def a_alone() -> bool:
            return len(loop_a.engine.owned) == PARTITIONS

        await eventually(a_alone)
        lc_b, loop_b, _ = await start(settings("translator-b"))

        async def split() -> bool:
            return len(loop_a.engine.owned) == 1 and len(loop_b.engine.owned) == 1

        await eventually(split, timeout_s=30)
        before_a = (source_a.assignments, source_a.revocations)
        owned_b = loop_b.engine.owned

        # B restarts (a deploy, a crash in the same pod): well within the session timeout.
        await lc_b.aclose()
        lc_b, loop_b, source_b = await start(settings("translator-b"))

        async def b_back() -> bool:
            return source_b.joined and loop_b.engine.owned == owned_b

        await eventually(b_back, timeout_s=30)
        await asyncio.sleep(2)  # a rebalance, if any, would show by now
        assert loop_b.engine.owned == owned_b
        assert (source_a.assignments, source_a.revocations) == before_a, (
            "the other member was rebalanced"
        )
        assert len(loop_a.engine.owned) == 1
    finally:
        if lc_b is not None:
            await lc_b.aclose()
        await lc_a.aclose()


async def test_a_member_rejoining_does_not_rebalance_the_others(
    stack: StackEnv, redis_client: aioredis.Redis, prefix: str, topic: str
) -> None:
    """A static member rejoins the group whenever its client sees the topic's metadata
    change (a topic just created, a coordinator moved). It must get its assignment back with
    no rebalance of the others: an assignor whose join metadata carries the member's last
    assignment (aiokafka's sticky one) makes every such rejoin "updated metadata" to the
    broker, a new rebalance; two members doing that in turn at start-up under load kept a
    fresh group rebalancing for minutes (1,346 rebalances in 5 minutes, no assignment)."""
    settings = member_settings(stack, topic=topic, prefix=prefix, group_prefix="it-rejoin")

    lc_a, loop_a, source_a = await start(settings("translator-a"))
    lc_b: Lifecycle | None = None
    try:
        lc_b, loop_b, source_b = await start(settings("translator-b"))

        async def split() -> bool:
            return len(loop_a.engine.owned) == 1 and len(loop_b.engine.owned) == 1

        await eventually(split, timeout_s=30)
        await asyncio.sleep(2)  # settled: no rebalance still under way
        # The follower rejoins (a leader's rejoin rebalances by design: it assigns).
        leader, follower = (source_a, source_b) if is_leader(source_a) else (source_b, source_a)
        assert not is_leader(follower)
        before = (leader.assignments, leader.revocations)
        owned = (loop_a.engine.owned, loop_b.engine.owned)
        for _ in range(3):
            # what aiokafka does when it sees the subscribed topics' metadata change
            follower._consumer._coordinator.request_rejoin()
            await asyncio.sleep(1.5)
        assert (loop_a.engine.owned, loop_b.engine.owned) == owned
        assert (leader.assignments, leader.revocations) == before, (
            "a member's rejoin rebalanced the other"
        )
    finally:
        if lc_b is not None:
            await lc_b.aclose()
        await lc_a.aclose()


def is_leader(source: KafkaEventSource) -> bool:
    """The group's leader (aiokafka keeps the group's subscription on the leader only)."""
    return source._consumer._coordinator._group_subscription is not None
