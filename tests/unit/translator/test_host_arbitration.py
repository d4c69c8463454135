"""The host arbitration rule, pure (`store.model.claim_host` / `withdraw_host`; the Lua scripts
implement the same and tests/integration/store/test_host_claims.py runs these cases against
Redis): a host belongs to the first claim of it that still stands, timed by the store's clock
when the host is first claimed (never by an object's age); a loser never takes a served host;
a withdrawn claim made again is a new claim; an owner that re-claims its released host within
the grace keeps it; after the grace the first standing claim gets it."""

from __future__ import annotations

from datetime import UTC, datetime

from ripple_translator.hosts import (
    ClaimOutcome,
    ClaimStatus,
    HostRecord,
    HostState,
    HostView,
    claim_host,
    decide,
    first_claim,
    from_micros,
    host_stale,
    withdraw_host,
)
from ripple_translator.translate import HostClaim, ObjectRef, Severity

H = "a.example"
S = 1_000_000  # one second in µs
T0 = 1_800_000_000 * S  # some epoch µs


class Host:
    """One host's record, stepped through claims and withdrawals at given times (s)."""

    def __init__(self) -> None:
        self.record = HostRecord()

    def claim(self, tenant: str, at: float) -> ClaimOutcome:
        self.record, claim = claim_host(self.record, tenant, host=H, now=T0 + round(at * S))
        return claim

    def withdraw(
        self, tenant: str, at: float, *, release: bool = True, hold_s: float = 0
    ) -> tuple[bool, tuple[str, ...]]:
        self.record, released, notify = withdraw_host(
            self.record, tenant, release=release, now=T0 + round(at * S), hold_us=round(hold_s * S)
        )
        return released, notify

    def owner(self, at: float) -> str | None:
        return self.record.at(T0 + round(at * S)).owner


def since(at: float) -> datetime:
    return from_micros(T0 + round(at * S))


def test_the_first_claim_of_the_host_owns_it_and_a_later_claim_loses() -> None:
    host = Host()
    first = host.claim("a", 10)
    assert (first.status, first.owner, first.owner_created_at) == (
        ClaimStatus.OWNED,
        "a",
        since(10),
    )
    # "b" may have asked for other hosts for years: what counts is when it claimed this one
    lost = host.claim("b", 20)
    assert (lost.status, lost.owner, lost.owner_created_at) == (ClaimStatus.LOST, "a", since(10))
    assert (lost.granted, lost.held_ms, lost.promoted) == (False, None, None)
    assert dict(host.record.claims) == {"a": T0 + 10 * S, "b": T0 + 20 * S}
    assert host.record.waiting == {"b"}
    # claiming again keeps the first claim time: asking on is the same standing claim
    assert host.claim("b", 30).status is ClaimStatus.LOST
    assert host.record.claims["b"] == T0 + 20 * S
    again = host.claim("a", 40)
    assert (again.status, again.owner_created_at, again.others) == (
        ClaimStatus.OWNED,
        since(10),
        (),
    )


def test_a_loser_never_takes_a_served_host_even_with_an_earlier_recorded_claim() -> None:
    # (a record written by an older release, or a clock step back: the owner still keeps it)
    record = HostRecord(
        owner="a",
        owner_since=T0 + 50 * S,
        claims={"a": T0 + 50 * S, "b": T0},
        serving=frozenset({"a"}),
    )
    after, claim = claim_host(record, "b", host=H, now=T0 + 60 * S)
    assert (claim.status, claim.owner) == (ClaimStatus.LOST, "a")
    assert after.owner == "a"


def test_equal_claim_times_go_to_the_bytewise_smaller_tenant() -> None:
    assert first_claim({"b": 5, "a": 5, "c": 4}) == "c"
    assert first_claim({"b": 5, "a": 5}) == "a"
    assert first_claim({"a": 5, "Z": 5}) == "Z"  # bytewise: "Z" (0x5a) before "a" (0x61)
    assert first_claim({}) is None


def test_a_withdrawn_claim_made_again_is_a_new_claim_with_a_new_time() -> None:
    host = Host()
    host.claim("a", 10)
    host.claim("b", 20)
    host.claim("c", 30)
    # "b" stops asking (its claim is withdrawn), then asks again: a new claim, after "c"'s
    assert host.withdraw("b", 35) == (False, ())
    assert "b" not in host.record.claims
    host.claim("b", 40)
    assert host.record.claims["b"] == T0 + 40 * S
    assert host.withdraw("a", 50) == (True, ("b", "c"))  # released at once (no hold)
    assert host.owner(50) is None
    # "b" claims first after the release, but "c"'s claim stood first: "c" gets the host
    lost = host.claim("b", 51)
    assert (lost.status, lost.owner, lost.promoted) == (ClaimStatus.LOST, "c", "c")
    got = host.claim("c", 52)
    assert (got.status, got.owner_created_at) == (ClaimStatus.OWNED, since(30))


