"""The Redis contract between the translator (writer) and the xds servers (readers): key names,
the tenant meta fields, the `ripple.changes` entry format and the Lua script that reads one
tenant atomically. Pure: no I/O (the Lua source is data).

It lives in the shared library because both services depend on it and services never import
each other; see docs/redis-layout.md.

Every key is built by `KeyLayout` (prefix `P`, default "ripple"; `{t}` is the tenant as a
Redis Cluster hash tag, so all keys of one tenant live in one slot and one Lua script may
touch them all; docs/redis-layout.md describes each):

    P:{t}:meta          hash   version (int, monotonic, 0 = never written), topic, partition,
                               offset (the Kafka position the version covers: next offset to read)
    P:{t}:res:<short>   hash   resource name -> serialized Envoy proto, one hash per type
                               (<short> = TypeUrl.short: cds eds lds rds srds vhds sds)
    P:{t}:input         hash   the tenant's sanitized objects and the Kafka position they cover
                               (the translator's inputs, written by the same script as the version)
    P:{t}:hosts         hash   host -> the state the tenant recorded (served, blocked, lost)
    P:host:{<host>}     hash   tenant, created (its claim time, Redis clock, epoch microseconds),
                               held (set while a released host is held for it): host owner;
                               beside it :serving, :waiting (sets), :claims (hash tenant ->
                               claim time) in the same slot (docs/host-ownership.md)
    P:{_p.<topic>.<n>}:partition, :tenants  a Kafka partition's cluster state and tenants
    P.tenants           set    every tenant ever written (the readers' index; SADD after write)
    P.changes           stream one entry per tenant version (see `ChangeEntry`), XADD after the
                               tenant write, MAXLEN ~ configurable
    P.hostevents        stream host notices (a tenant must re-translate: a host changed hands)
    P.default-certificate      the gateway's generated default certificate (xds)

`P.tenants` and `P.changes` sit in their own slots, so they are written after the atomic tenant
script (at-least-once); readers tolerate duplicates and detect missed entries by version."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ripple_common.resources import Resource, TypeUrl

SCHEMA = "1"

# Fixed order of the per-type resource hashes in scripts' KEYS (after the meta key).
TYPE_ORDER: tuple[TypeUrl, ...] = tuple(TypeUrl)
_BY_SHORT: dict[str, TypeUrl] = {t.short: t for t in TypeUrl}

# Tenant meta hash fields.
F_VERSION = "version"
F_TOPIC = "topic"
F_PARTITION = "partition"
F_OFFSET = "offset"


class ContractError(ValueError):
    """A key part, stream entry or script reply that does not follow the contract."""


def type_from_short(short: str) -> TypeUrl:
    try:
        return _BY_SHORT[short]
    except KeyError:
        raise ContractError(f"unknown resource type {short!r}") from None


def _check_tag_part(kind: str, value: str) -> str:
    if not value or "{" in value or "}" in value:
        raise ContractError(f"{kind} {value!r} must be non-empty and hold no braces")
    return value


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """Key names under one prefix (tests use a random prefix to stay apart)."""

    prefix: str = "ripple"

    def __post_init__(self) -> None:
        _check_tag_part("prefix", self.prefix)

    def meta(self, tenant: str) -> str:
        return f"{self.prefix}:{{{_check_tag_part('tenant', tenant)}}}:meta"

    def resources(self, tenant: str, type_url: TypeUrl) -> str:
        return f"{self.prefix}:{{{_check_tag_part('tenant', tenant)}}}:res:{type_url.short}"

    def tenant_keys(self, tenant: str) -> list[str]:
        """KEYS of the tenant scripts: meta, then one resource hash per type in TYPE_ORDER."""
        return [self.meta(tenant), *(self.resources(tenant, t) for t in TYPE_ORDER)]

    def inputs(self, tenant: str) -> str:
        """The translator's stored inputs of the tenant (same slot as its version)."""
        return f"{self.prefix}:{{{_check_tag_part('tenant', tenant)}}}:input"

    def host_states(self, tenant: str) -> str:
        """What the tenant recorded about each host it asked for (same slot as its version)."""
        return f"{self.prefix}:{{{_check_tag_part('tenant', tenant)}}}:hosts"

    def host(self, host: str) -> str:
        return f"{self.prefix}:host:{{{_check_tag_part('host', host)}}}"

    def host_keys(self, host: str) -> list[str]:
        """KEYS of the host scripts: the owner hash, the serving and waiting sets and the
        claims hash (one slot: the host's hash tag)."""
        key = self.host(host)
        return [key, f"{key}:serving", f"{key}:waiting", f"{key}:claims"]

    def partition(self, topic: str, partition: int) -> str:
        """A Kafka partition's cluster state (IngressClasses, re-lists in progress). Tenant
        names cannot start with "_", so this tag never meets a tenant's."""
        return f"{self.prefix}:{{{self._partition_tag(topic, partition)}}}:partition"

    def partition_tenants(self, topic: str, partition: int) -> str:
        """The tenants ever written from a Kafka partition (same slot as its state)."""
        return f"{self.prefix}:{{{self._partition_tag(topic, partition)}}}:tenants"

    @staticmethod
    def _partition_tag(topic: str, partition: int) -> str:
        return f"_p.{_check_tag_part('topic', topic)}.{partition}"

    @property
    def host_notices(self) -> str:
        return f"{self.prefix}.hostevents"

    @property
    def changes(self) -> str:
        return f"{self.prefix}.changes"

    @property
    def tenants(self) -> str:
        return f"{self.prefix}.tenants"

    @property
    def default_certificate(self) -> str:
        """The gateway's generated default certificate shared by the xds replicas (its key
        sealed): `ripple_xds.default_certificate_store`."""
        return f"{self.prefix}.default-certificate"


