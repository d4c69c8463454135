"""What the translator asks of its tenant store: the `TenantStore` Protocol, its values and
errors, and the pure rules behind them (diffing, host-claim ordering). No I/O."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from ripple_common.resources import Resource, TypeUrl
from ripple_common.store_contract import KafkaOffset

ResourceKey = tuple[TypeUrl, str]


class StoreError(Exception):
    """Base of the store's errors."""


class VersionConflictError(StoreError):
    """Fencing: the tenant is not at the version the writer expected (another translator wrote
    a newer one, or this one's view is stale). Nothing was written; the writer must stop
    writing this tenant (ownership moved) or reload its checkpoint."""

    def __init__(self, tenant: str, *, expected: int, actual: int) -> None:
        super().__init__(f"tenant {tenant!r} is at version {actual}, expected {expected}")
        self.tenant = tenant
        self.expected = expected
        self.actual = actual


class AnnounceError(StoreError):
    """The tenant version was written (durable) but its `ripple.changes` entry was not
    appended. Readers catch up at the tenant's next entry (they see the version jump) or at
    the next `announce`; callers should retry `announce`."""

    def __init__(self, tenant: str, version: int, cause: BaseException) -> None:
        super().__init__(f"tenant {tenant!r} version {version} written but not announced: {cause}")
        self.tenant = tenant
        self.version = version


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a translator needs to resume a tenant: its version (the next write's
    `expected_version`), the Kafka position that version covers (None: never written) and
    the content version (`Resource.version`) of every stored resource, to diff against."""

    tenant: str
    version: int
    offset: KafkaOffset | None
    resource_versions: Mapping[ResourceKey, str]


@dataclass(frozen=True, slots=True)
class Diff:
    upserts: tuple[Resource, ...]
    removals: tuple[ResourceKey, ...]

    def __bool__(self) -> bool:
        return bool(self.upserts or self.removals)


def diff_resources(stored: Mapping[ResourceKey, str], desired: Iterable[Resource]) -> Diff:
    """Upserts (new or different content) and removals (stored but no longer desired) that
    turn `stored` (content versions) into `desired`. Deterministic order."""
    wanted: dict[ResourceKey, Resource] = {}
    for resource in desired:
        key = (resource.type_url, resource.name)
        if key in wanted:
            raise ValueError(f"{resource.type_url.short} {resource.name!r} given twice")
        wanted[key] = resource
    upserts = tuple(
        r for key, r in sorted(wanted.items(), key=_key_order) if stored.get(key) != r.version
    )
    removals = tuple(sorted((k for k in stored if k not in wanted), key=_order))
    return Diff(upserts=upserts, removals=removals)


def _order(key: ResourceKey) -> tuple[str, str]:
    return (key[0].short, key[1])


def _key_order(item: tuple[ResourceKey, Resource]) -> tuple[str, str]:
    return _order(item[0])


def apply_diff(stored: Mapping[ResourceKey, str], diff: Diff) -> dict[ResourceKey, str]:
    """`stored` after `diff` was written (the translator's new baseline)."""
    out = dict(stored)
    for resource in diff.upserts:
        out[(resource.type_url, resource.name)] = resource.version
    for key in diff.removals:
        out.pop(key, None)
    return out


# -- host ownership ---------------------------------------------------------------------------


class ClaimStatus(enum.StrEnum):
    OWNED = "owned"  # the claimer owns the host (newly, or it already did)
    TAKEN = "taken"  # the claimer is older than the previous owner and took the host over
    LOST = "lost"  # another tenant with an older claim owns it


@dataclass(frozen=True, slots=True)
class HostClaim:
    """The outcome of one host claim: who owns the host now and since when (the owner's
    claim time); `previous` is the displaced tenant when status is TAKEN."""

    host: str
    status: ClaimStatus
    owner: str
    owner_created_at: datetime
    previous: str | None = None
    # Other tenants that may still serve the host (they have not withdrawn its scope yet): a
    # granted host is served only once this is empty, so no host maps to two tenants.
    others: tuple[str, ...] = ()

    @property
    def granted(self) -> bool:
        return self.status is not ClaimStatus.LOST

    @property
    def servable(self) -> bool:
        return self.granted and not self.others


class HostState(enum.StrEnum):
    """What a tenant recorded about each host it asked for (`P:{t}:hosts`), so that a
    translator taking the tenant over can tell whether the world moved meanwhile."""

    SERVED = "served"  # owned and served
    BLOCKED = "blocked"  # owned, waiting for the previous owner to withdraw its scope
    LOST = "lost"  # another tenant owns it


@dataclass(frozen=True, slots=True)
class HostView:
    """A host's owner (None: unclaimed) and the tenants that may serve it."""

    owner: str | None
    serving: frozenset[str]


def host_stale(tenant: str, state: HostState, view: HostView) -> bool:
    """Whether `tenant`'s recorded `state` of a host no longer matches Redis (it must be
    re-translated): it serves a host it lost, waits for a host now free to serve, or lost a
    host that is free now."""
    if state is HostState.SERVED:
        return view.owner != tenant
    if state is HostState.BLOCKED:
        return view.owner != tenant or view.serving <= {tenant}
    return view.owner is None or view.owner == tenant


@dataclass(frozen=True, slots=True)
class HostNotice:
    """One `P.hostevents` entry: `tenant` must re-translate because `host` changed hands."""

    tenant: str
    host: str
    why: str


def to_micros(created_at: datetime) -> int:
    """A claim time as integer epoch microseconds (exact in Lua's doubles until year 2255)."""
    if created_at.tzinfo is None:
        raise ValueError("claim time must be timezone-aware (Ingress creationTimestamp is UTC)")
    delta = created_at - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros // 1_000_000, tz=UTC).replace(
        microsecond=micros % 1_000_000
    )


