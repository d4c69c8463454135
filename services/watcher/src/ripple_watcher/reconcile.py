"""From Kubernetes events and listings to envelopes (pure).

Per kind, the reconciler remembers what it published of each object (uid, tenant, fingerprint,
resourceVersion; never the object itself). That gives three things:

- a write that changes nothing routing-relevant (same fingerprint) is not published;
- an object whose tenant changed (namespace relabelled) is deleted under the old tenant and
  added under the new one;
- after a re-list, objects it published that the list lacks (deleted while the watch was down)
  come out as DELETED events;
- with a scope (namespace selector, IngressClass filter), an object is only published while in
  scope: one that leaves it (its Ingress class changed, its namespace stopped matching) comes
  out as DELETED, one that enters it as ADDED. Namespace label changes reach the other kinds
  the way tenant changes do: the Namespace reconciler reports them, the others re-list (diff).

A re-list is *full* when the reconciler does not trust its memory (at process start, or after
a publish failed): then it publishes RELIST_STARTED, every listed object, the deletions it knows
of, and RELIST_FINISHED. The markers are keyed CLUSTER_TENANT and go to every partition: a
translator drops, per partition, every object of the kind (in any tenant on that partition)
that it did not see between them. That covers tenants the watcher never heard of in this
process (a watcher restart). Once trusted, a re-list (after 410 Gone, an idle or dropped watch)
is a *diff*: only changed objects and deletions, no markers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ripple_common.envelope import CLUSTER_TENANT, Envelope, EventType
from ripple_common.sealing import Sealer
from ripple_watcher.api_time import api_time_ns
from ripple_watcher.kinds import KindSpec
from ripple_watcher.sanitize import fingerprint, sanitize
from ripple_watcher.scope import IngressClassFilter
from ripple_watcher.tenancy import TenantResolver

ObjectKey = tuple[str, str]  # (namespace or "", name)


@dataclass(frozen=True, slots=True, kw_only=True)
class Known:
    """What was last published of one object."""

    uid: str
    tenant: str
    fingerprint: str
    resource_version: str


class Reconciler:
    """Turns one kind's watch events and listings into envelopes to publish, in order."""

    def __init__(
        self,
        spec: KindSpec,
        *,
        resolver: TenantResolver,
        sealer: Sealer | None,
        clock: Callable[[], int] = time.time_ns,
        on_tenant_change: Callable[[str], None] | None = None,
        ingress_classes: IngressClassFilter | None = None,
    ) -> None:
        if spec.kind == "Secret" and sealer is None:
            raise ValueError("Secrets are only published sealed: a sealing key is required")
        self.spec = spec
        self._resolver = resolver
        self._sealer = sealer
        self._clock = clock
        self._on_tenant_change = on_tenant_change
        self._classes = ingress_classes if spec.kind == "Ingress" else None
        self._known: dict[ObjectKey, Known] = {}
        self._trusted = False

    @property
    def trusted(self) -> bool:
        return self._trusted

    def __len__(self) -> int:
        return len(self._known)

    def known(self, namespace: str | None, name: str) -> Known | None:
        return self._known.get((namespace or "", name))

    def distrust(self) -> None:
        """What was handed to the publisher may not have reached Kafka: re-list in full."""
        self._trusted = False

    def event(self, event_type: str, obj: Mapping[str, Any]) -> list[Envelope]:
        """Envelopes for one watch event (ADDED, MODIFIED or DELETED); [] when irrelevant."""
        api_ns = api_time_ns(event_type, obj)  # before sanitizing: it drops managedFields
        clean = sanitize(self.spec, obj)
        if event_type == EventType.DELETED:
            return self._delete(_key(clean), clean, api_ns=api_ns)
        return self._upsert(clean, force=False, api_ns=api_ns)

    def begin_relist(self, resource_version: str) -> Relist:
        return Relist(self, resource_version=resource_version, full=not self._trusted)

    # -- internals shared with Relist --

    def _upsert(
        self, clean: dict[str, Any], *, force: bool, api_ns: int | None = None
    ) -> list[Envelope]:
        meta = clean["metadata"]
        key = _key(clean)
        namespace = meta.get("namespace")
        if self.spec.kind == "Namespace" and self._resolver.observe_namespace(clean):
            self._tenant_changed(key[1])
        if not self._in_scope(clean):
            # Out of scope: never published, or no longer (the translator must forget it).
            gone = self._known.pop(key, None)
            return [] if gone is None else [self._deleted(key, gone, obj=None)]
        tenant = self._resolver.tenant_of(namespace)
        fp = fingerprint(clean)
        uid = str(meta.get("uid", ""))
        rv = str(meta.get("resourceVersion", ""))
        prev = self._known.get(key)
        out: list[Envelope] = []
        if prev is not None and prev.uid == uid and prev.tenant == tenant:
            self._known[key] = Known(uid=uid, tenant=tenant, fingerprint=fp, resource_version=rv)
            if prev.fingerprint == fp and not force:
                return out
            event_type = EventType.MODIFIED
        else:
            # New, recreated (new uid) or moved to another tenant: an addition there.
            if prev is not None and prev.tenant != tenant:
                out.append(self._deleted(key, prev, obj=None))
            event_type = EventType.ADDED
            self._known[key] = Known(uid=uid, tenant=tenant, fingerprint=fp, resource_version=rv)
        out.append(self._envelope(event_type, tenant=tenant, obj=clean, api_ns=api_ns))
        return out

    def _delete(
        self, key: ObjectKey, clean: dict[str, Any] | None, *, api_ns: int | None = None
    ) -> list[Envelope]:
        prev = self._known.pop(key, None)
        # An object never published (out of scope) is not un-published either.
        in_scope = clean is not None and self._in_scope(clean)
        if self.spec.kind == "Namespace" and self._resolver.forget_namespace(key[1]):
            self._tenant_changed(key[1])
        if clean is None:
            return [] if prev is None else [self._deleted(key, prev, obj=None)]
        if prev is None and not in_scope:
            return []
        tenant = prev.tenant if prev is not None else self._resolver.tenant_of(key[0] or None)
        return [self._envelope(EventType.DELETED, tenant=tenant, obj=clean, api_ns=api_ns)]

    def _in_scope(self, clean: Mapping[str, Any]) -> bool:
        """Published at all: its namespace is selected and, for an Ingress, its class is."""
        if self.spec.kind == "Namespace":
            return self._resolver.matches(clean)
        meta = clean.get("metadata") or {}
        if not self._resolver.selected(meta.get("namespace")):
            return False
        return self._classes is None or self._classes.admits(clean)

    def _deleted(self, key: ObjectKey, prev: Known, *, obj: dict[str, Any] | None) -> Envelope:
        return Envelope(
            type=EventType.DELETED,
            kind=self.spec.kind,
            tenant=prev.tenant,
            namespace=key[0] or None,
            name=key[1],
            uid=prev.uid,
            resource_version=prev.resource_version,
            observed_at_ns=self._clock(),
            object=obj,
        )

    def _envelope(
        self, event_type: EventType, *, tenant: str, obj: dict[str, Any], api_ns: int | None
    ) -> Envelope:
        meta = obj["metadata"]
        published = obj
        if self.spec.kind == "Secret" and self._sealer is not None:
            published = self._sealer.seal_secret(obj)
        return Envelope(
            type=event_type,
            kind=self.spec.kind,
            tenant=tenant,
            namespace=meta.get("namespace"),
            name=str(meta.get("name", "")),
            uid=str(meta.get("uid", "")),
            resource_version=str(meta.get("resourceVersion", "")),
            observed_at_ns=self._clock(),
            object=published,
            api_at_ns=api_ns,
        )

    def _marker(self, event_type: EventType, resource_version: str) -> Envelope:
        return Envelope(
            type=event_type,
            kind=self.spec.kind,
            tenant=CLUSTER_TENANT,
            namespace=None,
            name="",
            uid="",
            resource_version=resource_version,
            observed_at_ns=self._clock(),
        )

    def _tenant_changed(self, namespace: str) -> None:
        if self._on_tenant_change is not None:
            self._on_tenant_change(namespace)


