"""The offline replay against the translator's engine (in-memory stores): same events, same
resources, byte for byte; steps, versions, cluster-scoped events and re-lists."""

from __future__ import annotations

from ripple_cli.replay.run import PartitionReplay
from ripple_common.envelope import Envelope, EventType
from ripple_common.resources import TypeUrl
from ripple_translator.engine import Engine
from ripple_translator.hosts import HostPolicy
from ripple_translator.translate import TranslateOptions
from ripple_translator.writer import WriterConfig
from tests.unit.translator_service.support import (
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

A, B = "team-a", "team-b"


def history() -> list[Envelope]:
    return [
        cluster(ingress_class()),
        event(A, service(A)),
        event(B, service(B)),
        event(A, ingress(A, "web", "web.a.test")),
        event(B, ingress(B, "web", "web.b.test")),
        event(A, ingress(A, "api", "api.a.test")),
        event(A, ingress(A, "web", "www.a.test"), type_=EventType.MODIFIED),
        event(A, ingress(A, "old", "old.a.test")),
        deleted(A, "Ingress", A, "old"),
        cluster(ingress_class(controller="someone-else"), EventType.MODIFIED),
        cluster(ingress_class()),
        marker(EventType.RELIST_STARTED, "Ingress"),
        event(A, ingress(A, "web", "www.a.test")),
        marker(EventType.RELIST_FINISHED, "Ingress"),  # drops "api", deleted meanwhile
        event(A, ingress(A, "late", "late.a.test")),
    ]


def replay(envelopes: list[Envelope], *, each_step: bool = True) -> PartitionReplay:
    run = PartitionReplay([A], options=TranslateOptions(), each_step=each_step)
    for offset, env in enumerate(envelopes):
        run.apply(env, offset=offset)
    return run


async def test_replay_equals_what_the_translator_engine_stores() -> None:
    envelopes = history()
    store = FakeStore()
    engine = Engine(
        store=store, partitions=FakePartitions(), config=WriterConfig(retry_initial_s=0.01)
    )
    await engine.assign([("events", 0)])
    for offset, env in enumerate(envelopes):
        # One record at a time, settled: every intermediate state is written and compared too.
        await engine.handle([record(offset, env)])
        assert await engine.settle(timeout_s=5)
        stored = dict(store.tenants[A].resources) if A in store.tenants else {}
        replayed = replay(envelopes[: offset + 1]).resources(A)
        assert replayed == stored, f"after offset {offset}"
    assert len(store.tenants[A].resources) > 0


def test_steps_count_versions_and_show_changes() -> None:
    run = PartitionReplay([A], options=TranslateOptions())
    assert run.apply(cluster(ingress_class()), offset=0)[0].inputs_changed
    assert run.apply(event(B, service(B)), offset=1) == []  # another tenant: no step
    step = run.apply(event(A, ingress(A, "web", "web.a.test")), offset=2)[0]
    assert step.version == 1
    names = {(c.type_url, c.name) for c in step.changes}
    assert (TypeUrl.SCOPED_ROUTE, f"{A}/scope/web.a.test") in names
    assert all(c.before is None for c in step.changes)
    again = run.apply(event(A, ingress(A, "web", "web.a.test")), offset=3)[0]
    assert not again.inputs_changed
    assert again.version == 1
    assert again.changes == ()
    gone = run.apply(deleted(A, "Ingress", A, "web"), offset=4)[0]
    assert gone.version == 2
    assert all(c.after is None for c in gone.changes)
    assert run.events_of(A) == 3
    assert run.resources(A) == {}


def test_class_change_reaches_every_tenant_and_relist_drops_unseen() -> None:
    run = PartitionReplay([A, B], options=TranslateOptions())
    run.apply(cluster(ingress_class()), offset=0)
    run.apply(event(A, ingress(A, "web", "web.a.test")), offset=1)
    run.apply(event(B, ingress(B, "web", "web.b.test")), offset=2)
    steps = run.apply(cluster(ingress_class(controller="other")), offset=3)
    assert {s.tenant for s in steps} == {A, B}
    assert all(any(c.after is None for c in s.changes) for s in steps)  # no longer served
    run.apply(cluster(ingress_class()), offset=4)
    run.apply(marker(EventType.RELIST_STARTED, "Ingress"), offset=5)
    run.apply(event(B, ingress(B, "web", "web.b.test")), offset=6)
    dropped = run.apply(marker(EventType.RELIST_FINISHED, "Ingress"), offset=7)
    assert [s.tenant for s in dropped] == [A]
    assert not any(t is TypeUrl.SCOPED_ROUTE for t, _ in run.resources(A))
    assert any(t is TypeUrl.SCOPED_ROUTE for t, _ in run.resources(B))


def test_fast_mode_gives_the_same_final_resources() -> None:
    assert replay(history(), each_step=False).resources(A) == replay(history()).resources(A)


def test_withheld_hosts_and_policy_are_applied() -> None:
    run = PartitionReplay(
        [A],
        options=TranslateOptions(),
        host_policy=HostPolicy(),
        withheld={A: frozenset({"web.a.test"})},
    )
    run.apply(cluster(ingress_class()), offset=0)
    run.apply(event(A, ingress(A, "web", "web.a.test")), offset=1)
    run.apply(event(A, ingress(A, "api", "api.a.test")), offset=2)
    scopes = {n for t, n in run.resources(A) if t is TypeUrl.SCOPED_ROUTE}
    assert scopes == {f"{A}/scope/api.a.test"}
