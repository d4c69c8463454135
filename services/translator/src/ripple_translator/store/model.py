"""What the translator asks of its tenant store: the `TenantStore` Protocol, its values and
errors, and the pure rules behind them (diffing, host-claim ordering). No I/O."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
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


class PositionFencedError(VersionConflictError):
    """Fencing by position: the tenant's stored version covers a later offset of the same
    Kafka partition than the write (a writer replaying from an older position, e.g. after a
    rebalance whose commit failed). Nothing was written; the writer must reload the tenant
    (its stored inputs cover more than its memory) instead of writing its state on top."""

    def __init__(
        self, tenant: str, *, offset: int, stored_offset: int, expected: int, actual: int
    ) -> None:
        StoreError.__init__(
            self,
            f"tenant {tenant!r} is stored at offset {stored_offset} (version {actual}): "
            f"a write from offset {offset} is older",
        )
        self.tenant = tenant
        self.expected = expected
        self.actual = actual
        self.offset = offset
        self.stored_offset = stored_offset


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
    LOST = "lost"  # another tenant owns it (its claim stood first, or it holds it after a release)


@dataclass(frozen=True, slots=True)
class HostClaim:
    """The outcome of one host claim: who owns the host now and since when (the owner's
    claim time, recorded by Redis when the owner first claimed the host)."""

    host: str
    status: ClaimStatus
    owner: str
    owner_created_at: datetime
    # Other tenants that may still serve the host (they have not withdrawn its scope yet): a
    # granted host is served only once this is empty, so no host maps to two tenants.
    others: tuple[str, ...] = ()
    # A tenant this claim made the owner (the host was free and its claim is the first
    # standing one) other than the claimer: it must be told to take the host up.
    promoted: str | None = None
    # LOST to an owner that released the host and holds it for its grace period: how long
    # the hold lasts (ms); then the first standing claim gets the host.
    held_ms: int | None = None

    @property
    def granted(self) -> bool:
        return self.status is ClaimStatus.OWNED

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
    """A host's owner (None: unclaimed) and the tenants that may serve it; `held`: the owner
    released it and holds it for its grace period."""

    owner: str | None
    serving: frozenset[str]
    held: bool = False


def host_stale(tenant: str, state: HostState, view: HostView) -> bool:
    """Whether `tenant`'s recorded `state` of a host no longer matches Redis (it must be
    re-translated): it serves a host it lost, waits for a host now free to serve, or lost a
    host that is free now, its own, or only held (its claim learns when the hold ends)."""
    if state is HostState.SERVED:
        return view.owner != tenant
    if state is HostState.BLOCKED:
        return view.owner != tenant or view.serving <= {tenant}
    return view.owner is None or view.owner == tenant or view.held


@dataclass(frozen=True, slots=True)
class HostNotice:
    """One `P.hostevents` entry: `tenant` must re-translate because `host` changed hands."""

    tenant: str
    host: str
    why: str


def to_micros(created_at: datetime) -> int:
    """A time as integer epoch microseconds (exact in Lua's doubles until year 2255)."""
    if created_at.tzinfo is None:
        raise ValueError("time must be timezone-aware")
    delta = created_at - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros // 1_000_000, tz=UTC).replace(
        microsecond=micros % 1_000_000
    )


