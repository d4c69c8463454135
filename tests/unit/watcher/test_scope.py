"""The opt-in scope: IngressClass filter and namespace selector, and the transitions they cause."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from ripple_common.envelope import CLUSTER_TENANT, EventType
from ripple_common.sealing import Sealer
from ripple_watcher.__main__ import main
from ripple_watcher.kinds import INGRESS, INGRESS_CLASS, NAMESPACE, SERVICE, KindSpec
from ripple_watcher.reconcile import Reconciler
from ripple_watcher.scope import IngressClassFilter, ingress_class_of
from ripple_watcher.selectors import parse_selector
from ripple_watcher.service import WatcherGroup, ingress_filter_from, resolver_from
from ripple_watcher.settings import WatcherSettings
from ripple_watcher.tenancy import TenantResolver
from ripple_watcher.watchloop import WatchOptions
from tests.unit.watcher.fakes import (
    FakeKindApi,
    RecordingSink,
    event,
    ingress,
    meta,
    namespace,
)
from tests.waiting import eventually

MANAGED = {"ripple.io/managed": "true"}


def classed(
    ns: str, name: str, cls: str | None, *, rv: str = "1", legacy: str | None = None
) -> dict[str, Any]:
    obj = ingress(ns, name, rv=rv)
    if cls is not None:
        obj["spec"]["ingressClassName"] = cls
    if legacy is not None:
        obj["metadata"]["annotations"] = {"kubernetes.io/ingress.class": legacy}
    return obj


def _summary(envs: Sequence[Any]) -> list[tuple[str, str, str]]:
    return [(e.type.value, e.tenant, e.name or e.kind) for e in envs]


def _relist(
    r: Reconciler, rv: str, items: Sequence[Mapping[str, Any]]
) -> list[tuple[str, str, str]]:
    relist = r.begin_relist(rv)
    envs = relist.start()
    for item in items:
        envs += relist.item(item)
    envs += relist.finish()
    return _summary(envs)


def _reconciler(
    spec: KindSpec = INGRESS,
    *,
    resolver: TenantResolver | None = None,
    classes: IngressClassFilter | None = None,
) -> Reconciler:
    return Reconciler(
        spec,
        resolver=resolver or TenantResolver(tenant_label=None),
        sealer=Sealer(os.urandom(32)),
        clock=lambda: 1,
        ingress_classes=classes,
    )


RIPPLE = IngressClassFilter(classes=frozenset({"ripple"}))

# -- IngressClass filter --


def test_class_comes_from_the_spec_then_the_legacy_annotation() -> None:
    assert ingress_class_of(classed("a", "w", "ripple", legacy="nginx")) == "ripple"
    assert ingress_class_of(classed("a", "w", None, legacy="nginx")) == "nginx"
    assert ingress_class_of(classed("a", "w", None)) is None


def test_filter_admits_listed_classes_and_unclassed_only_if_asked() -> None:
    assert RIPPLE.admits(classed("a", "w", "ripple"))
    assert not RIPPLE.admits(classed("a", "w", "nginx"))
    assert not RIPPLE.admits(classed("a", "w", None))
    assert IngressClassFilter(classes=frozenset(), include_unclassed=True).admits(
        classed("a", "w", None)
    )
    assert RIPPLE.admits(classed("a", "w", None, legacy="ripple"))


def test_ingresses_of_other_classes_are_not_published() -> None:
    r = _reconciler(classes=RIPPLE)
    assert _relist(r, "1", [classed("a", "mine", "ripple"), classed("a", "theirs", "nginx")]) == [
        ("RELIST_STARTED", CLUSTER_TENANT, "Ingress"),
        ("ADDED", "a", "mine"),
        ("RELIST_FINISHED", CLUSTER_TENANT, "Ingress"),
    ]
    assert r.event("MODIFIED", classed("a", "theirs", "nginx", rv="2")) == []
    assert r.event("DELETED", classed("a", "theirs", "nginx", rv="3")) == []


def test_ingress_moving_out_of_the_classes_is_deleted_and_back_in_added() -> None:
    r = _reconciler(classes=RIPPLE)
    r.event("ADDED", classed("a", "web", "ripple"))
    (out,) = r.event("MODIFIED", classed("a", "web", "nginx", rv="2"))
    assert (out.type, out.tenant, out.uid, out.object) == (
        EventType.DELETED,
        "a",
        "uid-a-web",
        None,
    )
    assert r.known("a", "web") is None
    assert _summary(r.event("MODIFIED", classed("a", "web", "ripple", rv="3"))) == [
        ("ADDED", "a", "web")
    ]


def test_class_change_while_down_is_a_deletion_after_the_relist() -> None:
    r = _reconciler(classes=RIPPLE)
    _relist(r, "1", [classed("a", "web", "ripple")])
    assert _relist(r, "5", [classed("a", "web", "nginx", rv="4")]) == [("DELETED", "a", "web")]


def test_other_kinds_ignore_the_class_filter() -> None:
    r = _reconciler(INGRESS_CLASS, classes=RIPPLE)
    obj = {"metadata": meta("nginx"), "spec": {"controller": "k8s.io/ingress-nginx"}}
    assert _summary(r.event("ADDED", obj)) == [("ADDED", CLUSTER_TENANT, "nginx")]


def test_without_a_filter_every_ingress_is_published() -> None:
    r = _reconciler()
    assert len(r.event("ADDED", classed("a", "w", "nginx"))) == 1


# -- namespace selector --


def _selecting(text: str = "ripple.io/managed=true") -> TenantResolver:
    return TenantResolver(tenant_label=None, selector=parse_selector(text))


def test_resolver_tracks_selected_namespaces() -> None:
    resolver = _selecting()
    assert resolver.selected("shop") is False
    assert resolver.selected(None) is True
    assert resolver.observe_namespace(namespace("shop", labels=MANAGED)) is True
    assert resolver.selected("shop") is True
    assert resolver.observe_namespace(namespace("shop", labels=MANAGED, rv="2")) is False
    assert resolver.observe_namespace(namespace("shop", rv="3")) is True
    assert resolver.selected("shop") is False


def test_forgetting_a_selected_namespace_is_a_change() -> None:
    resolver = _selecting()
    resolver.observe_namespace(namespace("shop", labels=MANAGED))
    assert resolver.forget_namespace("shop") is True
    assert resolver.forget_namespace("shop") is False


def test_without_a_selector_every_namespace_is_selected() -> None:
    resolver = TenantResolver(tenant_label=None, selector=parse_selector(""))
    assert resolver.selector is None
    assert resolver.needs_namespaces is False
    assert resolver.selected("anything") is True
    assert resolver.observe_namespace(namespace("shop")) is False


def test_only_objects_of_selected_namespaces_are_published() -> None:
    resolver = _selecting()
    resolver.observe_namespace(namespace("in", labels=MANAGED))
    resolver.observe_namespace(namespace("out"))
    r = _reconciler(SERVICE, resolver=resolver)
    svc = {"metadata": meta("web", namespace="in"), "spec": {}}
    other = {"metadata": meta("web", namespace="out"), "spec": {}}
    assert _relist(r, "1", [svc, other])[1:-1] == [("ADDED", "in", "web")]
    assert r.event("DELETED", other) == []


def test_namespace_leaving_the_selector_deletes_its_objects_and_entering_adds_them() -> None:
    resolver = _selecting()
    resolver.observe_namespace(namespace("shop", labels=MANAGED))
    r = _reconciler(resolver=resolver)
    _relist(r, "1", [ingress("shop", "web")])
    resolver.observe_namespace(namespace("shop", rv="2"))
    assert _relist(r, "3", [ingress("shop", "web")]) == [("DELETED", "shop", "web")]
    resolver.observe_namespace(namespace("shop", labels=MANAGED, rv="4"))
    assert _relist(r, "5", [ingress("shop", "web")]) == [("ADDED", "shop", "web")]


def test_namespace_objects_follow_the_selector_and_report_selection_changes() -> None:
    changed: list[str] = []
    r = Reconciler(NAMESPACE, resolver=_selecting(), sealer=None, on_tenant_change=changed.append)
    assert r.event("ADDED", namespace("shop")) == []
    assert _summary(r.event("MODIFIED", namespace("shop", labels=MANAGED, rv="2"))) == [
        ("ADDED", CLUSTER_TENANT, "shop")
    ]
    assert _summary(r.event("MODIFIED", namespace("shop", rv="3"))) == [
        ("DELETED", CLUSTER_TENANT, "shop")
    ]
    assert r.event("DELETED", namespace("shop", rv="4")) == []
    assert changed == ["shop", "shop"]


def test_selector_and_class_filter_combine() -> None:
    resolver = _selecting()
    resolver.observe_namespace(namespace("shop", labels=MANAGED))
    r = _reconciler(resolver=resolver, classes=RIPPLE)
    assert r.event("ADDED", classed("shop", "theirs", "nginx")) == []
    assert r.event("ADDED", classed("other", "mine", "ripple")) == []
    assert len(r.event("ADDED", classed("shop", "mine", "ripple"))) == 1


# -- settings and service wiring --


def test_settings_build_the_scope() -> None:
    settings = WatcherSettings(
        ingress_classes=frozenset({"ripple"}),
        ingress_include_unclassed=True,
        namespace_selector="env in (prod)",
    )
    assert ingress_filter_from(settings) == IngressClassFilter(
        classes=frozenset({"ripple"}), include_unclassed=True
    )
    resolver = resolver_from(settings)
    assert resolver.selector is not None
    assert resolver.selector.text == "env in (prod)"


def test_scope_is_off_by_default() -> None:
    settings = WatcherSettings()
    assert ingress_filter_from(settings) is None
    assert resolver_from(settings).selector is None


def test_class_list_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIPPLE_WATCHER_INGRESS_CLASSES", "ripple, nginx")
    assert WatcherSettings().ingress_classes == frozenset({"ripple", "nginx"})
    monkeypatch.setenv("RIPPLE_WATCHER_INGRESS_CLASSES", '["ripple"]')
    assert WatcherSettings().ingress_classes == frozenset({"ripple"})
    monkeypatch.setenv("RIPPLE_WATCHER_INGRESS_CLASSES", " ")
    assert WatcherSettings().ingress_classes is None


def test_bad_selector_is_refused_at_startup(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RIPPLE_WATCHER_NAMESPACE_SELECTOR", "env in ()")
    assert main(["--print-settings"]) == 2
    assert "at least one value" in capsys.readouterr().err


async def test_relabelled_namespace_enters_and_leaves_the_scope_of_other_kinds() -> None:
    relabel_in, relabel_out = asyncio.Event(), asyncio.Event()
    apis = {
        "Namespace": FakeKindApi(
            listings=[("5", [namespace("shop")])],
            scripts=[
                [
                    relabel_in,
                    event("MODIFIED", namespace("shop", labels=MANAGED, rv="7")),
                    relabel_out,
                    event("MODIFIED", namespace("shop", rv="8")),
                ]
            ],
        ),
        "Ingress": FakeKindApi(listings=[("6", [ingress("shop", "web")])]),
    }
    sink = RecordingSink()
    group = WatcherGroup(
        [INGRESS],  # Namespaces not published: the selector needs the unpublished feed
        api_for=lambda spec: apis[spec.kind],
        sink_for=lambda spec: sink,
        resolver=_selecting(),
        sealer=None,
        options=WatchOptions(),
    )
    assert group.feed is not None
    stop = asyncio.Event()
    run = asyncio.create_task(group.run(stop))
    await group.watcher("Ingress").synced.wait()
    assert sink.summary() == [
        ("RELIST_STARTED", CLUSTER_TENANT, "Ingress"),
        ("RELIST_FINISHED", CLUSTER_TENANT, "Ingress"),
    ]
    relabel_in.set()
    await eventually(lambda: len(sink.envelopes) >= 3, within_s=2)
    relabel_out.set()
    await eventually(lambda: len(sink.envelopes) >= 4, within_s=2)
    stop.set()
    await asyncio.wait_for(run, 2)
    assert sink.summary()[2:] == [("ADDED", "shop", "web"), ("DELETED", "shop", "web")]


def test_deletion_of_an_unknown_object_in_scope_is_still_published() -> None:
    r = _reconciler(classes=RIPPLE)
    assert _summary(r.event("DELETED", classed("a", "web", "ripple"))) == [("DELETED", "a", "web")]


def test_help_explains_the_scope_settings(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in ("INGRESS_CLASSES", "INGRESS_INCLUDE_UNCLASSED", "NAMESPACE_SELECTOR"):
        assert f"RIPPLE_WATCHER_{name}:" in out
