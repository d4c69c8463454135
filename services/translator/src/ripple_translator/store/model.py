"""What the translator asks of its tenant store: the `TenantStore` Protocol, its values and
errors, and the pure diffing behind them. No I/O. (Host ownership's values, rules and its
`HostRegistry` Protocol: `ripple_translator.hosts`.)"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ripple_common.resources import Resource, TypeUrl
from ripple_common.store_contract import KafkaOffset
from ripple_translator.store.inputs import InputChanges, InputCheckpoint

ResourceKey = tuple[TypeUrl, str]


class StoreError(Exception):
    """Base of the store's errors."""


class VersionConflictError(StoreError):
    """Fencing: the tenant is not at the version the writer expected (another translator wrote
    a newer one, or this one's view is stale). Nothing was written; the writer must stop
    writing this tenant (ownership moved) or reload its checkpoint."""

    def __init__(self, tenant: str, *, expected: int, actual: int) -> None:
        super().__init__(f"tenant {tenant!r} is at version {actual}, expected {expected}")
        self.tenant = tenant
        self.expected = expected
        self.actual = actual


class PositionFencedError(VersionConflictError):
    """Fencing by position: the tenant's stored version covers a later offset of the same
    Kafka partition than the write (a writer replaying from an older position, e.g. after a
    rebalance whose commit failed). Nothing was written; the writer must reload the tenant
    (its stored inputs cover more than its memory) instead of writing its state on top."""

    def __init__(
        self, tenant: str, *, offset: int, stored_offset: int, expected: int, actual: int
    ) -> None:
        StoreError.__init__(
            self,
            f"tenant {tenant!r} is stored at offset {stored_offset} (version {actual}): "
            f"a write from offset {offset} is older",
        )
        self.tenant = tenant
        self.expected = expected
        self.actual = actual
        self.offset = offset
        self.stored_offset = stored_offset


class AnnounceError(StoreError):
    """The tenant version was written (durable) but its `ripple.changes` entry was not
    appended. Readers catch up at the tenant's next entry (they see the version jump) or at
    the next `announce`; callers should retry `announce`."""

    def __init__(self, tenant: str, version: int, cause: BaseException) -> None:
        super().__init__(f"tenant {tenant!r} version {version} written but not announced: {cause}")
        self.tenant = tenant
        self.version = version


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a translator needs to resume a tenant: its version (the next write's
    `expected_version`), the Kafka position that version covers (None: never written) and
    the content version (`Resource.version`) of every stored resource, to diff against."""

    tenant: str
    version: int
    offset: KafkaOffset | None
    resource_versions: Mapping[ResourceKey, str]


@dataclass(frozen=True, slots=True)
class Diff:
    upserts: tuple[Resource, ...]
    removals: tuple[ResourceKey, ...]

    def __bool__(self) -> bool:
        return bool(self.upserts or self.removals)


def diff_resources(stored: Mapping[ResourceKey, str], desired: Iterable[Resource]) -> Diff:
    """Upserts (new or different content) and removals (stored but no longer desired) that
    turn `stored` (content versions) into `desired`. Deterministic order."""
    wanted: dict[ResourceKey, Resource] = {}
    for resource in desired:
        key = (resource.type_url, resource.name)
        if key in wanted:
            raise ValueError(f"{resource.type_url.short} {resource.name!r} given twice")
        wanted[key] = resource
    upserts = tuple(
        r for key, r in sorted(wanted.items(), key=_key_order) if stored.get(key) != r.version
    )
    removals = tuple(sorted((k for k in stored if k not in wanted), key=_order))
    return Diff(upserts=upserts, removals=removals)


def _order(key: ResourceKey) -> tuple[str, str]:
    return (key[0].short, key[1])


def _key_order(item: tuple[ResourceKey, Resource]) -> tuple[str, str]:
    return _order(item[0])


def apply_diff(stored: Mapping[ResourceKey, str], diff: Diff) -> dict[ResourceKey, str]:
    """`stored` after `diff` was written (the translator's new baseline)."""
    out = dict(stored)
    for resource in diff.upserts:
        out[(resource.type_url, resource.name)] = resource.version
    for key in diff.removals:
        out.pop(key, None)
    return out


# -- the Protocol -----------------------------------------------------------------------------


class TenantStore(Protocol):
    """Where a translator keeps its tenants' resources (Redis in production)."""

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
        """Write one tenant version atomically (changed resources, removed names, version+1,
        offset, and the changed `inputs` with the position they cover, unless the stored
        inputs cover a later offset of the same partition) if the tenant is at
        `expected_version` (else VersionConflictError, nothing written), then announce it on
        the change stream. Returns the new version; an empty diff writes only the inputs and
        returns the current version."""
        ...

    async def load_checkpoint(self, tenant: str) -> Checkpoint: ...

    async def load_inputs(self, tenant: str) -> InputCheckpoint:
        """The tenant's stored objects and the position they cover."""
        ...

    async def announce(self, tenant: str, *, trace_fields: Mapping[str, str]) -> int:
        """Append a `full` change entry at the tenant's current version (call after taking a
        tenant over, or after AnnounceError). Returns that version (0: nothing stored)."""
        ...