def test_the_owner_reclaiming_within_the_grace_keeps_the_host() -> None:
    host = Host()
    host.claim("a", 10)
    host.claim("b", 20)
    # "a" deletes its Ingress: the host is held for it for the grace (60 s here)
    assert host.withdraw("a", 100, hold_s=60) == (True, ("b",))
    assert host.owner(100) == "a"
    assert host.record.held_until == T0 + 160 * S
    held = host.claim("b", 101)  # "b"'s next write: it does not get the host
    assert (held.status, held.owner, held.held_ms) == (ClaimStatus.LOST, "a", 59_000)
    # "a" re-creates its Ingress within the grace: the host is its own again, claim time kept
    back = host.claim("a", 130)
    assert (back.status, back.owner_created_at) == (ClaimStatus.OWNED, since(10))
    retaken = host.record
    assert retaken.held_until is None
    # long after the grace, "b" still loses: the owner's claim stands
    late = host.claim("b", 500)
    assert (late.status, late.owner, late.held_ms) == (ClaimStatus.LOST, "a", None)


def test_a_second_release_does_not_extend_the_hold() -> None:
    host = Host()
    host.claim("a", 0)
    host.withdraw("a", 10, hold_s=60)
    host.withdraw("a", 50, hold_s=60)
    assert host.record.held_until == T0 + 70 * S


def test_after_the_grace_the_first_standing_claim_gets_the_host() -> None:
    host = Host()
    host.claim("a", 10)
    host.claim("c", 30)
    host.claim("b", 20)
    host.withdraw("a", 100, hold_s=5)
    assert host.owner(104.9) == "a"
    assert host.owner(105) is None
    # "c" is woken first, but "b" claimed before it
    lost = host.claim("c", 106)
    assert (lost.status, lost.owner, lost.promoted, lost.held_ms) == (
        ClaimStatus.LOST,
        "b",
        "b",
        None,
    )
    got = host.claim("b", 107)
    assert (got.status, got.owner_created_at, got.promoted) == (ClaimStatus.OWNED, since(20), None)
    # the former owner asking again after its grace is a new claim, behind "c"
    host.withdraw("b", 200)
    assert host.claim("a", 201).owner == "c"


def test_withdrawing_tells_the_owner_only_if_the_tenant_was_counted_as_serving() -> None:
    host = Host()
    host.claim("a", 0)
    host.claim("b", 1)
    assert host.withdraw("b", 2, release=False) == (False, ())
    record = HostRecord(owner="a", owner_since=T0, claims={"a": T0}, serving=frozenset({"a", "b"}))
    after, released, notify = withdraw_host(record, "b", release=False, now=T0 + S, hold_us=0)
    assert (released, notify) == (False, ("a",))
    assert after.serving == {"a"}
    # a non-owner's release frees nothing
    after, released, notify = withdraw_host(record, "b", release=True, now=T0 + S, hold_us=0)
    assert (released, after.owner) == (False, "a")


def test_decide_turns_a_held_host_into_an_error_and_a_recheck_after_the_hold() -> None:
    ref = ObjectRef("Ingress", "t", "web")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    asked = [HostClaim("held.example", t0, ref), HostClaim("free.example", t0, ref)]
    outcome = decide(
        "t",
        asked=asked,
        outcomes={
            "held.example": ClaimOutcome(
                host="held.example",
                status=ClaimStatus.LOST,
                owner="o",
                owner_created_at=t0,
                held_ms=1500,
                promoted="p",
            ),
            "free.example": ClaimOutcome(
                host="free.example", status=ClaimStatus.OWNED, owner="t", owner_created_at=t0
            ),
        },
        previous={},
    )
    assert outcome.withheld == {"held.example"}
    assert outcome.recheck_after_s == 1.5
    assert [(n.tenant, n.host, n.why) for n in outcome.notices] == [
        ("p", "held.example", "granted")
    ]
    [diag] = outcome.diagnostics
    assert diag.severity is Severity.ERROR
    assert "released by tenant o" in diag.message
    assert "held for it" in diag.message


def test_a_tenant_that_lost_a_held_host_is_stale_so_it_claims_again() -> None:
    held = HostView(owner="o", serving=frozenset(), held=True)
    assert host_stale("t", HostState.LOST, held)
    assert not host_stale("t", HostState.LOST, HostView(owner="o", serving=frozenset({"o"})))
