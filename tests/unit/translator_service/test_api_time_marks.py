"""The API's time of a change (the envelope's `api_at_ns`) is carried by the translator into
the change entry's marks (`ripple-api-ns`), beside the observation (issue #15 point 4)."""

from __future__ import annotations

import dataclasses

from ripple_common.store_contract import API_FIELD, OBSERVED_FIELD, Marks
from ripple_translator.engine import Engine
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

API_NS = 1_796_583_600 * 1_000_000_000


async def test_the_write_carries_the_api_time_of_the_oldest_pending_event() -> None:
    store = FakeStore()
    engine = Engine(
        store=store,
        partitions=FakePartitions(),
        config=WriterConfig(retry_initial_s=0.01, retry_max_s=0.02),
    )
    await engine.assign([(TOPIC, 0)])
    await engine.handle([record(0, cluster(ingress_class())), record(1, event("a", service("a")))])
    await engine.settle(timeout_s=5)
    created = dataclasses.replace(
        event("a", ingress("a", "web", "a.example.com")),
        observed_at_ns=API_NS + 9,
        api_at_ns=API_NS,
    )
    await engine.handle([record(2, created)])
    await engine.settle(timeout_s=5)
    fields = store.writes[-1].trace
    assert fields[API_FIELD] == str(API_NS)
    assert fields[OBSERVED_FIELD] == str(API_NS + 9)
    assert Marks.of(fields).api_ns == API_NS
    # An envelope without API time (an older watcher) writes no API mark.
    older = event("a", ingress("a", "two", "two.a.example.com"))
    await engine.handle([record(3, older)])
    await engine.settle(timeout_s=5)
    assert API_FIELD not in store.writes[-1].trace
