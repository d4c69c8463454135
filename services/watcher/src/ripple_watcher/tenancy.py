"""Tenant resolution (pure): which Kafka key, hence which translator, an object belongs to.

The tenant is the object's namespace unless the namespace carries the configured tenant label,
whose value then names the tenant. Cluster-scoped objects (IngressClass, Namespace) belong to
`CLUSTER_TENANT`; the publisher copies them to every partition so every translator sees them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from ripple_common.envelope import CLUSTER_TENANT

# A Kubernetes label value (which can never equal CLUSTER_TENANT: it may not start with "_").
_LABEL_VALUE: Final = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


class TenantResolver:
    """Maps namespaces to tenants; fed by the Namespace watcher, read by every other kind."""

    def __init__(self, *, tenant_label: str | None) -> None:
        self._label = tenant_label
        self._overrides: dict[str, str] = {}

    @property
    def tenant_label(self) -> str | None:
        return self._label

    def tenant_of(self, namespace: str | None) -> str:
        """The tenant of an object in `namespace` (None: cluster-scoped)."""
        if not namespace:
            return CLUSTER_TENANT
        return self._overrides.get(namespace, namespace)

    def observe_namespace(self, namespace: Mapping[str, Any]) -> bool:
        """Record a Namespace object's tenant label; True when its tenant changed."""
        meta = namespace.get("metadata") or {}
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            return False
        before = self.tenant_of(name)
        value = _label_tenant(meta.get("labels"), self._label)
        if value is None or value == name:
            self._overrides.pop(name, None)
        else:
            self._overrides[name] = value
        return self.tenant_of(name) != before

    def forget_namespace(self, name: str) -> bool:
        """A deleted namespace: its objects fall back to the default tenant."""
        return self._overrides.pop(name, None) is not None

    def replace_all(self, namespaces: list[Mapping[str, Any]]) -> bool:
        """After a Namespace re-list: the listed labels are all there is. True if any changed."""
        before = dict(self._overrides)
        self._overrides.clear()
        for ns in namespaces:
            self.observe_namespace(ns)
        return before != self._overrides


def _label_tenant(labels: object, label: str | None) -> str | None:
    if label is None or not isinstance(labels, Mapping):
        return None
    value = labels.get(label)
    if not isinstance(value, str) or not _LABEL_VALUE.match(value) or value == CLUSTER_TENANT:
        return None
    return value
