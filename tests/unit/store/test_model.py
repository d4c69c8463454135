"""The translator store's pure rules: diffing, write arguments, claim times; and the fake
store (which the translator's own tests may use) following them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ripple_common.resources import Resource, TypeUrl
from ripple_translator.hosts import ClaimStatus, HostRegistry, from_micros, to_micros
from ripple_translator.store import (
    InputChanges,
    KafkaOffset,
    TenantStore,
    VersionConflictError,
    apply_diff,
    diff_resources,
)
from ripple_translator.store.redis_store import change_entry, write_args
from tests.unit.store.fake_store import FakeTenantStore

CDS, RDS = TypeUrl.CLUSTER, TypeUrl.ROUTE
OFFSET = KafkaOffset(topic="ripple.events", partition=0, offset=1)


def r(type_url: TypeUrl, name: str, body: str = "v1") -> Resource:
    return Resource(type_url, name, f"{name}:{body}".encode())


def test_diff_against_nothing_upserts_everything_in_order() -> None:
    diff = diff_resources({}, [r(RDS, "b"), r(CDS, "z"), r(RDS, "a")])
    assert [x.name for x in diff.upserts] == ["z", "a", "b"]
    assert diff.removals == ()
    assert diff


def test_diff_keeps_only_changed_and_removes_the_missing() -> None:
    stored = {(CDS, "same"): r(CDS, "same").version, (CDS, "gone"): "x", (RDS, "edit"): "old"}
    diff = diff_resources(stored, [r(CDS, "same"), r(RDS, "edit", "v2"), r(RDS, "new")])
    assert [(x.type_url, x.name) for x in diff.upserts] == [(RDS, "edit"), (RDS, "new")]
    assert diff.removals == ((CDS, "gone"),)
    assert apply_diff(stored, diff) == {
        (CDS, "same"): r(CDS, "same").version,
        (RDS, "edit"): r(RDS, "edit", "v2").version,
        (RDS, "new"): r(RDS, "new").version,
    }


def test_equal_state_is_an_empty_diff() -> None:
    desired = [r(CDS, "a"), r(RDS, "b")]
    stored = {(x.type_url, x.name): x.version for x in desired}
    assert not diff_resources(stored, desired)


def test_diff_rejects_duplicate_desired_names() -> None:
    with pytest.raises(ValueError, match="twice"):
        diff_resources({}, [r(CDS, "a"), r(CDS, "a", "v2")])


def test_write_args_layout_and_duplicate_rejection() -> None:
    args = write_args([r(RDS, "a")], [(CDS, "b")], offset=OFFSET, expected_version=3)
    rds_index = str(list(TypeUrl).index(RDS))
    cds_index = str(list(TypeUrl).index(CDS))
    assert args == [
        "3",
        "ripple.events",
        "0",
        "1",
        "0",
        "u",
        rds_index,
        "a",
        b"a:v1",
        "r",
        cds_index,
        "b",
    ]
    args2 = write_args([], [(CDS, "b")], offset=OFFSET, expected_version=0)
    assert args2[5:] == ["r", cds_index, "b"]
    # The inputs ride in the same script: "1", then their own ops after the resources'.
    svc = {"kind": "Service"}
    changes = InputChanges(
        upserts={("Service", "t", "web"): svc}, removals=(("Ingress", "t", "x"),)
    )
    args3 = write_args([], [(CDS, "b")], offset=OFFSET, expected_version=0, inputs=changes)
    assert args3[4] == "1"
    assert args3[5:] == [
        "r",
        cds_index,
        "b",
        "i",
        "Service/t/web",
        '{"kind":"Service"}',
        "d",
        "Ingress/t/x",
    ]
    with pytest.raises(ValueError, match="twice"):
        write_args([r(CDS, "a")], [(CDS, "a")], offset=OFFSET, expected_version=0)


def test_change_entry_groups_names_by_type() -> None:
    entry = change_entry("t", 2, [r(CDS, "a"), r(CDS, "b")], [(RDS, "x")], {"traceparent": "tp"})
    assert entry.upserts == {CDS: ("a", "b")}
    assert entry.removals == {RDS: ("x",)}
    assert entry.trace == {"traceparent": "tp"}


def test_micros_round_trip_and_naive_times_rejected() -> None:
    t = datetime(2026, 11, 25, 18, 7, 18, 123456, tzinfo=UTC)
    assert from_micros(to_micros(t)) == t
    assert to_micros(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    with pytest.raises(ValueError, match="timezone"):
        to_micros(datetime(2026, 1, 1))


async def test_fake_store_follows_the_protocols() -> None:
    fake = FakeTenantStore()
    store: TenantStore = fake
    assert await write(store, [r(CDS, "a")], expected=0) == 1
    assert await write(store, [], expected=1) == 1
    with pytest.raises(VersionConflictError):
        await write(store, [r(CDS, "a", "v2")], expected=0)
    checkpoint = await store.load_checkpoint("t")
    assert (checkpoint.version, checkpoint.offset) == (1, OFFSET)
    assert checkpoint.resource_versions == {(CDS, "a"): r(CDS, "a").version}
    registry: HostRegistry = fake
    claims = await registry.claim("t", ["h"])
    assert claims["h"].status is ClaimStatus.OWNED
    lost = await registry.claim("u", ["h"])
    assert (lost["h"].status, lost["h"].owner) == (ClaimStatus.LOST, "t")
    # only the owner releases a host (at once: no hold)
    assert await registry.withdraw("u", stop_serving=[], release=["h"]) == []
    assert fake.owner("h") == "t"
    assert await registry.withdraw("t", stop_serving=["h"], release=["h"]) == []
    assert fake.owner("h") is None


async def write(store: TenantStore, upserts: list[Resource], *, expected: int) -> int:
    return await store.write_version(
        "t", upserts, [], offset=OFFSET, expected_version=expected, trace_fields={}
    )
