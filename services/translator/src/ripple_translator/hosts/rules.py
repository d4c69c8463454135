"""Host ownership's pure rules (docs/host-ownership.md): who owns a host after a claim or a
withdrawal (`claim_host`, `withdraw_host`: the Lua scripts of `store.redis_store` do the same
atomically, with Redis's clock), whether a tenant's recorded state is stale (`host_stale`),
and what one tenant write does with its claim outcomes (`decide`).

Before a tenant version is written the writer claims every host the tenant's served Ingresses
ask for (and the policy allows); `decide` turns the claim outcomes into the hosts the tenant
must not serve (lost: another tenant's claim of the host stood first, or the owner holds it
after a release; or owned but still served by the previous owner), a diagnostic for each, the
hosts to withdraw and release after the write, the notices to send, the states to record and
when to claim again (a hold ends). The claim times are Redis's, never an object's age
(`store.model.claim_host`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from ripple_translator.hosts.model import ClaimOutcome, ClaimStatus, HostNotice, HostState, HostView
from ripple_translator.translate import HostClaim, TranslateOptions
from ripple_translator.translate.diagnostics import Diagnostic, Reason, error, warning


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """Which hosts a tenant may claim at all. `tenant_domain` is a template such as
    "{tenant}.apps.example.com": the tenant may use that name and every name under it. `allowed`
    adds, per tenant, exact hosts or ".suffix" entries. An empty template allows every host
    (cross-tenant arbitration still applies)."""

    tenant_domain: str = ""
    allowed: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def allows(self, tenant: str, host: str) -> bool:
        if not self.tenant_domain:
            return True
        name = host.lower().removeprefix("*.")
        domain = self.tenant_domain.format(tenant=tenant).lower()
        if name == domain or name.endswith("." + domain):
            return True
        for allowed in self.allowed.get(tenant, frozenset()):
            entry = allowed.lower()
            if entry.startswith("."):
                if name.endswith(entry):
                    return True
            elif name == entry.removeprefix("*."):
                return True
        return False


@dataclass(frozen=True, slots=True)
class HostFilter:
    """A tenant translation's `host_allowed`: the policy allows the host and arbitration did
    not withhold it."""

    tenant: str
    policy: HostPolicy
    withheld: frozenset[str]

    def __call__(self, host: str) -> bool:
        return host not in self.withheld and self.policy.allows(self.tenant, host)


def host_options(
    options: TranslateOptions,
    tenant: str,
    policy: HostPolicy,
    withheld: frozenset[str],
    *,
    arbitrated: bool,
) -> TranslateOptions:
    """The options one tenant is translated with: its `HostFilter` when hosts are arbitrated
    or the policy restricts them (else every host is allowed, as before arbitration)."""
    if not arbitrated and not policy.tenant_domain:
        return options
    return replace(options, host_allowed=HostFilter(tenant, policy, withheld))


@dataclass(frozen=True, slots=True, kw_only=True)
class HostOutcome:
    withheld: frozenset[str]
    diagnostics: tuple[Diagnostic, ...]
    # After the write: stop being counted as serving these; give these up.
    stop_serving: frozenset[str]
    release: frozenset[str]
    notices: tuple[HostNotice, ...]
    states: Mapping[str, HostState]
    # A lost host is held for an owner that released it: claim again after this long (s).
    recheck_after_s: float | None = None


def wanted_hosts(tenant: str, asked: Sequence[HostClaim], policy: HostPolicy) -> list[str]:
    """The hosts the policy lets the tenant claim, in order. (Which of the tenant's own
    Ingresses asks for a host is the tenant's affair: the translation keeps its oldest.)"""
    return [a.host for a in asked if policy.allows(tenant, a.host)]


def decide(
    tenant: str,
    *,
    asked: Sequence[HostClaim],
    outcomes: Mapping[str, ClaimOutcome],
    previous: Mapping[str, HostState],
) -> HostOutcome:
    """What a tenant does with its claim outcomes; `previous` is what it recorded last time."""
    by_host = {a.host: a for a in asked}
    withheld: set[str] = set()
    diags: list[Diagnostic] = []
    stop: set[str] = set()
    notices: list[HostNotice] = []
    states: dict[str, HostState] = {}
    recheck: list[float] = []
    for host in sorted(outcomes):
        claim = outcomes[host]
        ref = by_host[host].ingress
        if claim.promoted:
            notices.append(HostNotice(tenant=claim.promoted, host=host, why="granted"))
        if not claim.granted:
            withheld.add(host)
            states[host] = HostState.LOST
            # It may have served the host (or claimed it before a crash): withdraw; the
            # owner is notified only if the tenant was still counted as serving it.
            stop.add(host)
            since = claim.owner_created_at.isoformat()
            if claim.held_ms is None:
                message = (
                    f"host {host} belongs to tenant {claim.owner}, whose claim of it stood "
                    f"first (since {since}); its rules are not served here until that tenant "
                    "releases it"
                )
            else:
                recheck.append(claim.held_ms / 1000)
                # (no remaining time in the text: the same hold gives the same diagnostic)
                message = (
                    f"host {host} was released by tenant {claim.owner} (its claim since "
                    f"{since}) and is held for it for the release grace period; then the first "
                    "standing claim of it gets it; its rules are not served here until then"
                )
            diags.append(error(ref, Reason.HOST_NOT_ALLOWED, message))
        elif claim.others:
            withheld.add(host)
            states[host] = HostState.BLOCKED
            diags.append(
                warning(
                    ref,
                    Reason.HOST_NOT_ALLOWED,
                    f"host {host} is this tenant's now (its claim stands first); it is served "
                    f"once tenant {', '.join(claim.others)} has withdrawn it",
                )
            )
        else:
            states[host] = HostState.SERVED
    return HostOutcome(
        withheld=frozenset(withheld),
        diagnostics=tuple(diags),
        stop_serving=frozenset(stop),
        release=frozenset(h for h in previous if h not in outcomes),
        notices=tuple(notices),
        states=states,
        recheck_after_s=min(recheck) if recheck else None,
    )


def host_stale(tenant: str, state: HostState, view: HostView) -> bool:
    """Whether `tenant`'s recorded `state` of a host no longer matches Redis (it must be
    re-translated): it serves a host it lost, waits for a host now free to serve, or lost a
    host that is free now, its own, or only held (its claim learns when the hold ends)."""
    if state is HostState.SERVED:
        return view.owner != tenant
    if state is HostState.BLOCKED:
        return view.owner != tenant or view.serving <= {tenant}
    return view.owner is None or view.owner == tenant or view.held


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
) -> tuple[HostRecord, ClaimOutcome]:
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
        return after, ClaimOutcome(
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
    return after, ClaimOutcome(
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
