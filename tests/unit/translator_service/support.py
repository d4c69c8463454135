"""Test data and fakes of the translator service: envelopes, records, an in-memory
`TenantStore` (with a gate to hold writes in flight) and an in-memory `PartitionStore`."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ripple_common.envelope import CLUSTER_TENANT, Envelope, EventType
from ripple_common.resources import Resource
from ripple_translator.engine import Record
from ripple_translator.store import InputChanges, KafkaOffset
from ripple_translator.store.inputs import PartitionCheckpoint
from ripple_translator.store.model import ResourceKey
from ripple_translator.translate import DEFAULT_CONTROLLER
from tests.unit.store.fake_store import FakeTenantStore

TOPIC = "events"
CLASS = "ripple"


def ingress(
    ns: str, name: str, host: str, *, annotations: Mapping[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": ns,
        "creationTimestamp": "2024-01-01T00:00:00Z",
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    return {
        "kind": "Ingress",
        "metadata": meta,
        "spec": {
            "ingressClassName": CLASS,
            "rules": [
                {
                    "host": host,
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "web", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ],
        },
    }


def service(ns: str, name: str = "web") -> dict[str, Any]:
    return {
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"ports": [{"name": "http", "port": 80}]},
    }


def ingress_class(name: str = CLASS, controller: str = DEFAULT_CONTROLLER) -> dict[str, Any]:
    return {"kind": "IngressClass", "metadata": {"name": name}, "spec": {"controller": controller}}


def event(
    tenant: str,
    obj: Mapping[str, Any] | None,
    *,
    type_: EventType = EventType.ADDED,
    kind: str | None = None,
    name: str | None = None,
) -> Envelope:
    meta = (obj or {}).get("metadata", {})
    return Envelope(
        type=type_,
        kind=kind or str((obj or {})["kind"]),
        tenant=tenant,
        namespace=meta.get("namespace"),
        name=name or str(meta["name"]),
        uid=f"uid-{meta.get('name')}",
        resource_version="1",
        observed_at_ns=1,
        object=None if type_ is EventType.DELETED else obj,
    )


def deleted(tenant: str, kind: str, ns: str, name: str) -> Envelope:
    return Envelope(
        type=EventType.DELETED,
        kind=kind,
        tenant=tenant,
        namespace=ns,
        name=name,
        uid=f"uid-{name}",
        resource_version="2",
        observed_at_ns=1,
    )


def marker(type_: EventType, kind: str) -> Envelope:
    return Envelope(
        type=type_,
        kind=kind,
        tenant=CLUSTER_TENANT,
        namespace=None,
        name="",
        uid="",
        resource_version="9",
        observed_at_ns=1,
    )


def cluster(obj: Mapping[str, Any], type_: EventType = EventType.ADDED) -> Envelope:
    return Envelope(
        type=type_,
        kind=str(obj["kind"]),
        tenant=CLUSTER_TENANT,
        namespace=None,
        name=str(obj["metadata"]["name"]),
        uid="u",
        resource_version="1",
        observed_at_ns=1,
        object=None if type_ is EventType.DELETED else obj,
    )


def record(
    offset: int,
    envelope: Envelope,
    *,
    partition: int = 0,
    headers: Sequence[tuple[str, bytes]] = (),
) -> Record:
    return Record(
        topic=TOPIC,
        partition=partition,
        offset=offset,
        value=envelope.to_bytes(),
        headers=tuple(headers),
    )


@dataclass(frozen=True, slots=True)
class WriteCall:
    tenant: str
    upserts: tuple[Resource, ...]
    removals: tuple[ResourceKey, ...]
    offset: KafkaOffset
    trace: Mapping[str, str]


class FakeStore(FakeTenantStore):
    """The store fake (`tests/unit/store/fake_store.py`) with a journal of every write call.
    Clear `gate` to hold writes in flight; an exception put in `fail` is raised once."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[WriteCall] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail: list[BaseException] = []

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
        await self.gate.wait()
        if self.fail:
            raise self.fail.pop(0)
        current = self.tenants[tenant].version if tenant in self.tenants else 0
        if current == expected_version:
            self.writes.append(
                WriteCall(tenant, tuple(upserts), tuple(removals), offset, dict(trace_fields))
            )
        return await super().write_version(
            tenant,
            upserts,
            removals,
            offset=offset,
            expected_version=expected_version,
            trace_fields=trace_fields,
            inputs=inputs,
        )

    def names(self, tenant: str) -> set[str]:
        return (
            {name for _, name in self.tenants[tenant].resources}
            if tenant in self.tenants
            else set()
        )


class FakePartitions:
    """`PartitionStore` in memory."""

    def __init__(self) -> None:
        self.partitions: dict[tuple[str, int], PartitionCheckpoint] = {}
        self.members: dict[tuple[str, int], set[str]] = {}

    async def load_partition(self, topic: str, partition: int) -> PartitionCheckpoint:
        saved = self.partitions.get(
            (topic, partition), PartitionCheckpoint(topic=topic, partition=partition)
        )
        return PartitionCheckpoint(
            topic=topic,
            partition=partition,
            classes_offset=saved.classes_offset,
            classes=saved.classes,
            relists=saved.relists,
            tenants=frozenset(self.members.get((topic, partition), set())),
        )

    async def save_partition(self, checkpoint: PartitionCheckpoint) -> None:
        self.partitions[(checkpoint.topic, checkpoint.partition)] = checkpoint

    async def add_tenant(self, topic: str, partition: int, tenant: str) -> None:
        self.members.setdefault((topic, partition), set()).add(tenant)
