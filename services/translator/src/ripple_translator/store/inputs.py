"""Durable translator inputs: each tenant's Kubernetes objects and each partition's cluster
state, so a translator that takes a partition over can rebuild its memory without replaying
the topic from the beginning (see `engine` for why and how they are used).

Redis layout (every key built by `KeyLayout`; docs/redis-layout.md):

    P:{t}:input                  hash  "<kind>/<namespace>/<name>" -> sanitized object (JSON, as
                                       the watcher published it: TLS keys stay sealed), plus
                                       ~topic ~partition ~offset: the Kafka position (next
                                       offset to read) these inputs cover
    P:{_p.<topic>.<n>}:partition hash  classes (JSON name -> IngressClass), classes_offset,
                                       relists (JSON [[kind, started offset], ...])
    P:{_p.<topic>.<n>}:tenants   set   tenants ever written from partition n

A tenant's `input` hash shares the `{t}` slot with its version: the store's version script
writes both at once (`TenantStore.write_version`, `InputChanges`), fenced by the covered
offset (a stale writer cannot move a tenant's inputs backwards). The partition's keys are
`PartitionStore`'s. Tenant names cannot start with "_" (they are Kubernetes label values or
namespaces), so the partition keys never meet a tenant's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import redis.asyncio as aioredis

from ripple_common.store_contract import KafkaOffset, KeyLayout
from ripple_translator.partition_state import JsonObject, ObjectKey, decode_key, encode_key

META_TOPIC: Final = "~topic"
META_PARTITION: Final = "~partition"
META_OFFSET: Final = "~offset"


@dataclass(frozen=True, slots=True)
class InputCheckpoint:
    """A tenant's stored objects and the Kafka position they cover (None: never written)."""

    tenant: str
    offset: KafkaOffset | None
    objects: Mapping[ObjectKey, JsonObject] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InputChanges:
    """The tenant's objects changed since its stored inputs: written with its version."""

    upserts: Mapping[ObjectKey, JsonObject] = field(default_factory=dict)
    removals: tuple[ObjectKey, ...] = ()

    def applied_to(self, objects: Mapping[ObjectKey, JsonObject]) -> dict[ObjectKey, JsonObject]:
        out = dict(objects)
        out.update(self.upserts)
        for key in self.removals:
            out.pop(key, None)
        return out


NO_INPUT_CHANGES: Final = InputChanges()


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionCheckpoint:
    """A partition's cluster-scoped state: IngressClasses (applied up to `classes_offset`,
    exclusive), the re-lists whose effect is not yet durable (kind, RELIST_STARTED offset),
    and every tenant ever written from the partition."""

    topic: str
    partition: int
    classes_offset: int = 0
    classes: Mapping[str, JsonObject] = field(default_factory=dict)
    relists: tuple[tuple[str, int], ...] = ()
    tenants: frozenset[str] = frozenset()


class PartitionStore(Protocol):
    async def load_partition(self, topic: str, partition: int) -> PartitionCheckpoint: ...

    async def save_partition(self, checkpoint: PartitionCheckpoint) -> None:
        """Write classes, classes_offset and relists (`tenants` is only added to, below)."""
        ...

    async def add_tenant(self, topic: str, partition: int, tenant: str) -> None: ...


def stale_inputs(stored: KafkaOffset | None, offset: KafkaOffset) -> bool:
    """Whether inputs stored at `stored` cover a later offset of the same partition than a
    write at `offset` (which then leaves them alone)."""
    return (
        stored is not None
        and (stored.topic, stored.partition) == (offset.topic, offset.partition)
        and stored.offset > offset.offset
    )


def dump_json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def input_ops(changes: InputChanges) -> list[str]:
    """The version script's input operations: "i", field, body | "d", field."""
    args: list[str] = []
    for key in sorted(changes.upserts):
        args += ["i", encode_key(key), dump_json(changes.upserts[key])]
    for key in sorted(changes.removals):
        args += ["d", encode_key(key)]
    return args


def parse_inputs(tenant: str, raw: Mapping[bytes, bytes] | Mapping[Any, Any]) -> InputCheckpoint:
    """An input hash (HGETALL reply) as an InputCheckpoint."""
    fields = {_raw(k).decode(): _raw(v) for k, v in raw.items()}
    offset = None
    if META_TOPIC in fields:
        offset = KafkaOffset(
            topic=fields[META_TOPIC].decode(),
            partition=int(fields[META_PARTITION]),
            offset=int(fields[META_OFFSET]),
        )
    objects = {decode_key(k): json.loads(v) for k, v in fields.items() if not k.startswith("~")}
    return InputCheckpoint(tenant=tenant, offset=offset, objects=objects)


class RedisPartitionStore:
    """`PartitionStore` on Redis (a client that does not decode responses)."""

    def __init__(self, client: aioredis.Redis, *, layout: KeyLayout | None = None) -> None:
        self._client = client
        self._layout = layout or KeyLayout()

    async def load_partition(self, topic: str, partition: int) -> PartitionCheckpoint:
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._layout.partition(topic, partition))
            pipe.smembers(self._layout.partition_tenants(topic, partition))
            raw, members = await pipe.execute()
        fields: dict[str, bytes] = {k.decode(): v for k, v in raw.items()}
        classes: dict[str, Any] = json.loads(fields.get("classes", b"{}"))
        relists = tuple((str(k), int(o)) for k, o in json.loads(fields.get("relists", b"[]")))
        return PartitionCheckpoint(
            topic=topic,
            partition=partition,
            classes_offset=int(fields.get("classes_offset", b"0")),
            classes=classes,
            relists=relists,
            tenants=frozenset(m.decode() for m in members),
        )

    async def save_partition(self, checkpoint: PartitionCheckpoint) -> None:
        await self._client.hset(
            self._layout.partition(checkpoint.topic, checkpoint.partition),
            mapping={
                "classes": dump_json(dict(checkpoint.classes)),
                "classes_offset": str(checkpoint.classes_offset),
                "relists": dump_json([list(r) for r in checkpoint.relists]),
            },
        )

    async def add_tenant(self, topic: str, partition: int, tenant: str) -> None:
        await self._client.sadd(self._layout.partition_tenants(topic, partition), tenant)


def _raw(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()
