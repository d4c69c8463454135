"""The arbiter the writer calls around each tenant write (docs/host-ownership.md): before the
version is written it claims the hosts the translation asks for and decides what the tenant
serves (`arbitrate`); after, it withdraws and releases hosts, records the states and sends
the notices (`settle`). It keeps nothing itself: each call takes the tenant's `HostCache` and
returns the new one (the slot holds it). `stale` is the host check after an assignment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import structlog

from ripple_translator.hosts.model import ClaimOutcome, HostRegistry, HostState
from ripple_translator.hosts.rules import HostOutcome, HostPolicy, decide, host_stale, wanted_hosts
from ripple_translator.translate import HostClaim

log = structlog.get_logger("ripple_translator.hosts")
MAX_LOGGED_NOTICES = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class HostCache:
    """The tenant's last host arbitration: the host states it recorded (None: not loaded
    yet), the hosts withheld (the next translation's first guess), the claims it made and
    their outcomes. Reused while the tenant asks for the same hosts and no notice says a
    host changed hands (`stale`)."""

    states: Mapping[str, HostState] | None = None
    withheld: frozenset[str] = frozenset()
    claims: tuple[tuple[str, object, object], ...] | None = None
    outcome: HostOutcome | None = None
    stale: bool = True
    # The outcome of the last claim of each host (reused for the hosts whose claim did not
    # change while no notice says a host changed hands).
    claimed: Mapping[str, ClaimOutcome] = field(default_factory=dict)
    # How many notices made this cache stale so far: a write whose arbitration began before
    # a notice must not mark the cache fresh when it settles (`carried_over`).
    notices: int = 0

    def made_stale(self) -> HostCache:
        """A host of the tenant changed hands: every outcome must be claimed again."""
        return replace(self, stale=True, notices=self.notices + 1)

    def noticed_since(self, seen: int, now: int) -> HostCache:
        """This cache, made by an arbitration that began when `seen` notices had come, as the
        tenant's cache now that `now` have: stale again if any came meanwhile (the write
        settling must not mark a notice's hosts fresh: they are claimed again next write)."""
        if now == seen:
            return self
        return replace(self, stale=True, notices=now)

    def reloaded(self) -> HostCache:
        """After a reload: the recorded states are read again, every host claimed again
        (what was withheld stays the first guess)."""
        return replace(self, states=None, claimed={}, stale=True)


class HostArbiter:
    """The writer's host arbitration (docs/host-ownership.md): before a version is written,
    claim the hosts the translation asks for (`arbitrate`); after it is written, withdraw and
    release hosts, record the states and send the notices (`settle`). Each returns the
    tenant's new `HostCache`; the pure rules are `hosts.decide`."""

    def __init__(self, registry: HostRegistry, *, policy: HostPolicy, grace_s: float) -> None:
        self._registry = registry
        self._policy = policy
        self._grace_s = grace_s

    async def arbitrate(
        self, tenant: str, cache: HostCache, asked: Sequence[HostClaim]
    ) -> tuple[HostOutcome, HostCache]:
        """Claim the hosts the translation asks for (one pipelined round trip)."""
        wanted = wanted_hosts(tenant, asked, self._policy)
        allowed = set(wanted)
        key = tuple((a.host, a.created, a.ingress) for a in asked if a.host in allowed)
        if not cache.stale and cache.outcome is not None and key == cache.claims:
            # Nothing to claim anew: ownership only changes hands with a notice to us.
            last = cache.outcome
            return HostOutcome(
                withheld=last.withheld,
                diagnostics=last.diagnostics,
                stop_serving=frozenset(),
                release=frozenset(),
                notices=(),
                states=last.states,
            ), cache
        states = cache.states
        if states is None:
            loaded = await self._registry.load_host_states([tenant])
            states = dict(loaded.get(tenant, {}))
        new = [h for h in wanted if h not in states]
        pending: dict[str, HostState] | None = None
        if new:
            # Record new hosts before claiming them (as lost until decided; same round
            # trip), so a crash after the claim cannot leak a claim nobody releases.
            pending = {**states, **dict.fromkeys(new, HostState.LOST)}
        # Only the hosts whose claim changed are claimed again, unless a notice (or a
        # reload) made every outcome stale: ownership only changes hands with a notice. A
        # host the tenant does not serve (lost, held for its owner, or still served by
        # another) is claimed again at every write, so its diagnostic says who has it now
        # (an owner taking back a held host sends no notice): losers are few, a flooding
        # tenant's served hosts are not claimed again.
        unchanged = set(key) & set(cache.claims or ()) if not cache.stale else set()
        reuse = {k[0] for k in unchanged if k[0] in cache.claimed and cache.claimed[k[0]].servable}
        to_claim = [h for h in wanted if h not in reuse]
        claimed = await self._registry.claim(tenant, to_claim, record=pending)
        if pending is not None:
            states = pending
        outcomes = {h: replace(cache.claimed[h], promoted=None) for h in reuse}
        outcomes.update(claimed)
        # Stale until settled: a write that fails before `settle` claims everything again.
        cache = replace(cache, states=states, claims=key, stale=True, claimed=outcomes)
        return decide(tenant, asked=asked, outcomes=outcomes, previous=states), cache

    async def stale(self, tenants: Sequence[str]) -> list[str]:
        """The tenants whose recorded host states no longer match the registry (a notice
        sent while no translator held them: they must be re-translated)."""
        states = await self._registry.load_host_states(tenants)
        hosts = {h for by_host in states.values() for h in by_host}
        views = await self._registry.host_views(hosts) if hosts else {}
        return [
            tenant
            for tenant, by_host in states.items()
            if any(host_stale(tenant, st, views[h]) for h, st in by_host.items())
        ]

    async def settle(self, tenant: str, cache: HostCache, outcome: HostOutcome) -> HostCache:
        """After the version is written: withdraw and release hosts, record the states,
        notify the tenants whose hosts changed hands."""
        notices = await self._registry.withdraw(
            tenant,
            stop_serving=outcome.stop_serving,
            release=outcome.release,
            hold_s=self._grace_s,
        )
        if outcome.states != cache.states:
            await self._registry.save_host_states(tenant, outcome.states)
        cache = replace(cache, states=dict(outcome.states), outcome=outcome, stale=False)
        notices = [*outcome.notices, *notices]
        if notices:
            await self._registry.notify(notices)
            log.info(
                "hosts.notified",
                tenant=tenant,
                notices=[f"{n.tenant} {n.why} {n.host}" for n in notices[:MAX_LOGGED_NOTICES]],
            )
        return cache
