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
        micros = to_micros(created_at)
        out: dict[str, HostClaim] = {}
        for host in sorted(set(hosts)):
            owner = self.hosts.get(host)
            if claim_wins(
                claimer=tenant,
                claimer_micros=micros,
                owner=owner[0] if owner else None,
                owner_micros=owner[1] if owner else None,
            ):
                self.hosts[host] = (tenant, micros)
                taken = owner is not None and owner[0] != tenant
                out[host] = HostClaim(
                    host=host,
                    status=ClaimStatus.TAKEN if taken else ClaimStatus.OWNED,
                    owner=tenant,
                    owner_created_at=from_micros(micros),
                    previous=owner[0] if taken and owner else None,
                )
            else:
                assert owner is not None
                out[host] = HostClaim(
                    host=host,
                    status=ClaimStatus.LOST,
                    owner=owner[0],
                    owner_created_at=from_micros(owner[1]),
                )
        return out

    async def release_hosts(self, tenant: str, hosts: Iterable[str]) -> set[str]:
        released = {h for h in set(hosts) if self.hosts.get(h, ("",))[0] == tenant}
        for host in released:
            del self.hosts[host]
        return released

    async def owners(self, hosts: Iterable[str]) -> dict[str, str | None]:
        return {h: (self.hosts[h][0] if h in self.hosts else None) for h in sorted(set(hosts))}
