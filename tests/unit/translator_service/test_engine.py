"""The engine with fake stores: relist semantics, coalescing, isolation of a bad Ingress,
commit positions only after the write, and resuming from stored inputs."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from ripple_common.envelope import EventType
from ripple_common.resources import Resource
from ripple_translator.engine import IO_ATTEMPTS, Engine, Record
from ripple_translator.hosts import HostNotice
from ripple_translator.store.inputs import PartitionCheckpoint
from ripple_translator.writer import WriterConfig
from tests.unit.translator_service.support import (
    TOPIC,
    FakePartitions,
    FakeStore,
    cluster,
    deleted,
    event,
    ingress,
    ingress_class,
    marker,
    record,
    service,
)
from tests.waiting import eventually

TP = (TOPIC, 0)
NGINX = "nginx.ingress.kubernetes.io/"


def make(store: FakeStore | None = None, partitions: FakePartitions | None = None) -> Engine:
    return Engine(
        store=store or FakeStore(),
        partitions=partitions or FakePartitions(),
        config=WriterConfig(retry_initial_s=0.01, retry_max_s=0.02),
    )


async def test_a_drain_whose_write_does_not_finish_commits_nothing_past_it() -> None:
    """Shutdown with a write still held: the positions returned stay below its events (a
    restart replays them), whatever the engine forgets while draining."""
    store = FakeStore()
    engine = make(store)
    await engine.assign([TP])
    await engine.handle(setup_records())
    await engine.settle(timeout_s=5)
    assert await engine.checkpoint() == {TP: 6}
    store.gate.clear()  # the next write never finishes
    await engine.handle([record(6, deleted("a", "Ingress", "a", "two"))])
    await eventually(lambda: engine.writer.in_flight == 1, within_s=5)
    assert await engine.drain(timeout_s=0.2) == {}


def setup_records() -> list[Record]:
    return [
        record(0, cluster(ingress_class())),
        record(1, event("a", service("a"))),
        record(2, event("a", ingress("a", "one", "one.a.example.com"))),
        record(3, event("a", ingress("a", "two", "two.a.example.com"))),
        record(4, event("b", service("b"))),
        record(5, event("b", ingress("b", "web", "b.example.com"))),
    ]


async def test_lone_event_is_written_and_committed_only_after_the_write() -> None:
    store = FakeStore()
    engine = make(store)
    await engine.assign([TP])
    assert await engine.checkpoint() == {}
    await engine.handle(setup_records())
    await engine.settle(timeout_s=5)
    assert await engine.checkpoint() == {TP: 6}
    assert "a/scope/one.a.example.com" in store.names("a")
    assert "b/scope/b.example.com" in store.names("b")

    store.gate.clear()  # hold the next write in flight
    await engine.handle([record(6, deleted("a", "Ingress", "a", "two"))])
    await eventually(lambda: engine.writer.in_flight == 1, within_s=5)
    slot = engine.slot("a")
    assert slot is not None
    assert slot.busy
    assert await engine.checkpoint() == {}, "nothing may be committed while the write is open"
    store.gate.set()
    await engine.settle(timeout_s=5)
    assert await engine.checkpoint() == {TP: 7}
    assert "a/scope/two.a.example.com" not in store.names("a")
    assert store.tenants["a"].offset is not None
    assert store.tenants["a"].offset.offset == 7


async def test_a_burst_is_coalesced_into_one_write_after_the_one_in_flight() -> None:
    store = FakeStore()
    engine = make(store)
    await engine.assign([TP])
    await engine.handle(setup_records()[:2])
    await engine.settle(timeout_s=5)
    writes_before = len(store.writes)

    store.gate.clear()
    await engine.handle([record(2, event("a", ingress("a", "h0", "h0.example.com")))])
    # the lone change is in flight at once (no debounce)
    await eventually(lambda: engine.writer.in_flight == 1, within_s=5)
    for i in range(1, 20):
        await engine.handle([record(2 + i, event("a", ingress("a", f"h{i}", f"h{i}.example.com")))])
    store.gate.set()
    await engine.settle(timeout_s=5)

    writes = store.writes[writes_before:]
    assert len(writes) == 2, [w.offset for w in writes]
    assert writes[0].offset.offset == 3
    assert writes[1].offset.offset == 22
    assert {f"a/scope/h{i}.example.com" for i in range(20)} <= store.names("a")
    assert await engine.checkpoint() == {TP: 22}


async def test_a_bad_ingress_yields_diagnostics_and_does_not_block_other_tenants() -> None:
    store = FakeStore()
    engine = make(store)
    await engine.assign([TP])
    bad = ingress(
        "a", "bad", "bad.example.com", annotations={NGINX + "whitelist-source-range": "x"}
    )  # an invalid value that fails closed (an Error): the Ingress is not served
    with capture_logs() as logs:
        await engine.handle(
            [
                record(0, cluster(ingress_class())),
                record(1, event("a", service("a"))),
                record(2, event("a", bad)),
                record(3, event("a", ingress("a", "good", "good.example.com"))),
                record(4, event("b", service("b"))),
                record(5, event("b", ingress("b", "web", "b.example.com"))),
            ]
        )
        await engine.settle(timeout_s=5)
    lines = {line["tenant"]: line for line in logs if line["event"] == "tenant.write"}
    assert lines["a"]["diagnostics"] == 1
    assert "Ingress a/bad" in lines["a"]["diagnostic_list"][0]
    assert lines["b"]["diagnostics"] == 0
    assert "a/scope/good.example.com" in store.names("a")
    assert "a/scope/bad.example.com" not in store.names("a")
    assert "b/scope/b.example.com" in store.names("b")
    assert await engine.checkpoint() == {TP: 6}


async def test_a_failing_write_is_retried_and_holds_the_commit() -> None:
    store = FakeStore()
    engine = make(store)
    await engine.assign([TP])
    store.fail.append(ConnectionError("redis down"))
    store.gate.clear()
    await engine.handle(setup_records())
    # Only the IngressClass (offset 0, durable in the partition state) is committable.
    assert await engine.checkpoint() == {TP: 1}
    store.gate.set()
    await engine.settle(timeout_s=5)
    assert not store.fail
    assert await engine.checkpoint() == {TP: 6}
    assert "a/scope/one.a.example.com" in store.names("a")


async def test_relist_deletes_what_was_not_seen() -> None:
    store = FakeStore()
    engine = make(store)
    await engine.assign([TP])
    await engine.handle(setup_records())
    await engine.settle(timeout_s=5)
    await engine.handle(
        [
            record(6, marker(EventType.RELIST_STARTED, "Ingress")),
            record(7, event("a", ingress("a", "one", "one.a.example.com"))),
            record(8, marker(EventType.RELIST_FINISHED, "Ingress")),
        ]
    )
    await engine.settle(timeout_s=5)
    assert "a/scope/one.a.example.com" in store.names("a")
    assert "a/scope/two.a.example.com" not in store.names("a")
    # Tenant b listed nothing: its Ingress went away while the watch was down; its Service
    # (another kind) stays in the inputs.
    assert "b/scope/b.example.com" not in store.names("b")
    slot_b = engine.slot("b")
    assert slot_b is not None
    assert ("Service", "b", "web") in slot_b.objects.objects
    assert await engine.checkpoint() == {TP: 9}


async def test_unmatched_relist_end_drops_nothing() -> None:
    store = FakeStore()
    engine = make(store)
    await engine.assign([TP])
    await engine.handle(setup_records())
    await engine.settle(timeout_s=5)
    await engine.handle([record(6, marker(EventType.RELIST_FINISHED, "Ingress"))])
    await engine.settle(timeout_s=5)
    assert "a/scope/two.a.example.com" in store.names("a")


async def test_ingress_class_change_retranslates_the_partition() -> None:
    store = FakeStore()
    engine = make(store)
    await engine.assign([TP])
    await engine.handle(setup_records())
    await engine.settle(timeout_s=5)
    await engine.handle([record(6, cluster(ingress_class(), EventType.DELETED))])
    await engine.settle(timeout_s=5)
    assert store.names("a") == set()
    assert store.names("b") == set()


async def test_restart_resumes_from_stored_inputs_and_skips_covered_events() -> None:
    store, partitions = FakeStore(), FakePartitions()
    first = make(store, partitions)
    await first.assign([TP])
    await first.handle(setup_records())
    await first.settle(timeout_s=5)
    await first.drain(timeout_s=5)
    versions = {t: s.version for t, s in store.tenants.items()}
    writes = len(store.writes)

    second = make(store, partitions)
    assert await second.assign([TP]) == {TP: None}
    slot = second.slot("a")
    assert slot is not None
    assert slot.input_offset == 4
    # Replaying covered events (e.g. from an older commit) changes nothing.
    await second.handle(setup_records())
    await second.settle(timeout_s=5)
    assert len(store.writes) == writes
    assert {t: s.version for t, s in store.tenants.items()} == versions
    # A new event applies on top of the rebuilt objects (one.a still there after restart).
    await second.handle([record(6, event("a", ingress("a", "three", "three.a.example.com")))])
    await second.settle(timeout_s=5)
    assert {
        "a/scope/one.a.example.com",
        "a/scope/two.a.example.com",
        "a/scope/three.a.example.com",
    } <= store.names("a")
    assert store.tenants["a"].version == versions["a"] + 1
    assert await second.checkpoint() == {TP: 7}


async def test_takeover_mid_relist_rewinds_to_its_start() -> None:
    store, partitions = FakeStore(), FakePartitions()
    first = make(store, partitions)
    await first.assign([TP])
    await first.handle(setup_records())
    await first.handle(
        [
            record(6, marker(EventType.RELIST_STARTED, "Ingress")),
            record(7, event("a", ingress("a", "one", "one.a.example.com"))),
        ]
    )
    await first.drain(timeout_s=5)

    second = make(store, partitions)
    assert await second.assign([TP]) == {TP: 6}
    await second.handle(
        [
            record(6, marker(EventType.RELIST_STARTED, "Ingress")),
            record(7, event("a", ingress("a", "one", "one.a.example.com"))),
            record(8, event("b", ingress("b", "web", "b.example.com"))),
            record(9, marker(EventType.RELIST_FINISHED, "Ingress")),
        ]
    )
    await second.settle(timeout_s=5)
    assert "a/scope/two.a.example.com" not in store.names("a")
    assert "a/scope/one.a.example.com" in store.names("a")
    assert "b/scope/b.example.com" in store.names("b")
    assert await second.checkpoint() == {TP: 10}
    assert partitions.partitions[TP].relists == ()


async def test_revoked_partition_stops_intake_and_returns_its_position() -> None:
    store = FakeStore()
    engine = make(store)
    await engine.assign([TP, (TOPIC, 1)])
    await engine.handle(setup_records())
    positions = await engine.revoke([TP], timeout_s=5)
    assert positions == {TP: 6}
    assert engine.owned == {(TOPIC, 1)}
    before = len(store.writes)
    await engine.handle([record(6, event("a", ingress("a", "x", "x.example.com")))])
    await engine.settle(timeout_s=5)
    assert len(store.writes) == before


async def test_invalid_envelope_is_skipped() -> None:
    engine = make()
    await engine.assign([TP])
    with capture_logs() as logs:
        await engine.handle([Record(topic=TOPIC, partition=0, offset=0, value=b"nope")])
    assert any(line["event"] == "event.invalid" for line in logs)
    assert await engine.checkpoint() == {TP: 1}


@pytest.mark.parametrize("tenant", ["Bad Tenant!"])
async def test_untranslatable_tenant_is_logged_and_released(tenant: str) -> None:
    engine = make()
    await engine.assign([TP])
    with capture_logs() as logs:
        await engine.handle([record(0, event(tenant, service("x")))])
        await engine.settle(timeout_s=5)
    assert any(line["event"] == "tenant.untranslatable" for line in logs)
    assert await engine.checkpoint() == {TP: 1}


class FlakyPartitions(FakePartitions):
    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def load_partition(self, topic: str, partition: int) -> PartitionCheckpoint:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("redis away")
        return await super().load_partition(topic, partition)


async def test_store_calls_of_the_engine_are_retried_then_raised() -> None:
    engine = make(partitions=FlakyPartitions(failures=2))
    assert await engine.assign([TP]) == {TP: None}
    engine = make(partitions=FlakyPartitions(failures=IO_ATTEMPTS))
    with pytest.raises(ConnectionError):
        await engine.assign([TP])


async def test_a_version_conflict_reloads_the_baseline_and_writes_on_top() -> None:
    store = FakeStore()
    engine = make(store)
    await engine.assign([TP])
    await engine.handle(setup_records())
    await engine.settle(timeout_s=5)
    # Another writer moved tenant a on (e.g. during a takeover race).
    store.tenants["a"].version += 5
    with capture_logs() as logs:
        await engine.handle([record(6, event("a", ingress("a", "x", "x.example.com")))])
        await engine.settle(timeout_s=5)
    assert any(line["event"] == "tenant.conflict" for line in logs)
    assert "a/scope/x.a.example.com" not in store.names("a")
    assert "a/scope/x.example.com" in store.names("a")
    assert await engine.checkpoint() == {TP: 7}


async def test_trace_context_continues_from_kafka_headers_into_the_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    from ripple_translator import writer

    monkeypatch.setattr(writer, "tracer", TracerProvider().get_tracer("test"))
    store = FakeStore()
    engine = make(store)
    await engine.assign([TP])
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = [("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01".encode())]
    await engine.handle(
        [
            record(0, cluster(ingress_class())),
            record(1, event("a", service("a")), headers=headers),
            record(2, event("a", ingress("a", "web", "a.example.com")), headers=headers),
        ]
    )
    await engine.settle(timeout_s=5)
    traceparent = store.writes[-1].trace["traceparent"]
    assert traceparent.split("-")[1] == trace_id
    assert traceparent.split("-")[2] != "00f067aa0ba902b7"  # a child span of the event's


async def test_a_coalesced_write_is_a_child_of_the_first_event_and_links_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from ripple_translator import writer

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(writer, "tracer", provider.get_tracer("test"))
    store = FakeStore()
    engine = make(store)
    await engine.assign([TP])
    first, second = "4bf92f3577b34da6a3ce929d0e0e4736", "5bf92f3577b34da6a3ce929d0e0e4737"
    await engine.handle(
        [
            record(0, cluster(ingress_class())),
            record(1, event("a", service("a")), headers=[_traceparent(first, "00f067aa0ba902b7")]),
            record(
                2,
                event("a", ingress("a", "web", "a.example.com")),
                headers=[_traceparent(second, "00f067aa0ba902b8")],
            ),
        ]
    )
    await engine.settle(timeout_s=5)
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "translator.write"]
    assert span.parent is not None
    assert (format(span.parent.trace_id, "032x"), format(span.parent.span_id, "016x")) == (
        first,
        "00f067aa0ba902b7",
    )
    assert [
        (format(lk.context.trace_id, "032x"), format(lk.context.span_id, "016x"))
        for lk in span.links
    ] == [(second, "00f067aa0ba902b8")]
    assert span.attributes is not None
    assert span.attributes["ripple.tenant"] == "a"
    assert span.attributes["ripple.events"] == 2
    assert span.attributes["ripple.version"] == store.tenants["a"].version
    assert store.writes[-1].trace["traceparent"].split("-")[1:3] == [
        first,
        format(span.context.span_id, "016x"),
    ]


async def test_a_write_without_trace_context_starts_its_own_trace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from ripple_translator import writer

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(writer, "tracer", provider.get_tracer("test"))
    engine = make(FakeStore())
    await engine.assign([TP])
    headers = [_traceparent("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")]
    await engine.handle([record(0, event("a", service("a")), headers=headers)])
    await engine.settle(timeout_s=5)
    await engine.handle([record(1, event("a", ingress("a", "web", "a.example.com")))])
    await engine.settle(timeout_s=5)
    writes = [s for s in exporter.get_finished_spans() if s.name == "translator.write"]
    assert len(writes) == 2
    assert writes[0].parent is not None
    assert writes[1].parent is None  # not the previous event's trace
    assert not writes[1].links


def _traceparent(trace_id: str, span_id: str) -> tuple[str, bytes]:
    return ("traceparent", f"00-{trace_id}-{span_id}-01".encode())


async def test_stored_resources_of_an_older_release_are_rewritten_after_assignment() -> None:
    store, partitions = FakeStore(), FakePartitions()
    first = make(store, partitions)
    await first.assign([TP])
    await first.handle(setup_records())
    await first.settle(timeout_s=5)
    await first.drain(timeout_s=5)
    # What an older release (or a hand edit) left for tenant a: one resource differs.
    key = next(k for k in store.tenants["a"].resources if k[1] == "a/routes")
    good = store.tenants["a"].resources[key]
    store.tenants["a"].resources[key] = Resource(key[0], key[1], good.body + b"\x00")
    versions = {t: s.version for t, s in store.tenants.items()}

    second = make(store, partitions)
    with capture_logs() as logs:
        await second.assign([TP])
        assert await second.settle(timeout_s=5)
    assert store.tenants["a"].resources[key].body == good.body
    assert store.tenants["a"].version == versions["a"] + 1
    assert store.tenants["b"].version == versions["b"]  # up to date: not rewritten
    outdated = [e for e in logs if e["event"] == "translation.outdated"]
    assert [e["tenants"] for e in outdated] == [["a"]]
    assert await second.checkpoint() in ({}, {TP: 6})  # the stored position, no further


async def test_a_write_scheduled_after_the_revocation_writes_nothing() -> None:
    """A late wake-up of a revoked tenant (a host notice or the outdated check racing the
    revocation) used to translate it without its partition's IngressClasses, i.e. to nothing,
    and wipe its stored resources (found by the probe benchmark on a rebalance)."""
    store = FakeStore()
    engine = make(store)
    await engine.assign([TP])
    await engine.handle(setup_records())
    await engine.settle(timeout_s=5)
    slot = engine.slot("a")
    assert slot is not None
    stored = dict(store.tenants["a"].resources)
    version = store.tenants["a"].version
    await engine.revoke([TP], timeout_s=5)

    engine.writer.applied(slot, 5)  # what a stale wake-up does
    assert await engine.writer.wait([slot], timeout_s=5)  # the write ran (and wrote nothing)

    assert store.tenants["a"].version == version
    assert store.tenants["a"].resources == stored
    assert engine.wake([HostNotice(tenant="a", host="one.a.example.com", why="test")]) == 0
