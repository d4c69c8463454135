"""What this translator owns: its Kafka partitions (each with its cluster-scoped objects, the
IngressClasses) and the tenants loaded from them. One object, held by the engine (which adds
and removes partitions and tenants) and read by the writer (whether a slot is still ours,
and its partition's IngressClasses), so the writer needs no callback into the engine. The
slots it holds are changed by the writer alone (`slot.TenantSlot`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from ripple_translator.partition_state import (
    JsonObject,
    PartitionState,
    TenantObjects,
)
from ripple_translator.slot import TenantSlot, TopicPartition
from ripple_translator.store import PartitionCheckpoint


@dataclass(slots=True, kw_only=True)
class PartitionRun:
    """An owned partition."""

    tp: TopicPartition
    state: PartitionState
    # (kind, started offset): stored re-lists; (kind, started, finished): awaiting durability.
    relists: list[tuple[str, int]] = field(default_factory=list)
    finishing: list[tuple[str, int, int]] = field(default_factory=list)
    tenants: set[str] = field(default_factory=set)
    high: int | None = None
    committed: int | None = None
    # Set when its revocation begins: no new write of its tenants is scheduled after that
    # (those already scheduled finish before the hand-over).
    revoking: bool = False

    def checkpoint(self) -> PartitionCheckpoint:
        return PartitionCheckpoint(
            topic=self.tp[0],
            partition=self.tp[1],
            classes_offset=self.state.classes_offset,
            classes=dict(self.state.objects.classes),
            relists=tuple(self.relists),
            tenants=frozenset(self.tenants),
        )


class Ownership:
    """The owned partitions and their tenants' slots."""

    def __init__(self) -> None:
        self._runs: dict[TopicPartition, PartitionRun] = {}
        self._slots: dict[str, TenantSlot] = {}

    # -- reads (engine and writer) ----------------------------------------------------------

    def owns(self, slot: TenantSlot) -> bool:
        """The slot is still the registered one of its tenant (its partition not revoked):
        a write scheduled after its revocation began must not run (another instance owns
        the tenant next and re-applies what was not written)."""
        return slot.tp in self._runs and self._slots.get(slot.tenant) is slot

    def writable(self, tenant: str) -> TenantSlot | None:
        """The tenant's slot if a new write of it may be scheduled (owned, its partition not
        being handed over)."""
        slot = self._slots.get(tenant)
        run = self._runs.get(slot.tp) if slot is not None else None
        if slot is None or run is None or run.revoking:
            return None
        return slot

    def classes(self, tp: TopicPartition) -> tuple[JsonObject, ...]:
        """The partition's IngressClasses (none once it is revoked)."""
        run = self._runs.get(tp)
        return run.state.objects.class_objects() if run is not None else ()

    def slot(self, tenant: str) -> TenantSlot | None:
        return self._slots.get(tenant)

    def run(self, tp: TopicPartition) -> PartitionRun | None:
        return self._runs.get(tp)

    @property
    def partitions(self) -> frozenset[TopicPartition]:
        return frozenset(self._runs)

    def runs(self) -> list[PartitionRun]:
        return list(self._runs.values())

    def slots(self) -> list[TenantSlot]:
        return list(self._slots.values())

    def slots_of(self, run: PartitionRun) -> Iterator[TenantSlot]:
        """The loaded slots of the partition's tenants."""
        for tenant in run.tenants:
            slot = self._slots.get(tenant)
            if slot is not None:
                yield slot

    def table(self, run: PartitionRun) -> PartitionTenants:
        """The partition's loaded tenants, as the event rules see them."""
        return PartitionTenants(self, run)

    def __len__(self) -> int:
        return len(self._slots)

    # -- changes (engine only) --------------------------------------------------------------

    def add_partition(self, run: PartitionRun, slots: list[TenantSlot]) -> None:
        for slot in slots:
            self.add_tenant(run, slot)
        self._runs[run.tp] = run

    def add_tenant(self, run: PartitionRun, slot: TenantSlot) -> None:
        self._slots[slot.tenant] = slot
        run.tenants.add(slot.tenant)

    def remove_partition(self, run: PartitionRun) -> None:
        for tenant in run.tenants:
            self._slots.pop(tenant, None)
        del self._runs[run.tp]


class PartitionTenants:
    """`partition_state.TenantTable` over one owned partition's loaded slots."""

    def __init__(self, ownership: Ownership, run: PartitionRun) -> None:
        self._ownership = ownership
        self._run = run

    def objects(self, tenant: str) -> TenantObjects | None:
        slot = self._ownership.slot(tenant)
        return slot.objects if slot is not None else None

    def covered(self, tenant: str) -> int:
        slot = self._ownership.slot(tenant)
        return slot.input_offset if slot is not None else 0

    def names(self) -> list[str]:
        return sorted(t for t in self._run.tenants if self._ownership.slot(t) is not None)
