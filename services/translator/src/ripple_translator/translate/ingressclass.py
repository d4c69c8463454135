"""Which Ingresses this controller serves (IngressClass selection).

In order, as ingress-nginx decides:

1. the legacy annotation ``kubernetes.io/ingress.class``, if set: served if it names one of our
   classes;
2. ``spec.ingressClassName``, if set: served if it names one of our classes;
3. neither: served if the cluster's default IngressClass (annotation
   ``ingressclass.kubernetes.io/is-default-class: "true"``; the newest if several) is ours, or,
   with no default class at all, if `ClassPolicy.watch_without_class` is set (ingress-nginx's
   ``--watch-ingress-without-class``).

"Our classes" are the IngressClasses whose ``spec.controller`` is one of
`ClassPolicy.controllers`, plus `ClassPolicy.extra_class_names` (class names handled without an
IngressClass object, as ingress-nginx's ``--ingress-class``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ripple_translator.translate.model import Ingress, IngressClass

LEGACY_CLASS_ANNOTATION: Final = "kubernetes.io/ingress.class"
DEFAULT_CONTROLLER: Final = "ripple.dev/ingress-controller"


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassPolicy:
    controllers: frozenset[str] = frozenset({DEFAULT_CONTROLLER})
    extra_class_names: frozenset[str] = frozenset()
    watch_without_class: bool = False


@dataclass(frozen=True, slots=True)
class ClassSelector:
    """The class decision for every Ingress, from the cluster's IngressClasses."""

    ours: frozenset[str]
    default_is_ours: bool | None  # None: the cluster has no default class

    @classmethod
    def build(cls, classes: Sequence[IngressClass], policy: ClassPolicy) -> ClassSelector:
        ours = {c.meta.name for c in classes if c.controller in policy.controllers}
        defaults = sorted(
            (c for c in classes if c.is_default),
            key=lambda c: c.meta.age_key,
        )
        default_is_ours = None
        if defaults:
            default_is_ours = defaults[-1].controller in policy.controllers
        elif policy.watch_without_class:
            default_is_ours = True
        return cls(frozenset(ours | policy.extra_class_names), default_is_ours)

    def serves(self, ingress: Ingress) -> bool:
        legacy = ingress.meta.annotations.get(LEGACY_CLASS_ANNOTATION, "").strip()
        if legacy:
            return legacy in self.ours
        if ingress.class_name:
            return ingress.class_name in self.ours
        return bool(self.default_is_ours)
