"""Pure object sets: envelopes applied to a tenant, re-list tracking per partition."""

from __future__ import annotations

from dataclasses import replace

from ripple_common.envelope import EventType, TooLarge
from ripple_translator.partition_state import (
    Applied,
    PartitionObjects,
    PartitionState,
    TenantObjects,
    decode_key,
    encode_key,
)
from tests.unit.translator_service.support import (
    cluster,
    deleted,
    event,
    ingress,
    ingress_class,
    marker,
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


class Table:
    """A `TenantTable` of plain objects with a stored position per tenant."""

    def __init__(self, **covered: int) -> None:
        self.held = {t: TenantObjects(t) for t in covered}
        self.positions = covered

    def objects(self, tenant: str) -> TenantObjects | None:
        return self.held.get(tenant)

    def covered(self, tenant: str) -> int:
        return self.positions[tenant]

    def names(self) -> list[str]:
        return sorted(self.held)


def test_the_event_rules_skip_what_the_stored_inputs_cover() -> None:
    state, table = PartitionState(), Table(a=5, b=0)
    applied = state.apply(event("a", service("a")), offset=3, tenants=table)
    assert applied == Applied()  # below a's stored position: only seen
    applied = state.apply(event("a", service("a")), offset=5, tenants=table)
    assert applied.changed == {"a": (("Service", "a", "web"),)}
    assert state.apply(event("a", service("a")), offset=6, tenants=table) == Applied(tenant="a")
    assert state.apply(event("c", service("c")), offset=7, tenants=table) == Applied()  # not held
    keyed = replace(event("a", service("a")), type=EventType.RELIST_STARTED, object=None)
    assert state.apply(keyed, offset=8, tenants=table).unexpected_marker


def test_a_class_change_re_translates_every_tenant_not_past_it() -> None:
    state, table = PartitionState(classes_offset=4), Table(a=10, b=0)
    assert state.apply(cluster(ingress_class()), offset=2, tenants=table) == Applied()
    applied = state.apply(cluster(ingress_class()), offset=4, tenants=table)
    assert applied.classes_changed
    assert applied.changed == {"b": ()}  # a's stored inputs cover offset 4 already
    assert state.classes_offset == 5


def test_a_finished_relist_drops_what_it_did_not_see_from_each_tenant() -> None:
    state, table = PartitionState(), Table(a=0, b=0)
    for t in ("a", "b"):
        state.apply(event(t, service(t)), offset=0, tenants=table)
        state.apply(event(t, service(t, "old")), offset=1, tenants=table)
    started = marker(EventType.RELIST_STARTED, "Service")
    assert state.apply(started, offset=2, tenants=table).relist_started == ("Service", 2)
    state.apply(event("a", service("a")), offset=3, tenants=table)
    state.apply(event("b", service("b")), offset=4, tenants=table)
    applied = state.apply(marker(EventType.RELIST_FINISHED, "Service"), offset=5, tenants=table)
    assert applied.relist_finished is not None
    assert applied.changed == {"a": (("Service", "a", "old"),), "b": (("Service", "b", "old"),)}
    unmatched = state.apply(marker(EventType.RELIST_FINISHED, "Service"), offset=6, tenants=table)
    assert unmatched.unmatched_relist


def test_an_object_too_large_to_publish_counts_as_deleted() -> None:
    state, table = PartitionState(), Table(a=0)
    state.apply(event("a", service("a")), offset=0, tenants=table)
    big = replace(
        event("a", service("a")),
        type=EventType.TOO_LARGE,
        object=None,
        too_large=TooLarge(encoded_bytes=3_000_000, limit_bytes=2_000_000),
    )
    assert PartitionState.tenant_of(big) == "a"
    assert state.apply(big, offset=1, tenants=table).changed == {"a": (("Service", "a", "web"),)}
    assert table.held["a"].objects == {}
