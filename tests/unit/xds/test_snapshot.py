"""SnapshotCache: resources per type and name, per-type revisions, change notifications."""

from __future__ import annotations

import pytest

from ripple_xds.snapshot import CacheChange, SnapshotCache
from tests.unit.xds.helpers import CDS, LDS, RDS, res


def test_upsert_stores_the_resource_with_its_content_version() -> None:
    cache = SnapshotCache()
    r = res(CDS, "a")
    cache.apply(upserts=[r])
    entry = cache.get(CDS, "a")
    assert entry is not None
    assert (entry.resource, entry.version) == (r, r.version)
    assert list(cache.names(CDS)) == ["a"]


def test_upsert_of_equal_bytes_is_no_change() -> None:
    cache = SnapshotCache()
    cache.apply(upserts=[res(CDS, "a")])
    seen: list[CacheChange] = []
    cache.subscribe(seen.append)
    assert cache.apply(upserts=[res(CDS, "a")]) is None
    assert (cache.revision(CDS), seen) == (1, [])


def test_revision_bumps_once_per_apply_for_changed_types_only() -> None:
    cache = SnapshotCache()
    cache.apply(upserts=[res(CDS, "a"), res(CDS, "b")])
    change = cache.apply(upserts=[res(CDS, "a", "v2"), res(LDS, "l")])
    assert change is not None
    assert change.revisions == {CDS: 2, LDS: 1}
    assert cache.revision(RDS) == 0


def test_removal_deletes_and_reports_the_name() -> None:
    cache = SnapshotCache()
    cache.apply(upserts=[res(CDS, "a"), res(CDS, "b")])
    change = cache.apply(removals=[(CDS, "a")])
    assert change is not None
    assert change.names == {CDS: frozenset({"a"})}
    assert cache.get(CDS, "a") is None
    assert list(cache.names(CDS)) == ["b"]


def test_removal_of_an_absent_name_is_no_change() -> None:
    cache = SnapshotCache()
    assert cache.apply(removals=[(CDS, "nope")]) is None


def test_the_same_name_twice_in_one_apply_is_an_error() -> None:
    cache = SnapshotCache()
    with pytest.raises(ValueError, match="twice"):
        cache.apply(upserts=[res(CDS, "a")], removals=[(CDS, "a")])
    assert len(cache) == 0


def test_subscribers_see_each_change_until_they_close() -> None:
    cache = SnapshotCache()
    seen: list[CacheChange] = []
    subscription = cache.subscribe(seen.append)
    cache.apply(upserts=[res(RDS, "r")])
    subscription.close()
    cache.apply(upserts=[res(RDS, "r", "v2")])
    assert [c.names for c in seen] == [{RDS: frozenset({"r"})}]
    assert cache.subscriber_count == 0
