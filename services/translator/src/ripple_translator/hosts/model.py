"""Host ownership's values and what the arbiter asks of its store: the outcome of a claim
(`ClaimOutcome`), the states a tenant records (`HostState`), a host's view (`HostView`), a
notice (`HostNotice`), and the `HostRegistry` Protocol (Redis in production:
`store.RedisHostRegistry`; docs/host-ownership.md). No I/O."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class ClaimStatus(enum.StrEnum):
    OWNED = "owned"  # the claimer owns the host (newly, or it already did)
    LOST = "lost"  # another tenant owns it (its claim stood first, or it holds it after a release)


@dataclass(frozen=True, slots=True)
class ClaimOutcome:
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


@dataclass(frozen=True, slots=True)
class HostNotice:
    """One `P.hostevents` entry: `tenant` must re-translate because `host` changed hands."""

    tenant: str
    host: str
    why: str


class HostRegistry(Protocol):
    """Cross-tenant host ownership with hand-over (docs/host-ownership.md)."""

    async def claim(
        self,
        tenant: str,
        hosts: Iterable[str],
        *,
        record: Mapping[str, HostState] | None = None,
    ) -> dict[str, ClaimOutcome]:
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
