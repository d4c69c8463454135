"""The event envelope: the one versioned schema that travels on the `ripple.events` topic.

The watcher publishes one envelope per Kubernetes watch event; translators consume them. The
envelope is JSON so the Kafka log stays readable by the replay tool and by humans.

Schema versions: 1 is every object event and relist marker; 2 adds TOO_LARGE (an object whose
envelope does not fit in one Kafka message even compressed: its identity and size, no object).
An envelope is written with the lowest version that can express it (TOO_LARGE as 2, the rest as
1), so translators of the previous release keep reading everything but the too-large markers
during a rolling upgrade; this code reads both.

Optional fields (no schema change: readers ignore fields they do not know, so a translator of
the previous release reads envelopes that carry them, and this code reads envelopes without
them as "not known"): `apiAtNs`, the API server's own time of the change (see `api_at_ns`).
It is written only when known, so an envelope without it is byte for byte what the previous
release wrote.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

# The newest envelope schema this code reads (and writes, for the envelopes that need it).
SCHEMA_VERSION: Final = 2
READABLE_SCHEMAS: Final = frozenset({1, 2})
EVENTS_TOPIC: Final = "ripple.events"
# Cluster-scoped objects (IngressClass, Namespace) and relist markers are keyed here; the
# watcher copies each such message to every partition of the topic, so every translator sees
# it in order with its own tenants' events.
CLUSTER_TENANT: Final = "_cluster"


class EnvelopeError(ValueError):
    """A message on the events topic that is not a valid envelope."""


class EventType(enum.StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    # A re-list of `kind` began / finished (keyed CLUSTER_TENANT, on every partition). After
    # RELIST_FINISHED the consumer must drop every object of that kind, of every tenant on that
    # partition, that it did not see on that partition since the matching RELIST_STARTED.
    RELIST_STARTED = "RELIST_STARTED"
    RELIST_FINISHED = "RELIST_FINISHED"
    # Schema 2. The object's envelope does not fit in one Kafka message (even compressed): it
    # is not published; this names it (kind, namespace, name, uid, resourceVersion) and carries
    # its encoded size and the limit instead (`too_large`). The consumer must treat the object
    # as not served: forget any older version of it, and tell its owner why.
    TOO_LARGE = "TOO_LARGE"


MARKER_TYPES: Final = frozenset({EventType.RELIST_STARTED, EventType.RELIST_FINISHED})
# Types only schema 2 (or later) can express.
_SCHEMA_2_TYPES: Final = frozenset({EventType.TOO_LARGE})


@dataclass(frozen=True, slots=True, kw_only=True)
class TooLarge:
    """Why a TOO_LARGE envelope carries no object: the size of the envelope that would have
    carried it, as it would have gone to Kafka (compressed when the producer compresses), and
    the largest message the topic accepts."""

    encoded_bytes: int
    limit_bytes: int

    def __post_init__(self) -> None:
        if self.encoded_bytes < 0 or self.limit_bytes < 0:
            raise EnvelopeError("too-large sizes must not be negative")

    def to_json(self) -> dict[str, int]:
        return {"encodedBytes": self.encoded_bytes, "limitBytes": self.limit_bytes}

    @classmethod
    def from_json(cls, doc: object) -> TooLarge:
        if not isinstance(doc, dict):
            raise EnvelopeError("envelope tooLarge must be a JSON object")
        try:
            encoded, limit = doc["encodedBytes"], doc["limitBytes"]
        except KeyError as exc:
            raise EnvelopeError(f"envelope tooLarge lacks field {exc.args[0]!r}") from exc
        if not isinstance(encoded, int) or not isinstance(limit, int):
            raise EnvelopeError("envelope tooLarge sizes must be integers")
        return cls(encoded_bytes=encoded, limit_bytes=limit)


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """One observed change of one Kubernetes object (or a relist marker)."""

    type: EventType
    kind: str
    tenant: str
    namespace: str | None
    name: str
    uid: str
    resource_version: str
    # Wall-clock nanoseconds since the epoch at which the watcher saw the event.
    observed_at_ns: int
    object: Mapping[str, Any] | None = field(default=None, hash=False, compare=False)
    # Only (and always) on TOO_LARGE.
    too_large: TooLarge | None = None
    # The API server's own time of the change, epoch nanoseconds, when the object says it
    # (creationTimestamp / newest managedFields time / deletionTimestamp: whole seconds, so
    # rounded down to the second); None when unknown (a deletion without deletionTimestamp,
    # a relist marker, an envelope of an older watcher). The start of the "API -> ACK" clock.
    api_at_ns: int | None = None

    def __post_init__(self) -> None:
        if not self.kind:
            raise EnvelopeError("envelope kind must not be empty")
        if not self.tenant:
            raise EnvelopeError("envelope tenant must not be empty")
        if self.type in MARKER_TYPES:
            if self.object is not None:
                raise EnvelopeError(f"{self.type} marker must not carry an object")
        elif not self.name:
            raise EnvelopeError(f"{self.type} event for {self.kind} has no object name")
        if self.type is EventType.TOO_LARGE:
            if self.object is not None:
                raise EnvelopeError("TOO_LARGE must not carry an object")
            if self.too_large is None:
                raise EnvelopeError("TOO_LARGE needs its sizes (too_large)")
        elif self.too_large is not None:
            raise EnvelopeError(f"{self.type} event must not carry too_large")
        if self.api_at_ns is not None and self.api_at_ns < 0:
            raise EnvelopeError("envelope apiAtNs must not be negative")

    @property
    def schema_version(self) -> int:
        """The schema this envelope is written with: the lowest that can express it."""
        return 2 if self.type in _SCHEMA_2_TYPES else 1

    def too_large_marker(self, *, encoded_bytes: int, limit_bytes: int) -> Envelope:
        """The TOO_LARGE envelope standing for this object event (same identity and time)."""
        if self.type in MARKER_TYPES or self.type is EventType.TOO_LARGE:
            raise EnvelopeError(f"a {self.type} envelope has no object to stand for")
        return Envelope(
            type=EventType.TOO_LARGE,
            kind=self.kind,
            tenant=self.tenant,
            namespace=self.namespace,
            name=self.name,
            uid=self.uid,
            resource_version=self.resource_version,
            observed_at_ns=self.observed_at_ns,
            too_large=TooLarge(encoded_bytes=encoded_bytes, limit_bytes=limit_bytes),
            api_at_ns=self.api_at_ns,
        )

    @property
    def key(self) -> bytes:
        """The Kafka message key: the tenant, so one tenant's events stay ordered."""
        return self.tenant.encode()

    def to_bytes(self) -> bytes:
        doc: dict[str, Any] = {
            "schema": self.schema_version,
            "type": self.type.value,
            "kind": self.kind,
            "tenant": self.tenant,
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
            "resourceVersion": self.resource_version,
            "observedAtNs": self.observed_at_ns,
            "object": self.object,
        }
        if self.too_large is not None:
            doc["tooLarge"] = self.too_large.to_json()
        if self.api_at_ns is not None:
            doc["apiAtNs"] = self.api_at_ns
        return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EnvelopeError(f"envelope is not JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise EnvelopeError("envelope must be a JSON object")
        schema = doc.get("schema")
        if isinstance(schema, bool) or schema not in READABLE_SCHEMAS:
            raise EnvelopeError(
                f"unsupported envelope schema {schema!r}, want one of {sorted(READABLE_SCHEMAS)}"
            )
        try:
            event_type = EventType(doc["type"])
            if event_type in _SCHEMA_2_TYPES and schema < 2:
                raise EnvelopeError(f"{event_type} needs envelope schema 2, got {schema}")
            obj = doc.get("object")
            if obj is not None and not isinstance(obj, dict):
                raise EnvelopeError("envelope object must be a JSON object or null")
            raw_too_large = doc.get("tooLarge")
            too_large = None if raw_too_large is None else TooLarge.from_json(raw_too_large)
            return cls(
                type=event_type,
                kind=_str(doc, "kind"),
                tenant=_str(doc, "tenant"),
                namespace=doc.get("namespace"),
                name=_str(doc, "name"),
                uid=_str(doc, "uid"),
                resource_version=_str(doc, "resourceVersion"),
                observed_at_ns=int(doc["observedAtNs"]),
                object=obj,
                too_large=too_large,
                api_at_ns=_optional_int(doc, "apiAtNs"),
            )
        except KeyError as exc:
            raise EnvelopeError(f"envelope lacks field {exc.args[0]!r}") from exc
        except (TypeError, ValueError) as exc:
            if isinstance(exc, EnvelopeError):
                raise
            raise EnvelopeError(f"envelope field has a wrong type: {exc}") from exc


def _optional_int(doc: Mapping[str, Any], key: str) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise EnvelopeError(
            f"envelope field {key!r} must be an integer, got {type(value).__name__}"
        )
    return value


def _str(doc: Mapping[str, Any], key: str) -> str:
    value = doc[key]
    if not isinstance(value, str):
        raise EnvelopeError(f"envelope field {key!r} must be a string, got {type(value).__name__}")
    return value
