"""Host ownership wired into the writer, with the store fake as the shared registry: the first
standing claim of a host wins across tenants (and translators), whatever the Ingresses' age;
the loser is told and does not serve the host; a released host is held for its owner for the
grace, then goes to the waiting claimant (woken when the hold ends; the scope table never maps
one host to two tenants), the domain policy, and the host check after an assignment."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from structlog.testing import capture_logs

from ripple_translator.engine import Engine
from ripple_translator.hosts import (
    ClaimOutcome,
    ClaimStatus,
    HostPolicy,
    HostState,
    HostView,
    decide,
    host_stale,
)
from ripple_translator.translate import Diagnostic, HostClaim, ObjectRef, Severity
from ripple_translator.writer import WriterConfig
from tests.unit.translator_service.support import (
    TOPIC,
    FakePartitions,
    FakeStore,
    cluster,
    deleted,
    event,
    ingress,
    ingress_class,
    record,
    service,
)
from tests.waiting import eventually

HOST = "shared.example.com"


def aged(ns: str, name: str, host: str, created: str) -> dict[str, Any]:
    obj = ingress(ns, name, host)
    obj["metadata"]["creationTimestamp"] = created
    return obj


class Translator:
    """One engine owning one partition of the shared fake store, fed records in order."""

    def __init__(
        self,
        store: FakeStore,
        partition: int,
        *,
        policy: HostPolicy | None = None,
        grace_s: float = 0.0,
        partitions: FakePartitions | None = None,
    ) -> None:
        self.tp = (TOPIC, partition)
        self.partition = partition
        self.reported: list[tuple[str, Diagnostic]] = []
        self.partitions = partitions or FakePartitions()
        self.engine = Engine(
            store=store,
            partitions=self.partitions,
            config=WriterConfig(
                retry_initial_s=0.01,
                retry_max_s=0.02,
                host_policy=policy or HostPolicy(),
                host_release_grace_s=grace_s,
            ),
            hosts=store,
            on_diagnostics=self._report,
        )
        self.offset = 0

    def _report(self, tenant: str, diags: Sequence[Diagnostic]) -> None:
        self.reported.extend((tenant, d) for d in diags)

    async def start(self) -> None:
        await self.engine.assign([self.tp])
        await self.feed(cluster(ingress_class()))

    async def feed(self, *envelopes: Any) -> None:
        records = []
        for env in envelopes:
            records.append(record(self.offset, env, partition=self.partition))
            self.offset += 1
        await self.engine.handle(records)
        await self.engine.settle(timeout_s=5)


def scope_owners(store: FakeStore, host: str) -> set[str]:
    return {t for t in store.tenants if f"{t}/scope/{host}" in store.names(t)}


async def pump(store: FakeStore, translators: Sequence[Translator]) -> None:
    """Deliver the host notices (as the followers do) until none are left; after every
    step no host is served by two tenants."""
    position = 0
    for _ in range(20):
        assert len(scope_owners(store, HOST)) <= 1
        position_str, notices = await store.read_notices(str(position), block_ms=0)
        position = int(position_str)
        if not notices:
            return
        for t in translators:
            t.engine.wake(notices)
        for t in translators:
            await t.engine.settle(timeout_s=5)
    raise AssertionError("notices never settled")


async def two(*, grace_s: float = 0.0) -> tuple[FakeStore, Translator, Translator]:
    store = FakeStore()
    one, other = Translator(store, 0, grace_s=grace_s), Translator(store, 1, grace_s=grace_s)
    await one.start()
    await other.start()
    return store, one, other


async def test_an_older_ingress_claiming_the_host_later_loses_it() -> None:
    store, one, other = await two()
    await other.feed(
        event("young", service("young")),
        event("young", aged("young", "web", HOST, "2025-06-01T00:00:00Z")),
    )
    assert scope_owners(store, HOST) == {"young"}

    await one.feed(
        event("old", service("old")),
        event("old", aged("old", "web", HOST, "2024-01-01T00:00:00Z")),
    )
    await pump(store, [one, other])
    # the host's first claim stands: the older Ingress does not take it
    assert store.owner(HOST) == "young"
    assert scope_owners(store, HOST) == {"young"}
    assert store.host_states == {"old": {HOST: HostState.LOST}, "young": {HOST: HostState.SERVED}}
    lost = [d for t, d in one.reported if t == "old" and "belongs to tenant young" in d.message]
    assert lost, one.reported
    assert lost[0].object.name == "web"
    assert str(lost[0].reason) == "HostNotAllowed"


async def test_a_later_claim_gets_the_host_when_the_owner_releases_it() -> None:
    store, one, other = await two()
    await one.feed(
        event("first", service("first")),
        event("first", aged("first", "web", HOST, "2025-06-01T00:00:00Z")),
    )
    await other.feed(
        event("second", service("second")),
        event("second", aged("second", "web", HOST, "2024-01-01T00:00:00Z")),
    )
    await pump(store, [one, other])
    assert scope_owners(store, HOST) == {"first"}
    assert store.record(HOST).waiting == {"second"}

    await one.feed(deleted("first", "Ingress", "first", "web"))
    assert scope_owners(store, HOST) == set()
    await pump(store, [one, other])
    assert scope_owners(store, HOST) == {"second"}
    assert store.owner(HOST) == "second"
    assert "first" not in store.host_states or HOST not in store.host_states["first"]


async def test_a_released_host_is_held_for_the_grace_then_the_waiting_claim_is_woken() -> None:
    store, one, other = await two(grace_s=0.3)
    await one.feed(event("first", service("first")), event("first", ingress("first", "web", HOST)))
    await other.feed(
        event("second", service("second")), event("second", ingress("second", "web", HOST))
    )
    await one.feed(deleted("first", "Ingress", "first", "web"))
    await pump(store, [one, other])  # "second" hears of the release, claims, finds it held
    assert store.owner(HOST) == "first"
    assert scope_owners(store, HOST) == set()
    assert store.host_states["second"] == {HOST: HostState.LOST}
    held = [d for t, d in other.reported if "released by tenant first" in d.message]
    assert held, other.reported

    # no notice comes when the hold ends: the claim's own timer wakes "second"
    sent = len(store.notices)
    await eventually(lambda: scope_owners(store, HOST), until=lambda s: s == {"second"}, within_s=5)
    await other.engine.settle(timeout_s=5)
    assert len(store.notices) == sent
    assert scope_owners(store, HOST) == {"second"}
    assert store.host_states["second"] == {HOST: HostState.SERVED}


async def test_a_translator_taking_the_waiting_tenant_over_waits_for_the_hold_again() -> None:
    store, one, other = await two(grace_s=0.5)
    await one.feed(event("first", service("first")), event("first", ingress("first", "web", HOST)))
    await other.feed(
        event("second", service("second")), event("second", ingress("second", "web", HOST))
    )
    await one.feed(deleted("first", "Ingress", "first", "web"))
    await pump(store, [one, other])  # "second" found the host held: its timer is armed
    assert store.host_states["second"] == {HOST: HostState.LOST}
    # its translator goes away, and the timer with it; another takes the partition over
    await other.engine.drain(timeout_s=5)
    successor = Translator(store, other.partition, grace_s=0.5, partitions=other.partitions)
    await successor.engine.assign([successor.tp])
    await successor.engine.settle(timeout_s=5)  # the host check re-translated "second"
    await eventually(lambda: scope_owners(store, HOST), until=lambda s: s == {"second"}, within_s=5)
    await successor.engine.settle(timeout_s=5)
    assert scope_owners(store, HOST) == {"second"}
    assert store.owner(HOST) == "second"


async def test_the_owner_recreating_its_ingress_within_the_grace_keeps_the_host() -> None:
    store, one, other = await two(grace_s=60)
    await one.feed(event("first", service("first")), event("first", ingress("first", "web", HOST)))
    await other.feed(
        event("second", service("second")), event("second", ingress("second", "web", HOST))
    )
    await one.feed(deleted("first", "Ingress", "first", "web"))
    await pump(store, [one, other])
    await one.feed(event("first", ingress("first", "web", HOST)))
    await pump(store, [one, other])
    assert scope_owners(store, HOST) == {"first"}
    # "second"'s next write (an unrelated change) does not get it either
    await other.feed(event("second", ingress("second", "other", "other.example.com")))
    await pump(store, [one, other])
    assert scope_owners(store, HOST) == {"first"}
    assert store.owner(HOST) == "first"


async def test_the_domain_policy_keeps_hosts_outside_the_tenant_domain_unclaimed() -> None:
    store = FakeStore()
    policy = HostPolicy(
        tenant_domain="{tenant}.apps.example.com", allowed={"t1": frozenset({".t1.example.org"})}
    )
    t = Translator(store, 0, policy=policy)
    await t.start()
    await t.feed(
        event("t1", service("t1")),
        event("t1", ingress("t1", "mine", "web.t1.apps.example.com")),
        event("t1", ingress("t1", "extra", "x.t1.example.org")),
        event("t1", ingress("t1", "theirs", "web.t2.apps.example.com")),
    )
    assert set(store.records) == {"web.t1.apps.example.com", "x.t1.example.org"}
    assert scope_owners(store, "web.t2.apps.example.com") == set()
    assert {"t1/scope/web.t1.apps.example.com", "t1/scope/x.t1.example.org"} <= store.names("t1")
    denied = [d for _, d in t.reported if d.object.name == "theirs"]
    assert [str(d.reason) for d in denied] == ["HostNotAllowed"]


def test_host_policy_rules() -> None:
    policy = HostPolicy(
        tenant_domain="{tenant}.apps.example.com",
        allowed={"a": frozenset({".shop.example", "exact.example"})},
    )
    assert policy.allows("a", "a.apps.example.com")
    assert policy.allows("a", "x.y.a.apps.example.com")
    assert policy.allows("a", "*.a.apps.example.com")
    assert not policy.allows("a", "xa.apps.example.com")
    assert not policy.allows("a", "b.apps.example.com")
    assert policy.allows("a", "www.shop.example")
    assert policy.allows("a", "exact.example")
    assert not policy.allows("a", "sub.exact.example")
    assert not policy.allows("b", "www.shop.example")
    assert HostPolicy().allows("anyone", "any.host")


async def test_an_assignment_rechecks_hosts_changed_while_no_one_held_the_tenant() -> None:
    store, one, other = await two()
    await one.feed(event("first", service("first")), event("first", ingress("first", "web", HOST)))
    await other.feed(
        event("second", service("second")), event("second", ingress("second", "web", HOST))
    )
    await one.feed(deleted("first", "Ingress", "first", "web"))
    store.notices.clear()  # the release notice to "second" is lost (its translator was down)
    assert scope_owners(store, HOST) == set()
    assert await other.engine.check_hosts(["second"]) == ["second"]
    await other.engine.settle(timeout_s=5)
    await pump(store, [one, other])
    assert scope_owners(store, HOST) == {"second"}
    assert await other.engine.check_hosts(["second"]) == []
    assert await one.engine.check_hosts(["first"]) == []


async def test_a_diagnostic_is_logged_once_when_it_appears_and_once_when_resolved() -> None:
    store = FakeStore()
    t = Translator(store, 0)
    await t.start()
    bad = {"nginx.ingress.kubernetes.io/no-such-annotation": "x"}
    with capture_logs() as logs:
        await t.feed(
            event("t1", service("t1")),
            event("t1", ingress("t1", "web", "a.example.com", annotations=bad)),
        )
        await t.feed(event("t1", ingress("t1", "web", "b.example.com", annotations=bad)))
        await t.feed(event("t1", ingress("t1", "web", "b.example.com")))
    lines = [(e["event"], e.get("reason")) for e in logs if e["event"].startswith("diagnostic")]
    assert lines == [
        ("diagnostic", "UnknownAnnotation"),
        ("diagnostic.resolved", "UnknownAnnotation"),
    ]
    assert len([d for _, d in t.reported]) == 2  # the sink sees every written version's


def test_decide_withdraws_every_lost_host_and_releases_hosts_no_longer_asked_for() -> None:
    ref = ObjectRef("Ingress", "t", "web")
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    asked = [HostClaim("lost.example", t0, ref), HostClaim("mine.example", t0, ref)]
    outcome = decide(
        "t",
        asked=asked,
        outcomes={
            "lost.example": ClaimOutcome(
                host="lost.example", status=ClaimStatus.LOST, owner="o", owner_created_at=t0
            ),
            "mine.example": ClaimOutcome(
                host="mine.example",
                status=ClaimStatus.OWNED,
                owner="t",
                owner_created_at=t0,
                others=("p",),
            ),
        },
        # recorded as lost already (e.g. a placeholder before a crash): withdrawn anyway
        previous={"lost.example": HostState.LOST, "gone.example": HostState.SERVED},
    )
    assert outcome.withheld == {"lost.example", "mine.example"}
    assert outcome.stop_serving == {"lost.example"}
    assert outcome.release == {"gone.example"}
    assert outcome.states == {"lost.example": HostState.LOST, "mine.example": HostState.BLOCKED}
    assert outcome.notices == ()
    assert outcome.recheck_after_s is None
    assert [d.severity for d in outcome.diagnostics] == [Severity.ERROR, Severity.WARNING]


def test_host_stale_rules() -> None:
    def view(owner: str | None, *serving: str) -> HostView:
        return HostView(owner=owner, serving=frozenset(serving))

    assert not host_stale("t", HostState.SERVED, view("t", "t"))
    assert host_stale("t", HostState.SERVED, view("o", "t", "o"))
    assert not host_stale("t", HostState.BLOCKED, view("t", "t", "p"))
    assert host_stale("t", HostState.BLOCKED, view("t", "t"))
    assert host_stale("t", HostState.BLOCKED, view("o", "o"))
    assert not host_stale("t", HostState.LOST, view("o", "o"))
    assert host_stale("t", HostState.LOST, view(None))
    assert host_stale("t", HostState.LOST, view("t", "t"))


class HookedStore(FakeStore):
    """The store fake running a tenant's hook once, while that tenant's write is in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.hooks: dict[str, Callable[[], Awaitable[None]]] = {}

    async def write_version(self, tenant: str, *args: Any, **kwargs: Any) -> int:
        hook = self.hooks.pop(tenant, None)
        if hook is not None:
            await hook()
        return await super().write_version(tenant, *args, **kwargs)


async def test_a_notice_arriving_while_the_waiting_tenant_writes_is_not_lost() -> None:
    store = HookedStore()
    one, other = Translator(store, 0), Translator(store, 1)
    await one.start()
    await other.start()
    await one.feed(event("first", service("first")), event("first", ingress("first", "web", HOST)))
    await other.feed(
        event("second", service("second")), event("second", ingress("second", "web", HOST))
    )
    await pump(store, [one, other])
    assert store.owner(HOST) == "first"

    async def first_releases_the_host() -> None:
        # While "second" writes an unrelated change, "first" lets the host go and the
        # follower delivers the notice to "second"'s translator.
        position = str(len(store.notices))
        await one.feed(deleted("first", "Ingress", "first", "web"))
        _, notices = await store.read_notices(position, block_ms=0)
        assert [(n.tenant, n.host) for n in notices] == [("second", HOST)], notices
        assert other.engine.wake(notices) == 1

    store.hooks["second"] = first_releases_the_host
    await other.feed(event("second", ingress("second", "api", "api.second.example.com")))
    assert "second" not in store.hooks, "the hook ran"
    # no second delivery of the notice: the one that came during the write is enough
    assert store.owner(HOST) == "second"
    assert scope_owners(store, HOST) == {"second"}
