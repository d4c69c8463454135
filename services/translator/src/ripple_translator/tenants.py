"""In-memory Kubernetes objects of one tenant and of one partition, and how envelopes change
them (pure: no I/O, no clock).

- `TenantObjects`: the sanitized objects of one tenant, keyed by (kind, namespace, name), as
  the watcher published them. `state()` turns them into the `TenantState` that `translate`
  takes.
- `PartitionObjects`: what a partition carries besides its tenants' objects: the cluster-scoped
  objects (IngressClass; the watcher copies them to every partition) and the re-lists in
  progress. Between RELIST_STARTED and RELIST_FINISHED of a kind, every object key of that kind
  seen on the partition is remembered; at FINISHED each tenant drops the objects of that kind
  it holds but which were not seen (deleted while the watch was down).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ripple_common.envelope import CLUSTER_TENANT, Envelope, EventType
from ripple_translator.translate import TenantState

JsonObject = Mapping[str, Any]
# (kind, namespace or "", name)
ObjectKey = tuple[str, str, str]

INGRESS_CLASS: Final = "IngressClass"
# Kinds the translation reads, and the TenantState field each goes to. Other namespaced kinds
# are kept (so stored inputs stay complete) but not translated.
TRANSLATED_KINDS: Final[Mapping[str, str]] = {
    "Ingress": "ingresses",
    "Service": "services",
    "EndpointSlice": "endpoint_slices",
    "Secret": "secrets",
    "ConfigMap": "config_maps",
    "Gateway": "gateways",
    "HTTPRoute": "http_routes",
}
# Cluster-scoped kinds the translator keeps per partition.
CLUSTER_KINDS: Final = frozenset({INGRESS_CLASS})


def object_key(envelope: Envelope) -> ObjectKey:
    return (envelope.kind, envelope.namespace or "", envelope.name)


def encode_key(key: ObjectKey) -> str:
    """A key as one string (kind/namespace/name: none of the three may hold a slash)."""
    return "/".join(key)


def decode_key(text: str) -> ObjectKey:
    kind, namespace, name = text.split("/", 2)
    return (kind, namespace, name)


@dataclass(slots=True)
class TenantObjects:
    """One tenant's objects. `apply` returns whether the set changed."""

    tenant: str
    objects: dict[ObjectKey, JsonObject] = field(default_factory=dict)

    def apply(self, envelope: Envelope) -> bool:
        if envelope.type not in (EventType.ADDED, EventType.MODIFIED, EventType.DELETED):
            raise ValueError(f"{envelope.type} is not an object event")
        if envelope.tenant != self.tenant:
            raise ValueError(f"envelope of tenant {envelope.tenant!r} applied to {self.tenant!r}")
        key = object_key(envelope)
        if envelope.type is EventType.DELETED or envelope.object is None:
            return self.objects.pop(key, None) is not None
        if self.objects.get(key) == envelope.object:
            return False
        self.objects[key] = envelope.object
        return True

    def drop_unseen(self, kind: str, seen: Iterable[ObjectKey]) -> list[ObjectKey]:
        """Remove every object of `kind` whose key is not in `seen`; return the removed keys."""
        keep = set(seen)
        gone = sorted(k for k in self.objects if k[0] == kind and k not in keep)
        for key in gone:
            del self.objects[key]
        return gone

    def state(
        self, *, secret_view: Callable[[JsonObject], JsonObject] | None = None
    ) -> TenantState:
        """The objects as `translate` takes them; `secret_view` maps each Secret first (to
        open sealed private keys)."""
        fields: dict[str, list[JsonObject]] = {name: [] for name in TRANSLATED_KINDS.values()}
        for key in sorted(self.objects):
            target = TRANSLATED_KINDS.get(key[0])
            if target is None:
                continue
            obj = self.objects[key]
            if secret_view is not None and key[0] == "Secret":
                obj = secret_view(obj)
            fields[target].append(obj)
        return TenantState(
            tenant=self.tenant,
            ingresses=tuple(fields["ingresses"]),
            services=tuple(fields["services"]),
            endpoint_slices=tuple(fields["endpoint_slices"]),
            secrets=tuple(fields["secrets"]),
            config_maps=tuple(fields["config_maps"]),
            gateways=tuple(fields["gateways"]),
            http_routes=tuple(fields["http_routes"]),
        )


@dataclass(frozen=True, slots=True)
class RelistEnd:
    """A finished re-list: every key of `kind` seen on the partition since `started_at`."""

    kind: str
    started_at: int
    finished_at: int
    seen: frozenset[ObjectKey]


@dataclass(slots=True)
class _Relist:
    started_at: int
    seen: set[ObjectKey] = field(default_factory=set)


@dataclass(slots=True)
class PartitionObjects:
    """Cluster-scoped objects and re-list tracking of one partition."""

    classes: dict[str, JsonObject] = field(default_factory=dict)
    relists: dict[str, _Relist] = field(default_factory=dict)

    def apply_cluster(self, envelope: Envelope) -> bool:
        """Apply an IngressClass (or another cluster-scoped) event; True if the set changed."""
        if envelope.kind not in CLUSTER_KINDS:
            return False
        self.see(envelope)
        if envelope.type is EventType.DELETED or envelope.object is None:
            return self.classes.pop(envelope.name, None) is not None
        if self.classes.get(envelope.name) == envelope.object:
            return False
        self.classes[envelope.name] = envelope.object
        return True

    def see(self, envelope: Envelope) -> None:
        """Record an object event for the re-list of its kind, if one is in progress."""
        relist = self.relists.get(envelope.kind)
        if relist is not None and envelope.type is not EventType.DELETED:
            relist.seen.add(object_key(envelope))

    def start_relist(self, kind: str, *, offset: int) -> None:
        self.relists[kind] = _Relist(started_at=offset)

    def finish_relist(self, kind: str, *, offset: int) -> RelistEnd | None:
        """End the re-list of `kind`; None when its start was never seen (nothing may be
        dropped then: the translator cannot tell what the re-list contained)."""
        relist = self.relists.pop(kind, None)
        if relist is None:
            return None
        return RelistEnd(
            kind=kind, started_at=relist.started_at, finished_at=offset, seen=frozenset(relist.seen)
        )

    def drop_unseen_classes(self, end: RelistEnd) -> bool:
        """Apply a finished IngressClass re-list to the cluster objects; True if any dropped."""
        if end.kind not in CLUSTER_KINDS:
            return False
        seen = {key[2] for key in end.seen}
        gone = [name for name in self.classes if name not in seen]
        for name in gone:
            del self.classes[name]
        return bool(gone)

    def class_objects(self) -> tuple[JsonObject, ...]:
        return tuple(self.classes[name] for name in sorted(self.classes))


def is_cluster_event(envelope: Envelope) -> bool:
    return envelope.tenant == CLUSTER_TENANT
