"""In-memory, versioned resource store: the xds server's view of every resource, by type and
name. The Redis follower feeds it with `apply`; every ADS stream subscribes to it and is told
which names changed. Each resource's content version is computed once here, not per stream.

Pure logic: no I/O, no grpc. Callbacks run synchronously inside `apply` and must be cheap
(a stream merges the names into its inbox and wakes its task)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from ripple_common.resources import Resource, TypeUrl
from ripple_xds.eds_name import eds_service_name


def item_token(name: str, version: str) -> int:
    """A deterministic 64-bit hash of (name, version): equal on every replica and process
    (unlike `hash()`), so digests built from it name the same content the same everywhere."""
    digest = hashlib.blake2b(f"{name}\0{version}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass(frozen=True, slots=True)
class Entry:
    """A cached resource with its content version (`Resource.version`) and `item_token`,
    and for a Cluster the ClusterLoadAssignment it warms on (`endpoints`: its EDS service
    name, which other clusters may share), all computed once here rather than once per
    stream."""

    resource: Resource
    version: str
    token: int
    endpoints: str | None = None

    @classmethod
    def of(cls, resource: Resource) -> Entry:
        version = resource.version
        endpoints = None
        if resource.type_url is TypeUrl.CLUSTER:
            endpoints = eds_service_name(resource.name, resource.body)
        return cls(
            resource=resource,
            version=version,
            token=item_token(resource.name, version),
            endpoints=endpoints,
        )

    @property
    def name(self) -> str:
        return self.resource.name


@dataclass(frozen=True, slots=True)
class CacheChange:
    """What one `apply` changed: per type, the names upserted with new content or removed,
    and the type's revision after the change."""

    names: Mapping[TypeUrl, frozenset[str]]
    revisions: Mapping[TypeUrl, int]


class CacheView(Protocol):
    """What the protocol state machines read: the current resources of each type."""

    def get(self, type_url: TypeUrl, name: str) -> Entry | None: ...

    def names(self, type_url: TypeUrl) -> Collection[str]: ...


ChangeCallback = Callable[[CacheChange], None]


class Subscription:
    """Handle returned by `SnapshotCache.subscribe`; `close()` stops the notifications."""

    __slots__ = ("_cache", "_key")

    def __init__(self, cache: SnapshotCache, key: int) -> None:
        self._cache = cache
        self._key = key

    def close(self) -> None:
        self._cache._unsubscribe(self._key)


class SnapshotCache:
    """Resources per type and name, a monotonic revision per type, change notifications.
    Not thread-safe: apply changes on the event loop that runs the subscribed streams."""

    def __init__(self) -> None:
        self._entries: dict[TypeUrl, dict[str, Entry]] = {t: {} for t in TypeUrl}
        self._revisions: dict[TypeUrl, int] = dict.fromkeys(TypeUrl, 0)
        self._callbacks: dict[int, ChangeCallback] = {}
        self._next_key = 0

    # -- reading (CacheView) --------------------------------------------------------------

    def get(self, type_url: TypeUrl, name: str) -> Entry | None:
        return self._entries[type_url].get(name)

    def names(self, type_url: TypeUrl) -> Collection[str]:
        return self._entries[type_url].keys()

    def revision(self, type_url: TypeUrl) -> int:
        """Bumped once per `apply` that changes at least one resource of the type."""
        return self._revisions[type_url]

    def __len__(self) -> int:
        return sum(len(by_name) for by_name in self._entries.values())

    # -- writing --------------------------------------------------------------------------

    def apply(
        self,
        *,
        upserts: Iterable[Resource] = (),
        removals: Iterable[tuple[TypeUrl, str]] = (),
    ) -> CacheChange | None:
        """Upsert and remove resources atomically (callbacks see the whole change at once).
        Upserting equal bytes or removing an absent name is no change; returns None when
        nothing changed. A (type, name) given twice in one call is an error."""
        seen: set[tuple[TypeUrl, str]] = set()
        changed: dict[TypeUrl, set[str]] = {}
        staged: list[Entry] = []
        for resource in upserts:
            key = (resource.type_url, resource.name)
            if key in seen:
                raise ValueError(f"{resource.type_url.short} {resource.name!r} given twice")
            seen.add(key)
            staged.append(Entry.of(resource))
        drops: list[tuple[TypeUrl, str]] = []
        for key in removals:
            if key in seen:
                raise ValueError(f"{key[0].short} {key[1]!r} given twice")
            seen.add(key)
            drops.append(key)

        for entry in staged:
            by_name = self._entries[entry.resource.type_url]
            old = by_name.get(entry.name)
            if old is not None and old.version == entry.version:
                continue
            by_name[entry.name] = entry
            changed.setdefault(entry.resource.type_url, set()).add(entry.name)
        for type_url, name in drops:
            if self._entries[type_url].pop(name, None) is not None:
                changed.setdefault(type_url, set()).add(name)
        if not changed:
            return None

        for type_url in changed:
            self._revisions[type_url] += 1
        change = CacheChange(
            names={t: frozenset(n) for t, n in changed.items()},
            revisions={t: self._revisions[t] for t in changed},
        )
        for callback in list(self._callbacks.values()):
            callback(change)
        return change

    # -- notifications --------------------------------------------------------------------

    def subscribe(self, callback: ChangeCallback) -> Subscription:
        key = self._next_key
        self._next_key += 1
        self._callbacks[key] = callback
        return Subscription(self, key)

    @property
    def subscriber_count(self) -> int:
        return len(self._callbacks)

    def _unsubscribe(self, key: int) -> None:
        self._callbacks.pop(key, None)
