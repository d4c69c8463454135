"""A TOO_LARGE envelope: the object is not served (its older version is removed like a
deletion), the tenant's other objects are, and the diagnostic names the object and its size
(an Event on it through the reporter); neighbours are untouched. The Event path refuses the
cluster's own namespaces."""

from __future__ import annotations

from collections.abc import Sequence

from ripple_common.envelope import EventType
from ripple_translator.engine import Engine
from ripple_translator.oversized import as_removal, too_large_diagnostic
from ripple_translator.reporting import event_spec
from ripple_translator.translate import Diagnostic, ObjectRef, Reason
from ripple_translator.translate.diagnostics import error
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

TP = (TOPIC, 0)


def _engine(store: FakeStore, reported: list[tuple[str, Sequence[Diagnostic]]]) -> Engine:
    return Engine(
        store=store,
        partitions=FakePartitions(),
        config=WriterConfig(retry_initial_s=0.01, retry_max_s=0.02),
        on_diagnostics=lambda tenant, diags: reported.append((tenant, diags)),
    )


async def test_a_too_large_object_is_not_served_and_reported_and_neighbours_are() -> None:
    store = FakeStore()
    reported: list[tuple[str, Sequence[Diagnostic]]] = []
    engine = _engine(store, reported)
    await engine.assign([TP])
    small = event("a", ingress("a", "big", "big.a.example.com"))
    await engine.handle(
        [
            record(0, cluster(ingress_class())),
            record(1, event("a", service("a"))),
            record(2, small),
            record(3, event("a", ingress("a", "other", "other.a.example.com"))),
        ]
    )
    await engine.settle(timeout_s=5)
    assert "a/scope/big.a.example.com" in store.names("a")

    # The object grew past the limit: its old version must not stay served.
    marker = small.too_large_marker(encoded_bytes=1_500_000, limit_bytes=1_048_576)
    await engine.handle(
        [record(4, marker), record(5, event("b", ingress("b", "web", "b.example.com")))]
    )
    await engine.settle(timeout_s=5)
    assert "a/scope/big.a.example.com" not in store.names("a")
    assert "a/scope/other.a.example.com" in store.names("a")
    assert await engine.checkpoint() == {TP: 6}
    too_large = [
        d for tenant, diags in reported for d in diags if d.reason is Reason.OBJECT_TOO_LARGE
    ]
    assert len(too_large) == 1
    (diag,) = too_large
    assert diag.object == ObjectRef("Ingress", "a", "big")
    assert "not served: object too large (1500000 bytes > 1048576 bytes" in diag.message
    assert all(tenant == "a" for tenant, diags in reported if diags[0] is diag)


async def test_a_too_large_object_never_seen_before_is_reported_too() -> None:
    store = FakeStore()
    reported: list[tuple[str, Sequence[Diagnostic]]] = []
    engine = _engine(store, reported)
    await engine.assign([TP])
    marker = event("a", ingress("a", "huge", "huge.a.example.com")).too_large_marker(
        encoded_bytes=3, limit_bytes=2
    )
    await engine.handle([record(0, marker)])
    await engine.settle(timeout_s=5)
    assert [d.reason for _, diags in reported for d in diags] == [Reason.OBJECT_TOO_LARGE]
    assert await engine.checkpoint() == {TP: 1}


def test_the_event_note_says_not_served_and_the_removal_carries_no_object() -> None:
    marker = event("a", ingress("a", "big", "big.example.com")).too_large_marker(
        encoded_bytes=1_600_000, limit_bytes=2_097_152
    )
    spec = event_spec(too_large_diagnostic(marker))
    assert spec is not None
    assert (spec.kind, spec.namespace, spec.object_name, spec.reason) == (
        "Ingress",
        "a",
        "big",
        "ObjectTooLarge",
    )
    assert spec.note.startswith("Error: not served: object too large (1600000 bytes > 2097152")
    removal = as_removal(marker)
    assert (removal.type, removal.object, removal.too_large) == (EventType.DELETED, None, None)
    assert (removal.namespace, removal.name) == ("a", "big")


def test_no_event_is_written_into_the_clusters_own_namespaces() -> None:
    for ns in ("kube-system", "kube-public", "kube-node-lease"):
        diag = error(ObjectRef("Ingress", ns, "x"), Reason.INVALID_HOST, "bad")
        assert event_spec(diag) is None
    assert event_spec(error(ObjectRef("Ingress", "team-a", "x"), Reason.INVALID_HOST, "b"))
