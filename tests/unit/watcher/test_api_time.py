"""The API's own time of a change, read from the raw watch object before sanitizing (which
drops managedFields), and carried in the envelope (issue #15 point 4)."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ripple_common.envelope import EventType
from ripple_common.sealing import Sealer
from ripple_watcher.api_time import api_time_ns, parse_time_ns
from ripple_watcher.kinds import ENDPOINT_SLICE, INGRESS, SERVICE, KindSpec
from ripple_watcher.publisher import KafkaSink
from ripple_watcher.reconcile import Reconciler
from ripple_watcher.tenancy import TenantResolver
from tests.unit.watcher.fakes import ingress, meta
from tests.unit.watcher.test_publisher import FakeProducer

S = 1_000_000_000
CREATED = "2026-12-06T19:00:00Z"
CREATED_NS = 1_796_583_600 * S
UPDATED = "2026-12-06T19:00:07Z"  # 7 s later


def _managed(*times: str) -> list[dict[str, Any]]:
    return [
        {"manager": f"m{i}", "operation": "Update", "apiVersion": "v1", "time": t}
        for i, t in enumerate(times)
    ]


def _with_meta(obj: dict[str, Any], **fields: Any) -> dict[str, Any]:
    obj["metadata"].update(fields)
    return obj


def test_parse_reads_rfc3339_times_to_epoch_nanoseconds() -> None:
    assert parse_time_ns(CREATED) == CREATED_NS
    assert parse_time_ns("2026-12-06T19:00:00.250000Z") == CREATED_NS + S // 4
    assert parse_time_ns("2026-12-06T20:00:00+01:00") == CREATED_NS
    for bad in (None, "", "yesterday", 12):
        assert parse_time_ns(bad) is None


def test_a_create_is_timed_by_its_creation_timestamp() -> None:
    obj = _with_meta(
        ingress("a", "web"), creationTimestamp=CREATED, managedFields=_managed(CREATED)
    )
    assert api_time_ns("ADDED", obj) == CREATED_NS


def test_an_update_is_timed_by_the_newest_managed_fields_time() -> None:
    obj = _with_meta(
        ingress("a", "web"),
        creationTimestamp=CREATED,
        managedFields=_managed(CREATED, UPDATED, "2026-12-06T19:00:03Z"),
    )
    assert api_time_ns("MODIFIED", obj) == CREATED_NS + 7 * S
    # A re-listed object (published as ADDED) is timed the same way.
    assert api_time_ns("ADDED", obj) == CREATED_NS + 7 * S


def test_a_delete_is_timed_by_its_deletion_timestamp_else_unknown() -> None:
    obj = _with_meta(
        ingress("a", "web"),
        creationTimestamp=CREATED,
        managedFields=_managed(CREATED),
        deletionTimestamp=UPDATED,
    )
    assert api_time_ns("DELETED", obj) == CREATED_NS + 7 * S
    del obj["metadata"]["deletionTimestamp"]
    assert api_time_ns("DELETED", obj) is None  # the consumer falls back to the observation


def test_an_object_without_times_has_no_api_time() -> None:
    assert api_time_ns("ADDED", ingress("a", "web")) is None
    assert api_time_ns("ADDED", {}) is None
    assert api_time_ns("MODIFIED", {"metadata": {"managedFields": [{"time": "junk"}, 3]}}) is None


def _reconciler(spec: KindSpec = INGRESS) -> Reconciler:
    return Reconciler(
        spec,
        resolver=TenantResolver(tenant_label="ripple.io/tenant"),
        sealer=Sealer(os.urandom(32)),
        clock=lambda: CREATED_NS + 60 * S,
    )


def test_the_envelope_carries_the_api_time_read_before_sanitizing() -> None:
    r = _reconciler()
    created = _with_meta(
        ingress("a", "web"), creationTimestamp=CREATED, managedFields=_managed(CREATED)
    )
    (added,) = r.event("ADDED", created)
    assert added.api_at_ns == CREATED_NS
    assert added.observed_at_ns == CREATED_NS + 60 * S
    assert "managedFields" not in (added.object or {}).get("metadata", {})
    updated = _with_meta(
        ingress("a", "web", rv="2", host="b.example.test"),
        creationTimestamp=CREATED,
        managedFields=_managed(CREATED, UPDATED),
    )
    (modified,) = r.event("MODIFIED", updated)
    assert modified.type is EventType.MODIFIED
    assert modified.api_at_ns == CREATED_NS + 7 * S  # only managedFields says so


def test_deletes_and_relists_carry_their_api_time() -> None:
    r = _reconciler()
    relist = r.begin_relist("5")
    listed = _with_meta(
        ingress("a", "web"), creationTimestamp=CREATED, managedFields=_managed(UPDATED)
    )
    (added,) = relist.item(listed)
    assert added.api_at_ns == CREATED_NS + 7 * S
    gone = _with_meta(dict(listed), deletionTimestamp="2026-12-06T19:00:09Z")
    (deleted,) = r.event("DELETED", gone)
    assert deleted.type is EventType.DELETED
    assert deleted.api_at_ns == CREATED_NS + 9 * S
    r.event("ADDED", listed)
    (unknown,) = r.event("DELETED", ingress("a", "web"))
    assert unknown.api_at_ns is None


@pytest.mark.parametrize("spec", [SERVICE, ENDPOINT_SLICE])
def test_services_and_endpoint_slices_follow_the_same_rules(spec: KindSpec) -> None:
    obj: dict[str, Any] = {
        "metadata": {
            **meta("web", namespace="a"),
            "creationTimestamp": CREATED,
            "managedFields": _managed(CREATED, UPDATED),
        },
        "spec": {"ports": [{"port": 80}]},
        "endpoints": [{"addresses": ["10.0.0.1"]}],
    }
    (env,) = _reconciler(spec).event("ADDED", obj)
    assert env.kind == spec.kind
    assert env.api_at_ns == CREATED_NS + 7 * S


async def test_the_publish_span_has_the_api_time_and_an_event_at_it() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    sink = KafkaSink(
        FakeProducer(), topic="events", max_in_flight=4, tracer=provider.get_tracer("test")
    )
    created = _with_meta(
        ingress("a", "web"), creationTimestamp=CREATED, managedFields=_managed(CREATED)
    )
    (known,) = _reconciler().event("ADDED", created)
    await sink.publish(known)
    await sink.publish(dataclasses.replace(known, api_at_ns=None))
    first, second = exporter.get_finished_spans()
    assert (first.attributes or {})["ripple.api_at_ns"] == CREATED_NS
    assert [(e.name, e.timestamp) for e in first.events] == [("api.change", CREATED_NS)]
    assert "ripple.api_at_ns" not in (second.attributes or {})
    assert not second.events
