"""Offline re-translation of one partition's events for some of its tenants (pure: no I/O).

It applies envelopes with the translator engine's own rules (`ripple_translator.
partition_state.PartitionState.apply`: tenant events to the tenant's objects, IngressClasses
and re-list markers to the partition; a class change re-translates every replayed tenant, a
finished re-list drops the objects it did not see), and each changed tenant is translated by
`ripple_translator.writer.plan_write` (the translator's write planning: sealed keys opened,
`translate`, diff against the previous resources) with the writer's host filter
(`hosts.host_options`). So the final resources are the bytes the translator stores for the
same events.

The replay version counts the translations that changed a tenant's resources: one per step,
except that events before the window shown are applied untranslated and translated once, at
the window's start. The translator coalesces events that arrive while a write is in flight,
so its stored version may be lower; the resources at a given offset are the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ripple_common.envelope import Envelope
from ripple_common.resources import PUSH_ORDER, Resource, TypeUrl
from ripple_common.sealing import Sealer
from ripple_translator.hosts import HostPolicy, host_options
from ripple_translator.partition_state import PartitionState, TenantObjects
from ripple_translator.store.model import ResourceKey
from ripple_translator.translate import Diagnostic, TranslateOptions
from ripple_translator.translate.naming import NamingError
from ripple_translator.writer import plan_write

_TYPE_RANK = {t: i for i, t in enumerate(PUSH_ORDER)}


@dataclass(frozen=True, slots=True)
class Change:
    """One resource changed by a step: `before`/`after` are None when it was added/removed."""

    type_url: TypeUrl
    name: str
    before: bytes | None
    after: bytes | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One event's effect on one replayed tenant."""

    offset: int
    timestamp_ms: int
    envelope: Envelope
    tenant: str
    # The tenant's objects (or its partition's classes / a re-list) changed.
    inputs_changed: bool
    version: int
    changes: tuple[Change, ...] = ()
    # Set when the tenant could not be translated (the translator writes nothing then).
    error: str | None = None
    diagnostics: tuple[Diagnostic, ...] = ()


@dataclass(slots=True)
class _Tenant:
    objects: TenantObjects
    options: TranslateOptions
    resources: dict[ResourceKey, Resource] = field(default_factory=dict)
    diagnostics: tuple[Diagnostic, ...] = ()
    version: int = 0
    events: int = 0
    dirty: bool = False


class PartitionReplay:
    """The replayed state of `tenants` on one partition. With `each_step=False` a tenant is
    translated only when its resources are asked for (fast: no per-step diff). `host_policy`
    and `withheld` (per tenant: hosts arbitration kept from it; arbitration happens in Redis,
    across tenants: its outcome is not in the log, the command passes the tenant's recorded
    outcome with --compare) give each tenant the `host_allowed` the translator's writer
    would use."""

    def __init__(
        self,
        tenants: Iterable[str],
        *,
        options: TranslateOptions,
        sealer: Sealer | None = None,
        host_policy: HostPolicy | None = None,
        withheld: Mapping[str, frozenset[str]] | None = None,
        each_step: bool = True,
    ) -> None:
        self._sealer = sealer
        self._each_step = each_step
        self._partition = PartitionState()
        policy, withheld = host_policy or HostPolicy(), withheld or {}
        self._tenants = {}
        for tenant in tenants:
            held = withheld.get(tenant, frozenset())
            tenant_options = host_options(options, tenant, policy, held, arbitrated=bool(held))
            self._tenants[tenant] = _Tenant(TenantObjects(tenant), tenant_options)
        self.events = 0

    def apply(
        self, envelope: Envelope, *, offset: int, timestamp_ms: int = 0, translate: bool = True
    ) -> list[Step]:
        """Apply one envelope read at `offset`; the steps of the replayed tenants it touched
        (an event of a replayed tenant always gives a step, changed or not). With
        `translate=False` (events before the window shown) a changed tenant is only marked, and
        translated at the next translated step or `catch_up`."""
        self.events += 1
        applied = self._partition.apply(envelope, offset=offset, tenants=_Replayed(self._tenants))
        touched = dict.fromkeys(applied.changed, True)
        if applied.tenant is not None:
            self._tenants[applied.tenant].events += 1
            touched = {applied.tenant: applied.tenant in applied.changed}
        return [
            self._step(
                tenant,
                changed,
                envelope,
                offset=offset,
                timestamp_ms=timestamp_ms,
                translate=translate and self._each_step,
            )
            for tenant, changed in touched.items()
        ]

    def catch_up(self) -> None:
        """Translate the tenants changed by untranslated events (one version for all of them),
        so the next step's diff shows that step's change alone."""
        for state in self._tenants.values():
            if state.dirty:
                self._translate(state)

    def _step(
        self,
        tenant: str,
        changed: bool,
        envelope: Envelope,
        *,
        offset: int,
        timestamp_ms: int,
        translate: bool,
    ) -> Step:
        state = self._tenants[tenant]
        changes: tuple[Change, ...] = ()
        error = None
        if changed:
            state.dirty = True
            if translate:
                changes, error = self._translate(state)
        return Step(
            offset=offset,
            timestamp_ms=timestamp_ms,
            envelope=envelope,
            tenant=tenant,
            inputs_changed=changed,
            version=state.version,
            changes=changes,
            error=error,
            diagnostics=state.diagnostics if changed else (),
        )

    def _translate(self, state: _Tenant) -> tuple[tuple[Change, ...], str | None]:
        state.dirty = False
        try:
            plan = plan_write(
                state.objects,
                changed=(),
                classes=self._partition.objects.class_objects(),
                resource_versions={k: r.version for k, r in state.resources.items()},
                options=state.options,
                sealer=self._sealer,
            )
        except NamingError as exc:
            return (), str(exc)
        state.diagnostics = plan.translation.diagnostics
        if not plan.diff:
            return (), None
        changes = [
            Change(r.type_url, r.name, _body(state.resources.get((r.type_url, r.name))), r.body)
            for r in plan.diff.upserts
        ]
        changes += [
            Change(key[0], key[1], state.resources[key].body, None) for key in plan.diff.removals
        ]
        state.resources = {(r.type_url, r.name): r for r in plan.translation.resources}
        state.version += 1
        return tuple(sorted(changes, key=lambda c: (_TYPE_RANK[c.type_url], c.name))), None

    # -- results --------------------------------------------------------------------------

    @property
    def tenants(self) -> tuple[str, ...]:
        return tuple(self._tenants)

    def events_of(self, tenant: str) -> int:
        """Events of `tenant` applied so far (0: the log holds none: an unknown tenant)."""
        return self._tenants[tenant].events

    def version(self, tenant: str) -> int:
        return self._tenants[tenant].version

    def resources(self, tenant: str) -> Mapping[ResourceKey, Resource]:
        """The tenant's resources after every event applied so far."""
        state = self._tenants[tenant]
        if state.dirty:
            self._translate(state)
        return dict(state.resources)

    def diagnostics(self, tenant: str) -> tuple[Diagnostic, ...]:
        self.resources(tenant)
        return self._tenants[tenant].diagnostics


@dataclass(frozen=True, slots=True)
class _Replayed:
    """The replayed tenants as the event rules see them (no stored inputs: nothing covered)."""

    tenants: Mapping[str, _Tenant]

    def objects(self, tenant: str) -> TenantObjects | None:
        state = self.tenants.get(tenant)
        return state.objects if state is not None else None

    def covered(self, tenant: str) -> int:
        return 0

    def names(self) -> Iterable[str]:
        return self.tenants


def _body(resource: Resource | None) -> bytes | None:
    return None if resource is None else resource.body
