"""Which tenant versions and names an xds server holds, and what to do with each change-stream
entry. Pure: the Redis follower (`source`) does the I/O.

Rules (the writer appends an entry after each atomic tenant write, at least once):
- an entry at or below the version we hold is a duplicate (or an older write announced late):
  skip it;
- the next version (held + 1): fetch the names it mentions and apply their current values
  (present -> upsert, absent -> removal). Values newer than the entry are fine: their own
  entries follow and are applied the same way;
- further ahead, or a `full` announcement ahead of us: an entry was lost (writer died between
  its tenant write and the append, or a gap); re-read the whole tenant and replace it.

Assumes resource names are unique across tenants (the translator's naming includes the
tenant); a name removed by one tenant is removed from the cache whoever wrote it last."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from ripple_common.resources import Resource, TypeUrl
from ripple_common.store_contract import ChangeEntry, TenantState

ResourceKey = tuple[TypeUrl, str]


def tenant_of(name: str) -> str | None:
    """The tenant owning a resource name: the translator names every resource
    `<tenant>/...` (the tenant holds no `/`). None for names without a tenant (the gateway's
    own listeners)."""
    tenant, sep, _ = name.partition("/")
    return tenant if sep and tenant else None


def tenants_of(names: Iterable[str]) -> tuple[str, ...]:
    """The tenants owning any of `names`, sorted, each once."""
    return tuple(sorted({t for n in names if (t := tenant_of(n)) is not None}))


class Action(enum.Enum):
    SKIP = "skip"
    FETCH = "fetch"
    RELOAD = "reload"


def plan(entry: ChangeEntry, held: int) -> Action:
    if entry.version <= held:
        return Action.SKIP
    if entry.version == held + 1 and not entry.full:
        return Action.FETCH
    return Action.RELOAD


@dataclass(frozen=True, slots=True)
class Update:
    """Arguments of one `SnapshotCache.apply`."""

    upserts: tuple[Resource, ...]
    removals: tuple[ResourceKey, ...]


class TenantTracker:
    """Per tenant: the version held and the names held (so a re-read can remove what the
    tenant no longer has). Names only, never bodies: the cache holds those."""

    def __init__(self) -> None:
        self._versions: dict[str, int] = {}
        self._names: dict[str, dict[TypeUrl, set[str]]] = {}

    def version(self, tenant: str) -> int:
        return self._versions.get(tenant, 0)

    @property
    def tenants(self) -> frozenset[str]:
        return frozenset(self._versions)

    def names(self, tenant: str) -> set[ResourceKey]:
        return {(t, n) for t, names in self._names.get(tenant, {}).items() for n in names}

    def replace(self, state: TenantState) -> Update:
        """The tenant is exactly `state` now (Redis is the truth, even if its version went
        backwards, e.g. after Redis lost data)."""
        new: dict[TypeUrl, set[str]] = {}
        for resource in state.resources:
            new.setdefault(resource.type_url, set()).add(resource.name)
        old = self._names.get(state.tenant, {})
        removals = tuple(
            sorted(
                ((t, n) for t, names in old.items() for n in names if n not in new.get(t, ())),
                key=lambda k: (k[0].short, k[1]),
            )
        )
        self._names[state.tenant] = new
        self._versions[state.tenant] = state.version
        return Update(upserts=state.resources, removals=removals)

    def merge(
        self,
        tenant: str,
        *,
        version: int,
        present: Iterable[Resource],
        absent: Iterable[ResourceKey],
    ) -> Update:
        """Apply the current values of the names an entry at `version` mentioned."""
        names = self._names.setdefault(tenant, {})
        upserts = tuple(present)
        removals = tuple(absent)
        for resource in upserts:
            names.setdefault(resource.type_url, set()).add(resource.name)
        for type_url, name in removals:
            names.get(type_url, set()).discard(name)
        self._versions[tenant] = max(self.version(tenant), version)
        return Update(upserts=upserts, removals=removals)
