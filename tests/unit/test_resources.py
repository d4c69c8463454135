from __future__ import annotations

from ripple_common.resources import PUSH_ORDER, Resource, TypeUrl


def test_version_derives_from_content_only() -> None:
    a = Resource(TypeUrl.CLUSTER, "t/a/web:80", b"\x01\x02")
    assert a.version == Resource(TypeUrl.CLUSTER, "other", b"\x01\x02").version
    assert a.version != Resource(TypeUrl.CLUSTER, "t/a/web:80", b"\x01\x03").version
    assert len(a.version) == 16


def test_push_order_is_make_before_break_and_complete() -> None:
    assert set(PUSH_ORDER) == set(TypeUrl)
    assert PUSH_ORDER.index(TypeUrl.CLUSTER) < PUSH_ORDER.index(TypeUrl.ENDPOINT)
    assert PUSH_ORDER.index(TypeUrl.ENDPOINT) < PUSH_ORDER.index(TypeUrl.LISTENER)
    assert PUSH_ORDER.index(TypeUrl.LISTENER) < PUSH_ORDER.index(TypeUrl.ROUTE)
    assert TypeUrl.SCOPED_ROUTE.short == "srds"