@dataclass(frozen=True, slots=True)
class KafkaOffset:
    """The Kafka position a tenant version covers: the next offset to consume."""

    topic: str
    partition: int
    offset: int


NameMap = Mapping[TypeUrl, tuple[str, ...]]

# Propagation marks a change entry carries beside its W3C trace fields (in `ChangeEntry.trace`,
# epoch nanoseconds as decimal text): when the watcher observed the oldest event the version
# covers, when that event was published to Kafka (the record's timestamp), and when the
# translator handed the version to Redis. xds adds when it applied and when Envoy ACKed.
# `ripple-api-ns` is the API server's own time of that event's change (the envelope's
# `api_at_ns`, whole seconds), absent when not known.
OBSERVED_FIELD = "ripple-observed-ns"
API_FIELD = "ripple-api-ns"
PUBLISHED_FIELD = "ripple-published-ns"
WRITTEN_FIELD = "ripple-written-ns"


@dataclass(frozen=True, slots=True)
class Marks:
    """The propagation marks of one change entry (None: not carried)."""

    observed_ns: int | None = None
    published_ns: int | None = None
    written_ns: int | None = None
    api_ns: int | None = None

    def fields(self) -> dict[str, str]:
        """The marks as entry fields (absent marks left out)."""
        pairs = (
            (OBSERVED_FIELD, self.observed_ns),
            (PUBLISHED_FIELD, self.published_ns),
            (WRITTEN_FIELD, self.written_ns),
            (API_FIELD, self.api_ns),
        )
        return {key: str(value) for key, value in pairs if value is not None}

    @classmethod
    def of(cls, fields: Mapping[str, str]) -> Marks:
        """The marks among `fields` (malformed ones read as absent)."""
        return cls(
            observed_ns=_int_or_none(fields.get(OBSERVED_FIELD)),
            published_ns=_int_or_none(fields.get(PUBLISHED_FIELD)),
            written_ns=_int_or_none(fields.get(WRITTEN_FIELD)),
            api_ns=_int_or_none(fields.get(API_FIELD)),
        )


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class ChangeEntry:
    """One `P.changes` entry: tenant reached `version`; `upserts`/`removals` name what changed
    since the previous version. `full` (an announcement, e.g. after a translator takeover)
    names nothing: a reader behind `version` re-reads the whole tenant. `trace` holds the W3C
    fields (`traceparent`, `tracestate`) and the propagation marks (`Marks`)."""

    tenant: str
    version: int
    upserts: NameMap = field(default_factory=dict)
    removals: NameMap = field(default_factory=dict)
    full: bool = False
    trace: Mapping[str, str] = field(default_factory=dict)

    @property
    def marks(self) -> Marks:
        return Marks.of(self.trace)

    def names(self) -> dict[TypeUrl, set[str]]:
        """Every name the entry mentions, upserted or removed, per type."""
        out: dict[TypeUrl, set[str]] = {}
        for names_by_type in (self.upserts, self.removals):
            for type_url, names in names_by_type.items():
                out.setdefault(type_url, set()).update(names)
        return out

    def encode(self) -> dict[str, str]:
        fields = {
            "schema": SCHEMA,
            "tenant": self.tenant,
            "version": str(self.version),
            "up": _encode_names(self.upserts),
            "rm": _encode_names(self.removals),
        }
        if self.full:
            fields["full"] = "1"
        for key, value in self.trace.items():
            if key in fields:
                raise ContractError(f"trace field {key!r} clashes with an entry field")
            fields[key] = value
        return fields

    @classmethod
    def decode(
        cls,
        raw: Mapping[bytes, bytes] | Mapping[str, str] | Mapping[bytes | str, bytes | str],
    ) -> ChangeEntry:
        fields = {_text(k): _text(v) for k, v in raw.items()}
        if fields.get("schema") != SCHEMA:
            raise ContractError(f"unsupported change entry schema {fields.get('schema')!r}")
        try:
            tenant = fields.pop("tenant")
            version = int(fields.pop("version"))
        except (KeyError, ValueError) as exc:
            raise ContractError(f"change entry without tenant/version: {exc}") from None
        upserts = _decode_names(fields.pop("up", "{}"))
        removals = _decode_names(fields.pop("rm", "{}"))
        full = fields.pop("full", "0") == "1"
        fields.pop("schema")
        return cls(
            tenant=tenant,
            version=version,
            upserts=upserts,
            removals=removals,
            full=full,
            trace=fields,
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _encode_names(names: NameMap) -> str:
    return json.dumps(
        {t.short: sorted(n) for t, n in sorted(names.items(), key=lambda i: i[0].short) if n},
        separators=(",", ":"),
    )


def _decode_names(text: str) -> dict[TypeUrl, tuple[str, ...]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractError(f"bad names field: {exc}") from None
    if not isinstance(data, dict):
        raise ContractError("names field is not an object")
    out: dict[TypeUrl, tuple[str, ...]] = {}
    for short, names in data.items():
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ContractError(f"names of {short!r} are not a list of strings")
        out[type_from_short(short)] = tuple(names)
    return out


# -- reading a tenant -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TenantState:
    """One tenant as stored at one version (read atomically by LOAD_TENANT_LUA)."""

    tenant: str
    version: int
    offset: KafkaOffset | None
    resources: tuple[Resource, ...]


# KEYS: tenant_keys(t). Reply: {version, topic, partition, offset, {name, body, ...} per type}.
LOAD_TENANT_LUA = """
local meta = redis.call('HMGET', KEYS[1], 'version', 'topic', 'partition', 'offset')
local out = {meta[1] or '0', meta[2] or '', meta[3] or '', meta[4] or ''}
for i = 2, #KEYS do
  out[#out + 1] = redis.call('HGETALL', KEYS[i])
end
return out
"""

# KEYS: tenant_keys(t). ARGV: per type in TYPE_ORDER: count, then that many names.
# Reply: {version, {body-or-nil per name} per type}.
FETCH_NAMES_LUA = """
local out = {redis.call('HGET', KEYS[1], 'version') or '0'}
local i = 1
for k = 2, #KEYS do
  local n = tonumber(ARGV[i])
  local values = {}
  for j = 1, n do
    values[j] = redis.call('HGET', KEYS[k], ARGV[i + j])
  end
  out[#out + 1] = values
  i = i + n + 1
end
return out
"""


def fetch_names_args(names: Mapping[TypeUrl, Sequence[str]]) -> list[str]:
    args: list[str] = []
    for type_url in TYPE_ORDER:
        wanted = list(names.get(type_url, ()))
        args.append(str(len(wanted)))
        args.extend(wanted)
    return args


def parse_fetch_names(
    names: Mapping[TypeUrl, Sequence[str]], reply: Sequence[object]
) -> tuple[int, list[Resource], list[tuple[TypeUrl, str]]]:
    """(current version, present resources, absent names) from a FETCH_NAMES_LUA reply."""
    if len(reply) != len(TYPE_ORDER) + 1:
        raise ContractError(f"fetch reply has {len(reply)} parts")
    version = int(_text(_as_bytes(reply[0])))
    present: list[Resource] = []
    absent: list[tuple[TypeUrl, str]] = []
    for type_url, values in zip(TYPE_ORDER, reply[1:], strict=True):
        wanted = list(names.get(type_url, ()))
        if not isinstance(values, list) or len(values) != len(wanted):
            raise ContractError(f"fetch reply for {type_url.short} does not match the request")
        for name, body in zip(wanted, values, strict=True):
            if body is None:
                absent.append((type_url, name))
            else:
                present.append(Resource(type_url, name, _as_bytes(body)))
    return version, present, absent


def parse_tenant_state(tenant: str, reply: Sequence[object]) -> TenantState:
    """A LOAD_TENANT_LUA reply as a TenantState."""
    if len(reply) != 4 + len(TYPE_ORDER):
        raise ContractError(f"tenant reply has {len(reply)} parts")
    head = [_text(_as_bytes(part)) for part in reply[:4]]
    version = int(head[0])
    offset = (
        KafkaOffset(topic=head[1], partition=int(head[2]), offset=int(head[3])) if head[1] else None
    )
    resources: list[Resource] = []
    for type_url, flat in zip(TYPE_ORDER, reply[4:], strict=True):
        if not isinstance(flat, list) or len(flat) % 2:
            raise ContractError(f"tenant reply for {type_url.short} is not a flat hash")
        for i in range(0, len(flat), 2):
            resources.append(Resource(type_url, _text(_as_bytes(flat[i])), _as_bytes(flat[i + 1])))
    return TenantState(tenant=tenant, version=version, offset=offset, resources=tuple(resources))


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int):
        return str(value).encode()
    raise ContractError(f"unexpected reply element {type(value).__name__}")
