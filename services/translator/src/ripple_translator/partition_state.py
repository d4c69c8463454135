"""A partition's state and how envelopes change it (pure: no I/O, no clock): the one core the
translator's engine and `ripple replay` both apply events with.

- `TenantObjects`: the sanitized objects of one tenant, keyed by (kind, namespace, name), as
  the watcher published them. `state()` turns them into the `TenantState` that `translate`
  takes.
- `PartitionObjects`: what a partition carries besides its tenants' objects: the cluster-scoped
  objects (IngressClass; the watcher copies them to every partition) and the re-lists in
  progress. Between RELIST_STARTED and RELIST_FINISHED of a kind, every object key of that kind
  seen on the partition is remembered; at FINISHED each tenant drops the objects of that kind
  it holds but which were not seen (deleted while the watch was down).
- `PartitionState.apply`: the event rules. One envelope read at an offset changes a tenant's
  objects, the partition's IngressClasses (every tenant re-translates) or a re-list; events
  below a tenant's stored position (`TenantTable.covered`) are only seen, and IngressClass
  events below `classes_offset` likewise. It returns what changed (`Applied`); the caller
  does the I/O (loading a tenant first, storing the partition state, scheduling writes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from ripple_common.envelope import CLUSTER_TENANT, Envelope, EventType
from ripple_translator.oversized import as_removal
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
OBJECT_EVENTS: Final = frozenset({EventType.ADDED, EventType.MODIFIED, EventType.DELETED})


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
        if envelope.type not in OBJECT_EVENTS:
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


class TenantTable(Protocol):
    """The tenants an event may change: the engine's loaded slots of the partition, or the
    tenants `ripple replay` follows."""

    def objects(self, tenant: str) -> TenantObjects | None:
        """The tenant's objects (None: not held here)."""
        ...

    def covered(self, tenant: str) -> int:
        """The Kafka position the tenant's stored inputs cover (events below it are in them)."""
        ...

    def names(self) -> Iterable[str]:
        """Every tenant held, in order."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Applied:
    """What one envelope changed."""

    # The tenant of an object event applied to its objects (changed or not), if it is held.
    tenant: str | None = None
    # Per changed tenant, the object keys changed (none: only its cluster inputs changed).
    changed: Mapping[str, tuple[ObjectKey, ...]] = field(default_factory=dict)
    classes_changed: bool = False
    relist_started: tuple[str, int] | None = None  # (kind, offset)
    relist_finished: RelistEnd | None = None
    unmatched_relist: bool = False  # a RELIST_FINISHED without its start: nothing dropped
    unexpected_marker: bool = False  # a marker keyed by a tenant: ignored


@dataclass(slots=True, kw_only=True)
class PartitionState:
    """A partition's cluster objects and re-lists, and the event rules over its tenants.
    IngressClass events below `classes_offset` are in the stored classes already."""

    objects: PartitionObjects = field(default_factory=PartitionObjects)
    classes_offset: int = 0

    @staticmethod
    def tenant_of(envelope: Envelope) -> str | None:
        """The tenant whose objects the envelope may change (None: a cluster event or a
        marker): the caller makes sure it holds that tenant before `apply`."""
        if is_cluster_event(envelope) or normalized(envelope).type not in OBJECT_EVENTS:
            return None
        return envelope.tenant

    def apply(self, envelope: Envelope, *, offset: int, tenants: TenantTable) -> Applied:
        """Apply one envelope read at `offset` (an object too large to publish counts as
        deleted: it is not served)."""
        envelope = normalized(envelope)
        if is_cluster_event(envelope):
            return self._cluster_event(envelope, offset, tenants)
        if envelope.type not in OBJECT_EVENTS:
            return Applied(unexpected_marker=True)
        self.objects.see(envelope)
        held = tenants.objects(envelope.tenant)
        if held is None:
            return Applied()
        if offset < tenants.covered(envelope.tenant):
            return Applied()  # already in the stored inputs
        if not held.apply(envelope):
            return Applied(tenant=envelope.tenant)
        return Applied(tenant=envelope.tenant, changed={envelope.tenant: (object_key(envelope),)})

    def _cluster_event(self, envelope: Envelope, offset: int, tenants: TenantTable) -> Applied:
        if envelope.type is EventType.RELIST_STARTED:
            self.objects.start_relist(envelope.kind, offset=offset)
            return Applied(relist_started=(envelope.kind, offset))
        if envelope.type is EventType.RELIST_FINISHED:
            end = self.objects.finish_relist(envelope.kind, offset=offset)
            if end is None:
                return Applied(unmatched_relist=True)
            if envelope.kind in CLUSTER_KINDS:
                changed = offset >= self.classes_offset and self.objects.drop_unseen_classes(end)
                return self._classes(offset, tenants, changed, finished=end)
            dropped: dict[str, tuple[ObjectKey, ...]] = {}
            for tenant in tenants.names():
                held = tenants.objects(tenant)
                if held is None or offset < tenants.covered(tenant):
                    continue
                gone = held.drop_unseen(envelope.kind, end.seen)
                if gone:
                    dropped[tenant] = tuple(gone)
            return Applied(changed=dropped, relist_finished=end)
        if envelope.kind not in CLUSTER_KINDS:
            return Applied()
        if offset < self.classes_offset:
            self.objects.see(envelope)
            return Applied()
        return self._classes(offset, tenants, self.objects.apply_cluster(envelope))

    def _classes(
        self,
        offset: int,
        tenants: TenantTable,
        changed: bool,
        *,
        finished: RelistEnd | None = None,
    ) -> Applied:
        """After an IngressClass change at `offset`: every tenant not past it re-translates."""
        if not changed:
            return Applied(relist_finished=finished)
        self.classes_offset = offset + 1
        every = {t: () for t in tenants.names() if offset >= tenants.covered(t)}
        return Applied(changed=every, classes_changed=True, relist_finished=finished)


def normalized(envelope: Envelope) -> Envelope:
    """An object too large to publish is not served: its state is as if it were deleted."""
    return as_removal(envelope) if envelope.type is EventType.TOO_LARGE else envelope
