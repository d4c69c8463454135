"""The xds follower's pure rules: what to do with an entry, tenant tracking, gap detection."""

from __future__ import annotations

import pytest

from ripple_common.resources import Resource, TypeUrl
from ripple_common.store_contract import ChangeEntry, ContractError, TenantState
from ripple_xds.snapshot import SnapshotCache
from ripple_xds.source import StreamInfo, format_id, is_gap, parse_id, stream_info
from ripple_xds.tenants import Action, TenantTracker, plan

CDS, RDS = TypeUrl.CLUSTER, TypeUrl.ROUTE


def r(type_url: TypeUrl, name: str, body: str = "v1") -> Resource:
    return Resource(type_url, name, f"{name}:{body}".encode())


def entry(version: int, *, full: bool = False) -> ChangeEntry:
    return ChangeEntry(tenant="t", version=version, upserts={CDS: ("a",)}, full=full)


@pytest.mark.parametrize(
    ("version", "held", "full", "action"),
    [
        (3, 3, False, Action.SKIP),  # duplicate
        (2, 3, False, Action.SKIP),  # older write announced late
        (4, 3, False, Action.FETCH),  # the next version
        (6, 3, False, Action.RELOAD),  # entries lost in between
        (4, 3, True, Action.RELOAD),  # announcement ahead of us
        (3, 3, True, Action.SKIP),  # announcement of what we hold
        (1, 0, False, Action.FETCH),  # a new tenant's first version
    ],
)
def test_plan(version: int, held: int, full: bool, action: Action) -> None:
    assert plan(entry(version, full=full), held) is action


def test_replace_removes_what_the_tenant_no_longer_has() -> None:
    tracker = TenantTracker()
    cache = SnapshotCache()
    first = tracker.replace(
        TenantState(tenant="t", version=2, offset=None, resources=(r(CDS, "a"), r(RDS, "b")))
    )
    cache.apply(upserts=first.upserts, removals=first.removals)
    second = tracker.replace(
        TenantState(tenant="t", version=5, offset=None, resources=(r(CDS, "a", "v2"),))
    )
    assert second.removals == ((RDS, "b"),)
    cache.apply(upserts=second.upserts, removals=second.removals)
    assert sorted(cache.names(CDS)) == ["a"]
    assert list(cache.names(RDS)) == []
    assert tracker.version("t") == 5
    assert tracker.names("t") == {(CDS, "a")}


def test_replace_does_not_touch_other_tenants() -> None:
    tracker = TenantTracker()
    tracker.replace(TenantState(tenant="u", version=1, offset=None, resources=(r(CDS, "u1"),)))
    update = tracker.replace(TenantState(tenant="t", version=1, offset=None, resources=()))
    assert update.removals == ()
    assert tracker.tenants == {"t", "u"}


def test_merge_tracks_names_and_never_lowers_the_version() -> None:
    tracker = TenantTracker()
    tracker.merge("t", version=1, present=[r(CDS, "a"), r(CDS, "b")], absent=[])
    update = tracker.merge("t", version=2, present=[], absent=[(CDS, "a")])
    assert update.removals == ((CDS, "a"),)
    assert tracker.names("t") == {(CDS, "b")}
    tracker.merge("t", version=1, present=[], absent=[])
    assert tracker.version("t") == 2


def test_stream_ids() -> None:
    assert parse_id(b"1700000000000-3") == (1700000000000, 3)
    assert parse_id("5") == (5, 0)
    assert format_id((5, 1)) == "5-1"
    assert parse_id("10-0") > parse_id("9-99")
    with pytest.raises(ContractError):
        parse_id("x-1")


def info(*, added: int | None, length: int, first: tuple[int, int] | None) -> StreamInfo:
    return StreamInfo(last_id=(999, 0), length=length, entries_added=added, first_id=first)


def test_gap_detection_by_entry_count() -> None:
    pos = (100, 5)
    # we have read up to the 10th entry ever appended
    assert not is_gap(pos, 10, info(added=10, length=10, first=(1, 0)))
    assert not is_gap(pos, 10, info(added=15, length=5, first=(100, 6)))  # only ours trimmed
    assert is_gap(pos, 10, info(added=15, length=4, first=(100, 7)))  # the 11th is gone
    assert is_gap(pos, 10, info(added=12, length=0, first=None))  # trimmed to nothing
    assert not is_gap(pos, 10, info(added=10, length=0, first=None))
    assert is_gap(pos, 10, info(added=3, length=3, first=(1, 0)))  # stream recreated


def test_gap_detection_when_the_stream_is_missing() -> None:
    assert not is_gap((0, 0), 0, None)
    assert is_gap((5, 0), 4, None)


def test_gap_detection_without_entry_counts_is_conservative() -> None:
    pos = (100, 5)
    assert not is_gap(pos, 0, info(added=None, length=3, first=(100, 5)))
    assert is_gap(pos, 0, info(added=None, length=3, first=(100, 6)))
    assert not is_gap(pos, 0, info(added=None, length=0, first=None))


def test_stream_info_parsing() -> None:
    raw = {
        "length": 2,
        "last-generated-id": b"7-1",
        "entries-added": 9,
        "first-entry": (b"6-0", {b"a": b"1"}),
    }
    assert stream_info(raw) == StreamInfo(
        last_id=(7, 1), length=2, entries_added=9, first_id=(6, 0)
    )
    legacy = {"length": 0, "last-generated-id": b"0-0", "first-entry": None}
    assert stream_info(legacy) == StreamInfo(
        last_id=(0, 0), length=0, entries_added=None, first_id=None
    )
    with pytest.raises(ContractError):
        stream_info([1, 2])
