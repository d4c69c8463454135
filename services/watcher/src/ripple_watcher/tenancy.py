"""Tenant resolution (pure): which Kafka key, hence which translator, an object belongs to.

The tenant is the object's namespace unless the namespace carries the configured tenant label,
whose value then names the tenant. Cluster-scoped objects (IngressClass, Namespace) belong to
`CLUSTER_TENANT`; the publisher copies them to every partition so every translator sees them.

With a namespace selector, the resolver also knows which namespaces are in scope: only objects
of namespaces whose labels match it are published. A change of either (tenant or selection)
is reported by `observe_namespace`, and makes the other kinds re-list (see reconcile.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from ripple_common.envelope import CLUSTER_TENANT
from ripple_watcher.selectors import LabelSelector

# A Kubernetes label value (which can never equal CLUSTER_TENANT: it may not start with "_").
_LABEL_VALUE: Final = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


class TenantResolver:
    """Maps namespaces to tenants (and, with a selector, says which are in scope); fed by the
    Namespace watcher, read by every other kind."""

    def __init__(self, *, tenant_label: str | None, selector: LabelSelector | None = None) -> None:
        self._label = tenant_label
        self._selector = selector if selector is not None and not selector.empty else None
        self._overrides: dict[str, str] = {}
        self._selected: set[str] = set()

    @property
    def tenant_label(self) -> str | None:
        return self._label

    @property
    def selector(self) -> LabelSelector | None:
        return self._selector

    @property
    def needs_namespaces(self) -> bool:
        """Whether tenants or scope depend on Namespace labels (someone must watch them)."""
        return self._label is not None or self._selector is not None

    def selected(self, namespace: str | None) -> bool:
        """Objects of `namespace` are published (cluster-scoped ones always are). Without a
        selector every namespace is; with one, only those observed with matching labels."""
        if self._selector is None or not namespace:
            return True
        return namespace in self._selected

    def selected_namespaces(self) -> frozenset[str]:
        """The namespaces observed with labels that match the selector (none without one)."""
        return frozenset(self._selected)

    def matches(self, namespace: Mapping[str, Any]) -> bool:
        """A Namespace object matches the selector (no selector: every one does)."""
        if self._selector is None:
            return True
        meta = namespace.get("metadata") or {}
        return self._selector.matches(meta.get("labels"))

    def tenant_of(self, namespace: str | None) -> str:
        """The tenant of an object in `namespace` (None: cluster-scoped)."""
        if not namespace:
            return CLUSTER_TENANT
        return self._overrides.get(namespace, namespace)

    def observe_namespace(self, namespace: Mapping[str, Any]) -> bool:
        """Record a Namespace object's labels; True when its tenant or selection changed."""
        meta = namespace.get("metadata") or {}
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            return False
        before = (self.tenant_of(name), self.selected(name))
        value = _label_tenant(meta.get("labels"), self._label)
        if value is None or value == name:
            self._overrides.pop(name, None)
        else:
            self._overrides[name] = value
        if self._selector is not None:
            if self.matches(namespace):
                self._selected.add(name)
            else:
                self._selected.discard(name)
        return (self.tenant_of(name), self.selected(name)) != before

    def forget_namespace(self, name: str) -> bool:
        """A deleted namespace: its objects fall back to the default tenant and, with a
        selector, out of scope. True when either changed."""
        was_selected = name in self._selected
        self._selected.discard(name)
        return (self._overrides.pop(name, None) is not None) or was_selected

    def replace_all(self, namespaces: list[Mapping[str, Any]]) -> bool:
        """After a Namespace re-list: the listed labels are all there is. True if any changed."""
        before = (dict(self._overrides), set(self._selected))
        self._overrides.clear()
        self._selected.clear()
        for ns in namespaces:
            self.observe_namespace(ns)
        return before != (self._overrides, self._selected)


def _label_tenant(labels: object, label: str | None) -> str | None:
    if label is None or not isinstance(labels, Mapping):
        return None
    value = labels.get(label)
    if not isinstance(value, str) or not _LABEL_VALUE.match(value) or value == CLUSTER_TENANT:
        return None
    return value
