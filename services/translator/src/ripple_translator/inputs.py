"""Durable translator inputs: each tenant's Kubernetes objects and each partition's cluster
state, so a translator that takes a partition over can rebuild its memory without replaying
the topic from the beginning (see `engine` for why and how they are used).

Redis layout (prefix `P` as in `store.contract.KeyLayout`; every key carries a hash tag):

    P:{t}:input                  hash  "<kind>/<namespace>/<name>" -> sanitized object (JSON, as
                                       the watcher published it: TLS keys stay sealed), plus
                                       ~topic ~partition ~offset: the Kafka position (next
                                       offset to read) these inputs cover
    P:{_p.<topic>.<n>}:partition hash  classes (JSON name -> IngressClass), classes_offset,
                                       relists (JSON [[kind, started offset], ...])
    P:{_p.<topic>.<n>}:tenants   set   tenants ever written from partition n

The tenant's `input` hash shares the `{t}` slot with the tenant's resources, so the store's
version script could write both atomically; until it does (see the report) the translator
writes the inputs right after the resource version, fenced by the covered offset (a stale
writer cannot move a tenant's inputs backwards). Tenant names cannot start with "_" (they are
Kubernetes label values or namespaces), so the partition keys never meet a tenant's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from ripple_translator.store import KafkaOffset, KeyLayout
from ripple_translator.tenants import JsonObject, ObjectKey, decode_key, encode_key

META_TOPIC: Final = "~topic"
META_PARTITION: Final = "~partition"
META_OFFSET: Final = "~offset"


@dataclass(frozen=True, slots=True)
class InputCheckpoint:
    """A tenant's stored objects and the Kafka position they cover (None: never written)."""

    tenant: str
    offset: KafkaOffset | None
    objects: Mapping[ObjectKey, JsonObject] = field(default_factory=dict)


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


class InputStore(Protocol):
    async def load_inputs(self, tenant: str) -> InputCheckpoint: ...

    async def write_inputs(
        self,
        tenant: str,
        upserts: Mapping[ObjectKey, JsonObject],
        removals: Sequence[ObjectKey],
        *,
        offset: KafkaOffset,
    ) -> bool:
        """Apply the changes and set the covered offset; False (nothing written) when the
        stored inputs already cover a later offset of the same partition (a stale writer)."""
        ...

    async def load_partition(self, topic: str, partition: int) -> PartitionCheckpoint: ...

    async def save_partition(self, checkpoint: PartitionCheckpoint) -> None:
        """Write classes, classes_offset and relists (`tenants` is only added to, below)."""
        ...

    async def add_tenant(self, topic: str, partition: int, tenant: str) -> None: ...


# KEYS: input key. ARGV: topic, partition, offset, then "u", field, body | "r", field.
# Reply: 1 written, 0 stale (stored offset of the same partition is later).
WRITE_INPUTS_LUA = """
local cur = redis.call('HMGET', KEYS[1], '~topic', '~partition', '~offset')
if cur[1] == ARGV[1] and cur[2] == ARGV[2] and tonumber(cur[3]) > tonumber(ARGV[3]) then
  return 0
end
local i = 4
while i <= #ARGV do
  if ARGV[i] == 'u' then
    redis.call('HSET', KEYS[1], ARGV[i + 1], ARGV[i + 2])
    i = i + 3
  else
    redis.call('HDEL', KEYS[1], ARGV[i + 1])
    i = i + 2
  end
end
redis.call('HSET', KEYS[1], '~topic', ARGV[1], '~partition', ARGV[2], '~offset', ARGV[3])
return 1
"""


def dump_json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def write_inputs_args(
    upserts: Mapping[ObjectKey, JsonObject], removals: Sequence[ObjectKey], offset: KafkaOffset
) -> list[str]:
    args = [offset.topic, str(offset.partition), str(offset.offset)]
    for key in sorted(upserts):
        args += ["u", encode_key(key), dump_json(upserts[key])]
    for key in sorted(removals):
        args += ["r", encode_key(key)]
    return args


def parse_inputs(tenant: str, raw: Mapping[bytes, bytes]) -> InputCheckpoint:
    fields = {k.decode(): v for k, v in raw.items()}
    offset = None
    if META_TOPIC in fields:
        offset = KafkaOffset(
            topic=fields[META_TOPIC].decode(),
            partition=int(fields[META_PARTITION]),
            offset=int(fields[META_OFFSET]),
        )
    objects = {decode_key(k): json.loads(v) for k, v in fields.items() if not k.startswith("~")}
    return InputCheckpoint(tenant=tenant, offset=offset, objects=objects)


class RedisInputStore:
    """`InputStore` on Redis (a client that does not decode responses)."""

    def __init__(self, client: aioredis.Redis, *, layout: KeyLayout | None = None) -> None:
        self._client = client
        self._prefix = (layout or KeyLayout()).prefix
        self._write: AsyncScript = client.register_script(WRITE_INPUTS_LUA)

    def input_key(self, tenant: str) -> str:
        return f"{self._prefix}:{{{tenant}}}:input"

    def partition_key(self, topic: str, partition: int) -> str:
        return f"{self._prefix}:{{_p.{topic}.{partition}}}:partition"

    def tenants_key(self, topic: str, partition: int) -> str:
        return f"{self._prefix}:{{_p.{topic}.{partition}}}:tenants"

    async def load_inputs(self, tenant: str) -> InputCheckpoint:
        raw = await self._client.hgetall(self.input_key(tenant))
        return parse_inputs(tenant, {_raw(k): _raw(v) for k, v in raw.items()})

    async def write_inputs(
        self,
        tenant: str,
        upserts: Mapping[ObjectKey, JsonObject],
        removals: Sequence[ObjectKey],
        *,
        offset: KafkaOffset,
    ) -> bool:
        args = write_inputs_args(upserts, removals, offset)
        written = await self._write(keys=[self.input_key(tenant)], args=args)
        return bool(int(written))

    async def load_partition(self, topic: str, partition: int) -> PartitionCheckpoint:
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.partition_key(topic, partition))
            pipe.smembers(self.tenants_key(topic, partition))
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
            self.partition_key(checkpoint.topic, checkpoint.partition),
            mapping={
                "classes": dump_json(dict(checkpoint.classes)),
                "classes_offset": str(checkpoint.classes_offset),
                "relists": dump_json([list(r) for r in checkpoint.relists]),
            },
        )

    async def add_tenant(self, topic: str, partition: int, tenant: str) -> None:
        await self._client.sadd(self.tenants_key(topic, partition), tenant)


def _raw(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()
