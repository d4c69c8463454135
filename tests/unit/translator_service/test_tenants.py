"""Pure object sets: envelopes applied to a tenant, re-list tracking per partition."""

from __future__ import annotations

from ripple_common.envelope import EventType
from ripple_translator.tenants import PartitionObjects, TenantObjects, decode_key, encode_key
from tests.unit.translator_service.support import (
    cluster,
    deleted,
    event,
    ingress,
    ingress_class,
    service,
)


def test_add_modify_delete_and_state() -> None:
    objs = TenantObjects("a")
    web = ingress("a", "web", "a.example.com")
    assert objs.apply(event("a", web))
    assert not objs.apply(event("a", web, type_=EventType.MODIFIED))  # same content
    assert objs.apply(event("a", service("a")))
    state = objs.state()
    assert state.tenant == "a"
    assert [i["metadata"]["name"] for i in state.ingresses] == ["web"]
    assert len(state.services) == 1
    assert objs.apply(deleted("a", "Ingress", "a", "web"))
    assert not objs.apply(deleted("a", "Ingress", "a", "web"))
    assert objs.state().ingresses == ()


def test_untranslated_kinds_are_kept_but_not_translated() -> None:
    objs = TenantObjects("a")
    route = {"kind": "HTTPRoute", "metadata": {"name": "r", "namespace": "a"}}
    assert objs.apply(event("a", route))
    assert ("HTTPRoute", "a", "r") in objs.objects
    assert objs.state().ingresses == ()


def test_drop_unseen_only_touches_the_kind() -> None:
    objs = TenantObjects("a")
    for name in ("one", "two"):
        objs.apply(event("a", ingress("a", name, f"{name}.example.com")))
    objs.apply(event("a", service("a")))
    gone = objs.drop_unseen("Ingress", {("Ingress", "a", "one")})
    assert gone == [("Ingress", "a", "two")]
    assert set(objs.objects) == {("Ingress", "a", "one"), ("Service", "a", "web")}


def test_relist_tracks_seen_keys_and_needs_its_start() -> None:
    part = PartitionObjects()
    assert part.finish_relist("Ingress", offset=3) is None
    part.start_relist("Ingress", offset=5)
    part.see(event("a", ingress("a", "one", "one.example.com")))
    part.see(event("b", service("b")))  # another kind: not tracked
    end = part.finish_relist("Ingress", offset=9)
    assert end is not None
    assert (end.started_at, end.finished_at) == (5, 9)
    assert end.seen == {("Ingress", "a", "one")}


def test_ingress_class_relist_drops_unseen_classes() -> None:
    part = PartitionObjects()
    assert part.apply_cluster(cluster(ingress_class("ripple")))
    assert part.apply_cluster(cluster(ingress_class("old")))
    part.start_relist("IngressClass", offset=1)
    part.apply_cluster(cluster(ingress_class("ripple"), EventType.MODIFIED))
    end = part.finish_relist("IngressClass", offset=2)
    assert end is not None
    assert part.drop_unseen_classes(end)
    assert [c["metadata"]["name"] for c in part.class_objects()] == ["ripple"]


def test_key_round_trip() -> None:
    key = ("Ingress", "ns", "name")
    assert decode_key(encode_key(key)) == key
    assert decode_key(encode_key(("IngressClass", "", "x"))) == ("IngressClass", "", "x")