class Relist:
    """One re-list in progress: feed it every listed object, then finish it."""

    def __init__(self, reconciler: Reconciler, *, resource_version: str, full: bool) -> None:
        self._r = reconciler
        self.resource_version = resource_version
        self.full = full
        self._seen: set[ObjectKey] = set()
        self.listed = 0

    def start(self) -> list[Envelope]:
        if not self.full:
            return []
        return [self._r._marker(EventType.RELIST_STARTED, self.resource_version)]

    def item(self, obj: Mapping[str, Any]) -> list[Envelope]:
        api_ns = api_time_ns(EventType.ADDED, obj)  # before sanitizing: it drops managedFields
        clean = sanitize(self._r.spec, obj)
        self._seen.add(_key(clean))
        self.listed += 1
        return self._r._upsert(clean, force=self.full, api_ns=api_ns)

    def finish(self) -> list[Envelope]:
        gone = [key for key in self._r._known if key not in self._seen]
        out: list[Envelope] = []
        for key in gone:
            out.extend(self._r._delete(key, None))
        if self.full:
            out.append(self._r._marker(EventType.RELIST_FINISHED, self.resource_version))
        self._r._trusted = True
        return out


def _key(clean: Mapping[str, Any]) -> ObjectKey:
    meta = clean.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name", "")))
