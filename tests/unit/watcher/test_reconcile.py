from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from ripple_common.envelope import CLUSTER_TENANT, EventType
from ripple_common.sealing import Sealer
from ripple_watcher.kinds import INGRESS, INGRESS_CLASS, NAMESPACE, TLS_SECRET, KindSpec
from ripple_watcher.reconcile import Reconciler
from ripple_watcher.tenancy import TenantResolver
from tests.unit.watcher.fakes import ingress, meta, namespace, tls_secret

LABEL = "ripple.io/tenant"


def _reconciler(spec: KindSpec = INGRESS, *, resolver: TenantResolver | None = None) -> Reconciler:
    return Reconciler(
        spec,
        resolver=resolver or TenantResolver(tenant_label=LABEL),
        sealer=Sealer(os.urandom(32)),
        clock=lambda: 1_000,
    )


def _relist(r: Reconciler, rv: str, items: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    relist = r.begin_relist(rv)
    envs = relist.start()
    for item in items:
        envs += relist.item(item)
    envs += relist.finish()
    return [(e.type.value, e.tenant, e.name) for e in envs]


def test_first_relist_is_framed_by_markers_for_every_tenant() -> None:
    r = _reconciler()
    assert _relist(r, "10", [ingress("a", "web"), ingress("b", "api")]) == [
        ("RELIST_STARTED", CLUSTER_TENANT, ""),
        ("ADDED", "a", "web"),
        ("ADDED", "b", "api"),
        ("RELIST_FINISHED", CLUSTER_TENANT, ""),
    ]


def test_marker_carries_the_list_resource_version() -> None:
    r = _reconciler()
    relist = r.begin_relist("10")
    assert relist.start()[0].resource_version == "10"


def test_relevant_change_is_published_as_modified() -> None:
    r = _reconciler()
    _relist(r, "10", [ingress("a", "web")])
    envs = r.event("MODIFIED", ingress("a", "web", rv="11", host="new.example.test"))
    assert [(e.type, e.resource_version) for e in envs] == [(EventType.MODIFIED, "11")]


def test_write_that_changes_nothing_relevant_is_not_published() -> None:
    r = _reconciler()
    _relist(r, "10", [ingress("a", "web")])
    obj = ingress("a", "web", rv="11")
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": "198.18.0.9"}]}}
    assert r.event("MODIFIED", obj) == []


def test_trusted_relist_publishes_only_differences() -> None:
    r = _reconciler()
    _relist(r, "10", [ingress("a", "web"), ingress("a", "old")])
    changed = ingress("a", "web", rv="12", host="b.example.test")
    assert _relist(r, "12", [changed, ingress("a", "new", rv="12")]) == [
        ("MODIFIED", "a", "web"),
        ("ADDED", "a", "new"),
        ("DELETED", "a", "old"),
    ]


def test_object_deleted_while_down_comes_out_deleted_with_its_last_identity() -> None:
    r = _reconciler()
    _relist(r, "10", [ingress("a", "gone")])
    relist = r.begin_relist("20")
    (deleted,) = relist.finish()
    assert (deleted.type, deleted.tenant, deleted.uid, deleted.resource_version) == (
        EventType.DELETED,
        "a",
        "uid-a-gone",
        "1",
    )


def test_after_distrust_the_relist_is_full_again() -> None:
    r = _reconciler()
    _relist(r, "10", [ingress("a", "web")])
    r.distrust()
    assert _relist(r, "11", [ingress("a", "web")]) == [
        ("RELIST_STARTED", CLUSTER_TENANT, ""),
        ("MODIFIED", "a", "web"),
        ("RELIST_FINISHED", CLUSTER_TENANT, ""),
    ]


def test_watch_deletion_is_published_under_the_tenant_it_was_added_to() -> None:
    resolver = TenantResolver(tenant_label=LABEL)
    r = _reconciler(resolver=resolver)
    r.event("ADDED", ingress("shop", "web"))
    resolver.observe_namespace(namespace("shop", labels={LABEL: "acme"}))
    (deleted,) = r.event("DELETED", ingress("shop", "web"))
    assert deleted.tenant == "shop"


def test_relabelled_namespace_moves_its_objects_to_the_new_tenant() -> None:
    resolver = TenantResolver(tenant_label=LABEL)
    r = _reconciler(resolver=resolver)
    _relist(r, "10", [ingress("shop", "web")])
    resolver.observe_namespace(namespace("shop", labels={LABEL: "acme"}))
    assert _relist(r, "11", [ingress("shop", "web")]) == [
        ("DELETED", "shop", "web"),
        ("ADDED", "acme", "web"),
    ]


def test_namespace_label_change_is_reported() -> None:
    changed: list[str] = []
    r = Reconciler(
        NAMESPACE,
        resolver=TenantResolver(tenant_label=LABEL),
        sealer=None,
        on_tenant_change=changed.append,
    )
    r.event("ADDED", namespace("shop"))
    r.event("MODIFIED", namespace("shop", labels={LABEL: "acme"}, rv="2"))
    assert changed == ["shop"]


def test_cluster_scoped_kind_goes_to_the_cluster_tenant() -> None:
    r = _reconciler(INGRESS_CLASS)
    obj = {"metadata": meta("ripple"), "spec": {"controller": "ripple.io/ingress"}}
    (env,) = r.event("ADDED", obj)
    assert (env.tenant, env.namespace) == (CLUSTER_TENANT, None)


def test_published_secret_is_sealed() -> None:
    r = _reconciler(TLS_SECRET)
    (env,) = r.event("ADDED", tls_secret("shop", "tls"))
    assert env.object is not None
    assert "PRIVATE KEY" not in env.to_bytes().decode()


def test_secrets_without_a_sealer_are_refused() -> None:
    with pytest.raises(ValueError, match="sealing key"):
        Reconciler(TLS_SECRET, resolver=TenantResolver(tenant_label=None), sealer=None)


def test_recreated_object_with_a_new_uid_is_published_even_if_identical() -> None:
    r = _reconciler()
    r.event("ADDED", ingress("a", "web"))
    again = ingress("a", "web", rv="5")
    again["metadata"]["uid"] = "uid-new"
    (env,) = r.event("ADDED", again)
    assert (env.type, env.uid) == (EventType.ADDED, "uid-new")
