"""Which Ingresses the watcher publishes, by IngressClass (pure).

The namespace half of the scope (a label selector on Namespaces) lives in the TenantResolver,
which already follows every Namespace's labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

LEGACY_CLASS_ANNOTATION: Final = "kubernetes.io/ingress.class"


def ingress_class_of(ingress: Mapping[str, Any]) -> str | None:
    """spec.ingressClassName, else the legacy annotation; None when the Ingress names none."""
    spec = ingress.get("spec")
    if isinstance(spec, Mapping):
        name = spec.get("ingressClassName")
        if isinstance(name, str) and name:
            return name
    meta = ingress.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    if isinstance(annotations, Mapping):
        legacy = annotations.get(LEGACY_CLASS_ANNOTATION)
        if isinstance(legacy, str) and legacy:
            return legacy
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class IngressClassFilter:
    """Ingresses of these classes are published; those naming no class only if asked."""

    classes: frozenset[str]
    include_unclassed: bool = False

    def admits(self, ingress: Mapping[str, Any]) -> bool:
        name = ingress_class_of(ingress)
        if name is None:
            return self.include_unclassed
        return name in self.classes
