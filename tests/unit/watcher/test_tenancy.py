from __future__ import annotations

from ripple_common.envelope import CLUSTER_TENANT
from ripple_watcher.tenancy import TenantResolver
from tests.unit.watcher.fakes import namespace

LABEL = "ripple.io/tenant"


def test_tenant_is_the_namespace_by_default() -> None:
    assert TenantResolver(tenant_label=LABEL).tenant_of("shop") == "shop"


def test_cluster_scoped_objects_belong_to_the_cluster_tenant() -> None:
    assert TenantResolver(tenant_label=LABEL).tenant_of(None) == CLUSTER_TENANT


def test_namespace_label_overrides_the_tenant() -> None:
    r = TenantResolver(tenant_label=LABEL)
    assert r.observe_namespace(namespace("shop-prod", labels={LABEL: "acme"})) is True
    assert r.tenant_of("shop-prod") == "acme"


def test_removing_the_label_restores_the_namespace_tenant() -> None:
    r = TenantResolver(tenant_label=LABEL)
    r.observe_namespace(namespace("shop", labels={LABEL: "acme"}))
    assert r.observe_namespace(namespace("shop")) is True
    assert r.tenant_of("shop") == "shop"


def test_unchanged_label_reports_no_change() -> None:
    r = TenantResolver(tenant_label=LABEL)
    r.observe_namespace(namespace("shop", labels={LABEL: "acme"}))
    assert r.observe_namespace(namespace("shop", labels={LABEL: "acme"}, rv="2")) is False


def test_labels_are_ignored_without_a_configured_label() -> None:
    r = TenantResolver(tenant_label=None)
    r.observe_namespace(namespace("shop", labels={LABEL: "acme"}))
    assert r.tenant_of("shop") == "shop"


def test_a_label_cannot_claim_the_cluster_tenant() -> None:
    r = TenantResolver(tenant_label=LABEL)
    r.observe_namespace(namespace("shop", labels={LABEL: CLUSTER_TENANT}))
    assert r.tenant_of("shop") == "shop"


def test_replace_all_forgets_namespaces_not_listed() -> None:
    r = TenantResolver(tenant_label=LABEL)
    r.observe_namespace(namespace("a", labels={LABEL: "acme"}))
    assert r.replace_all([namespace("b", labels={LABEL: "beta"})]) is True
    assert (r.tenant_of("a"), r.tenant_of("b")) == ("a", "beta")