def first_claim(claims: Mapping[str, int]) -> str | None:
    """The first standing claim of a host: the earliest claim time (epoch µs, recorded by
    Redis), equal times broken by the bytewise smaller tenant name. None: no claim."""
    return min(claims, key=lambda t: (claims[t], t.encode()), default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class HostRecord:
    """One host's arbitration state (the Redis keys `P:host:{h}`, `:serving`, `:waiting`,
    `:claims`), for the pure rule below; the Lua scripts of `redis_store` implement the same
    steps atomically, with Redis's clock as `now` (epoch µs)."""

    owner: str | None = None
    owner_since: int = 0  # the owner's claim time
    # The owner released the host: it is held for the owner until then (the owner hash
    # expires; a claim of the owner before that takes it back).
    held_until: int | None = None
    claims: Mapping[str, int] = field(default_factory=dict)  # standing claim -> its time
    serving: frozenset[str] = frozenset()
    waiting: frozenset[str] = frozenset()

    def at(self, now: int) -> HostRecord:
        """The record as seen at `now`: an owner whose hold is over is gone."""
        if self.held_until is not None and now >= self.held_until:
            return replace(self, owner=None, owner_since=0, held_until=None)
        return self


def claim_host(
    record: HostRecord, tenant: str, *, host: str, now: int
) -> tuple[HostRecord, HostClaim]:
    """The arbitration rule (CLAIM_HOST_LUA implements the same). A host belongs to the
    first claim of it that still stands: the claim time is `now` when the tenant first claims
    the host and is kept while its claim stands (an owner's claim keeps the time it owns the
    host with). The owner keeps the host while it claims it, also against an earlier
    standing claim (there is none unless a hold ended, see below): a loser never takes a
    served host. A host without owner (never claimed, released, or the owner's hold is over)
    goes to the first standing claim, the claimer's or another's (`promoted`). A granted
    claim joins `serving`; a lost one joins `waiting`."""
    r = record.at(now)
    claims = dict(r.claims)
    owner, since, held = r.owner, r.owner_since, r.held_until
    waiting = set(r.waiting)
    if owner == tenant:
        claims[tenant] = since  # a claim of its own held host stands again, with its time
        held = None
    else:
        claims.setdefault(tenant, now)
    promoted: str | None = None
    if owner is None:
        owner = first_claim(claims)
        assert owner is not None
        since = claims[owner]
        waiting.discard(owner)
        if owner != tenant:
            promoted = owner
    if owner != tenant:
        waiting.add(tenant)
        after = replace(
            r, owner=owner, owner_since=since, claims=claims, waiting=frozenset(waiting)
        )
        return after, HostClaim(
            host=host,
            status=ClaimStatus.LOST,
            owner=owner,
            owner_created_at=from_micros(since),
            promoted=promoted,
            held_ms=None if held is None else (held - now) // 1000,
        )
    waiting.discard(tenant)
    serving = r.serving | {tenant}
    after = HostRecord(
        owner=tenant,
        owner_since=since,
        held_until=held,
        claims=claims,
        serving=serving,
        waiting=frozenset(waiting),
    )
    return after, HostClaim(
        host=host,
        status=ClaimStatus.OWNED,
        owner=tenant,
        owner_created_at=from_micros(since),
        others=tuple(sorted(serving - {tenant})),
    )


def withdraw_host(
    record: HostRecord, tenant: str, *, release: bool, now: int, hold_us: int
) -> tuple[HostRecord, bool, tuple[str, ...]]:
    """After a version without the host's scope is written (WITHDRAW_HOST_LUA implements
    the same): the tenant leaves `serving`; with `release` its claim is withdrawn (a later
    claim is a new one, with a new time) and, if it owns the host, the host is held for it
    `hold_us` (0: freed at once). Returns the record, whether an owned host was released,
    and the tenants to notify: the waiting claimants of a released host, or the owner if the
    tenant was counted as serving the host (the owner may serve it now)."""
    r = record.at(now)
    removed = tenant in r.serving
    serving = r.serving - {tenant}
    if release:
        claims = {t: c for t, c in r.claims.items() if t != tenant}
        waiting = r.waiting - {tenant}
        if r.owner == tenant:
            if hold_us > 0:
                held = r.held_until if r.held_until is not None else now + hold_us
                after = replace(r, held_until=held, claims=claims, serving=serving, waiting=waiting)
            else:
                after = HostRecord(claims=claims, serving=serving, waiting=waiting)
            return after, True, tuple(sorted(waiting))
        r = replace(r, claims=claims, waiting=waiting)
    after = replace(r, serving=serving)
    if removed and r.owner is not None and r.owner != tenant:
        return after, False, (r.owner,)
    return after, False, ()


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

    async def claim_hosts(self, tenant: str, hosts: Iterable[str]) -> dict[str, HostClaim]: ...

    async def release_hosts(self, tenant: str, hosts: Iterable[str]) -> set[str]:
        """Withdraw the tenant's claims of `hosts` and free those it owns at once (no hold);
        returns those released (others are left alone)."""
        ...


class HostRegistry(Protocol):
    """Cross-tenant host ownership with hand-over (docs/host-ownership.md)."""

    async def claim(
        self,
        tenant: str,
        hosts: Iterable[str],
        *,
        record: Mapping[str, HostState] | None = None,
    ) -> dict[str, HostClaim]:
        """Claim each host (`claim_host`: the claim time is the store's clock when the
        tenant first claims it). A granted claim also marks the tenant as (about to be)
        serving the host; a lost one puts the tenant on the host's waiting list. `record`, if
        given, replaces the tenant's host states first (in the same round trip)."""
        ...

    async def withdraw(
        self,
        tenant: str,
        *,
        stop_serving: Iterable[str],
        release: Iterable[str],
        hold_s: float = 0.0,
    ) -> list[HostNotice]:
        """After a version without their scopes is written: the tenant no longer serves
        `stop_serving` and withdraws its claims of `release` (owned ones are held for it
        `hold_s`, then free; `withdraw_host`). Returns the tenants to notify (the owner now
        free to serve, the waiting claimants of a released host)."""
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
