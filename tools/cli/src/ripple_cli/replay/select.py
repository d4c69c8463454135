"""Selecting and decoding what to replay (pure): which records belong to the replayed tenants,
envelope decoding with a clear error for a newer schema, object filters, time parsing."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from ripple_cli.replay.model import LogRecord, ReplayError
from ripple_common.envelope import CLUSTER_TENANT, SCHEMA_VERSION, Envelope, EnvelopeError

CLUSTER_KEY = CLUSTER_TENANT.encode()


class NewerSchemaError(ReplayError):
    """An envelope written by a newer watcher than this replay understands."""


def wanted(record: LogRecord, tenants: frozenset[str]) -> bool:
    """Whether a record may concern the tenants, by its Kafka key alone (cheap: no decode).
    Cluster-scoped events and re-list markers (key CLUSTER_TENANT) concern every tenant."""
    if record.key is None:
        return True  # not written by the watcher; decode it to find out
    return record.key == CLUSTER_KEY or record.key.decode(errors="replace") in tenants


def decode(record: LogRecord) -> Envelope | None:
    """The record's envelope; None for a message that is no envelope at all (the translator
    skips those too). A newer schema is an error: replaying past it would be wrong."""
    try:
        return Envelope.from_bytes(record.value)
    except EnvelopeError as exc:
        schema = _schema_of(record.value)
        if isinstance(schema, int) and schema > SCHEMA_VERSION:
            raise NewerSchemaError(
                f"the envelope at {record.topic}/{record.partition}@{record.offset} has schema "
                f"version {schema}, newer than this ripple understands ({SCHEMA_VERSION}): "
                "replay it with a newer ripple"
            ) from exc
        return None


def _schema_of(raw: bytes) -> object:
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return doc.get("schema") if isinstance(doc, dict) else None


@dataclass(frozen=True, slots=True)
class ObjectFilter:
    """`[Kind/][namespace/]name`: the events of matching objects only (kind case-insensitive)."""

    kind: str | None
    namespace: str | None
    name: str

    @classmethod
    def parse(cls, text: str) -> ObjectFilter:
        parts = text.split("/")
        if not all(parts) or len(parts) > 3:
            raise ReplayError(f"--object {text!r}: want [Kind/][namespace/]name")
        if len(parts) == 3:
            return cls(parts[0], parts[1], parts[2])
        if len(parts) == 2:
            return cls(None, parts[0], parts[1])
        return cls(None, None, parts[0])

    def matches(self, envelope: Envelope) -> bool:
        return (
            envelope.name == self.name
            and (self.namespace is None or envelope.namespace == self.namespace)
            and (self.kind is None or envelope.kind.lower() == self.kind.lower())
        )


def any_matches(filters: Iterable[ObjectFilter], envelope: Envelope) -> bool:
    filters = tuple(filters)
    return not filters or any(f.matches(envelope) for f in filters)


def parse_time(text: str) -> int:
    """Epoch milliseconds from ISO 8601 (`2026-11-25T14:03:00Z`; no zone = UTC) or a number of
    epoch milliseconds."""
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ReplayError(
            f"time {text!r}: want ISO 8601 (2026-11-25T14:03:00Z) or epoch ms"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def format_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