def claim_wins(
    *, claimer: str, claimer_micros: int, owner: str | None, owner_micros: int | None
) -> bool:
    """The arbitration rule (the Lua claim script implements the same): no owner, the same
    tenant, or an older claim (earlier time, then smaller tenant name bytewise) wins."""
    if owner is None or owner == claimer:
        return True
    assert owner_micros is not None
    return (claimer_micros, claimer.encode()) < (owner_micros, owner.encode())


# -- the Protocol -----------------------------------------------------------------------------


class TenantStore(Protocol):
    """Where a translator keeps its tenants' resources (Redis in production)."""

    async def write_version(
        self,
        tenant: str,
        upserts: Sequence[Resource],
        removals: Sequence[ResourceKey],
        *,
        offset: KafkaOffset,
        expected_version: int,
        trace_fields: Mapping[str, str],
    ) -> int:
        """Write one tenant version atomically (changed resources, removed names, version+1,
        offset) if the tenant is at `expected_version` (else VersionConflictError, nothing
        written), then announce it on the change stream. Returns the new version; an empty
        diff writes nothing and returns the current version."""
        ...

    async def load_checkpoint(self, tenant: str) -> Checkpoint: ...

    async def announce(self, tenant: str, *, trace_fields: Mapping[str, str]) -> int:
        """Append a `full` change entry at the tenant's current version (call after taking a
        tenant over, or after AnnounceError). Returns that version (0: nothing stored)."""
        ...

    async def claim_hosts(
        self, tenant: str, hosts: Iterable[str], created_at: datetime
    ) -> dict[str, HostClaim]: ...

    async def release_hosts(self, tenant: str, hosts: Iterable[str]) -> set[str]:
        """Free the hosts `tenant` owns; returns those released (others are left alone)."""
        ...


class HostRegistry(Protocol):
    """Cross-tenant host ownership with hand-over (docs/host-ownership.md)."""

    async def claim(
        self,
        tenant: str,
        claims: Mapping[str, datetime],
        *,
        record: Mapping[str, HostState] | None = None,
    ) -> dict[str, HostClaim]:
        """Claim each host with its claim time (the oldest Ingress asking for it). A granted
        claim also marks the tenant as (about to be) serving the host; a lost one puts the
        tenant on the host's waiting list. `record`, if given, replaces the tenant's host
        states first (in the same round trip)."""
        ...

    async def withdraw(
        self, tenant: str, *, stop_serving: Iterable[str], release: Iterable[str]
    ) -> list[HostNotice]:
        """After a version without their scopes is written: the tenant no longer serves
        `stop_serving` and gives up `release` (owned ones are freed). Returns the tenants to
        notify (the owner now free to serve, the waiting claimants of a released host)."""
        ...

    async def load_host_states(self, tenants: Sequence[str]) -> dict[str, dict[str, HostState]]:
        """What each tenant recorded about its hosts (tenants without a record are left out)."""
        ...

    async def save_host_states(self, tenant: str, states: Mapping[str, HostState]) -> None: ...

    async def host_views(self, hosts: Iterable[str]) -> dict[str, HostView]: ...

    async def notify(self, notices: Sequence[HostNotice]) -> None:
        """Tell whichever translator owns each notice's tenant to re-translate it."""
        ...

    async def notices_position(self) -> str:
        """Where a follower starting now begins (the last notice's id)."""
        ...

    async def read_notices(
        self, position: str, *, block_ms: int, count: int = 1000
    ) -> tuple[str, list[HostNotice]]:
        """Notices after `position`, waiting up to `block_ms`; and the new position."""
        ...
