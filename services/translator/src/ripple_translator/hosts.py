"""Host ownership of one tenant write, as pure decisions (the I/O is `store.HostRegistry`;
the protocol is described in docs/host-ownership.md).

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
from dataclasses import dataclass, field

from ripple_translator.store import HostClaim, HostNotice, HostState
from ripple_translator.translate import HostClaim as AskedHost
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


def wanted_hosts(tenant: str, asked: Sequence[AskedHost], policy: HostPolicy) -> list[str]:
    """The hosts the policy lets the tenant claim, in order. (Which of the tenant's own
    Ingresses asks for a host is the tenant's affair: the translation keeps its oldest.)"""
    return [a.host for a in asked if policy.allows(tenant, a.host)]


def decide(
    tenant: str,
    *,
    asked: Sequence[AskedHost],
    outcomes: Mapping[str, HostClaim],
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
