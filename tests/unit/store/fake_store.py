"""An in-memory `TenantStore` and `HostRegistry` in one fake, with the Redis adapters'
semantics (fencing, empty diffs: `RedisTenantStore`; host arbitration: `RedisHostRegistry`),
for translator tests that need no Redis. The integration tests run the same behaviour checks
against both this fake and the Redis adapters."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ripple_common.resources import Resource
from ripple_translator.hosts import (
    ClaimOutcome,
    HostNotice,
    HostRecord,
    HostState,
    HostView,
    claim_host,
    withdraw_host,
)
from ripple_translator.store import (
    ChangeEntry,
    Checkpoint,
    InputChanges,
    InputCheckpoint,
    KafkaOffset,
    VersionConflictError,
)
from ripple_translator.store.inputs import stale_inputs
from ripple_translator.store.model import ResourceKey
from ripple_translator.store.redis_store import change_entry, write_args


@dataclass(slots=True)
class _Tenant:
    version: int = 0
    offset: KafkaOffset | None = None
    resources: dict[ResourceKey, Resource] = field(default_factory=dict)


class FakeTenantStore:
    def __init__(self) -> None:
        self.tenants: dict[str, _Tenant] = {}
        self.inputs: dict[str, InputCheckpoint] = {}
        self.records: dict[str, HostRecord] = {}
        self._clock = 0
        self._offset = 0
        self.host_states: dict[str, dict[str, HostState]] = {}
        self.notices: list[HostNotice] = []
        self.changes: list[ChangeEntry] = []

    async def write_version(
        self,
        tenant: str,
        upserts: Sequence[Resource],
        removals: Sequence[ResourceKey],
        *,
        offset: KafkaOffset,
        expected_version: int,
        trace_fields: Mapping[str, str],
        inputs: InputChanges | None = None,
    ) -> int:
        state = self.tenants.setdefault(tenant, _Tenant())
        if state.version != expected_version:
            raise VersionConflictError(tenant, expected=expected_version, actual=state.version)
        write_args(upserts, removals, offset=offset, expected_version=expected_version)
        if inputs is not None:
            stored = await self.load_inputs(tenant)
            if not stale_inputs(stored.offset, offset):
                objects = inputs.applied_to(stored.objects)
                self.inputs[tenant] = InputCheckpoint(tenant=tenant, offset=offset, objects=objects)
        if not upserts and not removals:
            return state.version
        for resource in upserts:
            state.resources[(resource.type_url, resource.name)] = resource
        for key in removals:
            state.resources.pop(key, None)
        state.version += 1
        state.offset = offset
        self.changes.append(change_entry(tenant, state.version, upserts, removals, trace_fields))
        return state.version

    async def load_checkpoint(self, tenant: str) -> Checkpoint:
        state = self.tenants.get(tenant, _Tenant())
        return Checkpoint(
            tenant=tenant,
            version=state.version,
            offset=state.offset,
            resource_versions={k: r.version for k, r in state.resources.items()},
        )

    async def load_inputs(self, tenant: str) -> InputCheckpoint:
        return self.inputs.get(tenant, InputCheckpoint(tenant=tenant, offset=None))

    async def announce(self, tenant: str, *, trace_fields: Mapping[str, str]) -> int:
        version = self.tenants.get(tenant, _Tenant()).version
        if version:
            self.changes.append(
                ChangeEntry(tenant=tenant, version=version, full=True, trace=dict(trace_fields))
            )
        return version

    def now(self) -> int:
        """The store's clock (epoch µs, strictly increasing, as Redis's TIME in practice);
        `advance` moves it on."""
        self._clock = max(self._clock + 1, time.time_ns() // 1000 + self._offset)
        return self._clock

    def advance(self, seconds: float) -> None:
        self._offset += round(seconds * 1_000_000)

    async def claim(
        self,
        tenant: str,
        hosts: Iterable[str],
        *,
        record: Mapping[str, HostState] | None = None,
    ) -> dict[str, ClaimOutcome]:
        if record is not None:
            self.host_states[tenant] = dict(record)
        out: dict[str, ClaimOutcome] = {}
        for host in sorted(set(hosts)):
            self.records[host], out[host] = claim_host(
                self.records.get(host, HostRecord()), tenant, host=host, now=self.now()
            )
        return out

    async def withdraw(
        self,
        tenant: str,
        *,
        stop_serving: Iterable[str],
        release: Iterable[str],
        hold_s: float = 0.0,
    ) -> list[HostNotice]:
        gone = set(release)
        out: list[HostNotice] = []
        for host in sorted(gone | set(stop_serving)):
            self.records[host], released, notify = withdraw_host(
                self.records.get(host, HostRecord()),
                tenant,
                release=host in gone,
                now=self.now(),
                hold_us=round(hold_s * 1_000_000),
            )
            why = "released" if released else "withdrawn"
            out.extend(HostNotice(tenant=t, host=host, why=why) for t in notify if t != tenant)
        return out

    def record(self, host: str) -> HostRecord:
        """The host's arbitration state now (an ended hold is gone)."""
        return self.records.get(host, HostRecord()).at(self.now())

    def owner(self, host: str) -> str | None:
        return self.record(host).owner

    async def load_host_states(self, tenants: Sequence[str]) -> dict[str, dict[str, HostState]]:
        return {t: dict(self.host_states[t]) for t in tenants if self.host_states.get(t)}

    async def save_host_states(self, tenant: str, states: Mapping[str, HostState]) -> None:
        self.host_states[tenant] = dict(states)

    async def host_views(self, hosts: Iterable[str]) -> dict[str, HostView]:
        return {
            h: HostView(
                owner=(r := self.record(h)).owner,
                serving=r.serving,
                held=r.owner is not None and r.held_until is not None,
            )
            for h in set(hosts)
        }

    async def notify(self, notices: Sequence[HostNotice]) -> None:
        self.notices.extend(notices)

    async def notices_position(self) -> str:
        return str(len(self.notices))

    async def read_notices(
        self, position: str, *, block_ms: int, count: int = 1000
    ) -> tuple[str, list[HostNotice]]:
        start = int(position)
        batch = self.notices[start : start + count]
        return str(start + len(batch)), batch

    async def owners(self, hosts: Iterable[str]) -> dict[str, str | None]:
        return {h: self.owner(h) for h in sorted(set(hosts))}
