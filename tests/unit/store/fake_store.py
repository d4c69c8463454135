"""An in-memory `TenantStore` with the Redis adapter's semantics (fencing, empty diffs, host
arbitration), for translator tests that need no Redis. The integration tests run the same
behaviour checks against both this fake and `RedisTenantStore`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ripple_common.resources import Resource
from ripple_translator.store import (
    ChangeEntry,
    Checkpoint,
    ClaimStatus,
    HostClaim,
    HostNotice,
    HostState,
    HostView,
    KafkaOffset,
    VersionConflictError,
)
from ripple_translator.store.model import ResourceKey, claim_wins, from_micros, to_micros
from ripple_translator.store.redis_store import change_entry, write_args


@dataclass(slots=True)
class _Tenant:
    version: int = 0
    offset: KafkaOffset | None = None
    resources: dict[ResourceKey, Resource] = field(default_factory=dict)


class FakeTenantStore:
    def __init__(self) -> None:
        self.tenants: dict[str, _Tenant] = {}
        self.hosts: dict[str, tuple[str, int]] = {}
        self.serving: dict[str, set[str]] = {}
        self.waiting: dict[str, set[str]] = {}
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
    ) -> int:
        state = self.tenants.setdefault(tenant, _Tenant())
        if state.version != expected_version:
            raise VersionConflictError(tenant, expected=expected_version, actual=state.version)
        if not upserts and not removals:
            return state.version
        write_args(upserts, removals, offset=offset, expected_version=expected_version)
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

    async def announce(self, tenant: str, *, trace_fields: Mapping[str, str]) -> int:
        version = self.tenants.get(tenant, _Tenant()).version
        if version:
            self.changes.append(
                ChangeEntry(tenant=tenant, version=version, full=True, trace=dict(trace_fields))
            )
        return version

    async def claim_hosts(
        self, tenant: str, hosts: Iterable[str], created_at: datetime
    ) -> dict[str, HostClaim]:
        return await self.claim(tenant, dict.fromkeys(hosts, created_at))

    async def claim(
        self,
        tenant: str,
        claims: Mapping[str, datetime],
        *,
        record: Mapping[str, HostState] | None = None,
    ) -> dict[str, HostClaim]:
        if record is not None:
            self.host_states[tenant] = dict(record)
        out: dict[str, HostClaim] = {}
        for host in sorted(claims):
            micros = to_micros(claims[host])
            owner = self.hosts.get(host)
            if claim_wins(
                claimer=tenant,
                claimer_micros=micros,
                owner=owner[0] if owner else None,
                owner_micros=owner[1] if owner else None,
            ):
                self.hosts[host] = (tenant, micros)
                self.waiting.get(host, set()).discard(tenant)
                serving = self.serving.setdefault(host, set())
                serving.add(tenant)
                taken = owner is not None and owner[0] != tenant
                out[host] = HostClaim(
                    host=host,
                    status=ClaimStatus.TAKEN if taken else ClaimStatus.OWNED,
                    owner=tenant,
                    owner_created_at=from_micros(micros),
                    previous=owner[0] if taken and owner else None,
                    others=tuple(sorted(serving - {tenant})),
                )
            else:
                assert owner is not None
                self.waiting.setdefault(host, set()).add(tenant)
                out[host] = HostClaim(
                    host=host,
                    status=ClaimStatus.LOST,
                    owner=owner[0],
                    owner_created_at=from_micros(owner[1]),
                )
        return out

    async def release_hosts(self, tenant: str, hosts: Iterable[str]) -> set[str]:
        released = {h for h in set(hosts) if self.hosts.get(h, ("",))[0] == tenant}
        await self.withdraw(tenant, stop_serving=(), release=hosts)
        return released

    async def withdraw(
        self, tenant: str, *, stop_serving: Iterable[str], release: Iterable[str]
    ) -> list[HostNotice]:
        gone = set(release)
        out: list[HostNotice] = []
        for host in sorted(gone | set(stop_serving)):
            serving = self.serving.get(host, set())
            removed = tenant in serving
            serving.discard(tenant)
            owner = self.hosts.get(host, ("",))[0]
            if host in gone:
                self.waiting.get(host, set()).discard(tenant)
                if owner == tenant:
                    del self.hosts[host]
                    waiting = sorted(self.waiting.pop(host, set()))
                    out.extend(HostNotice(tenant=t, host=host, why="released") for t in waiting)
                    continue
            if removed and owner and owner != tenant:
                out.append(HostNotice(tenant=owner, host=host, why="withdrawn"))
        return out

    async def load_host_states(self, tenants: Sequence[str]) -> dict[str, dict[str, HostState]]:
        return {t: dict(self.host_states[t]) for t in tenants if self.host_states.get(t)}

    async def save_host_states(self, tenant: str, states: Mapping[str, HostState]) -> None:
        self.host_states[tenant] = dict(states)

    async def host_views(self, hosts: Iterable[str]) -> dict[str, HostView]:
        return {
            h: HostView(
                owner=self.hosts[h][0] if h in self.hosts else None,
                serving=frozenset(self.serving.get(h, set())),
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
        return {h: (self.hosts[h][0] if h in self.hosts else None) for h in sorted(set(hosts))}
