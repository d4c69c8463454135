"""The event envelope: the one versioned schema that travels on the `ripple.events` topic.

The watcher publishes one envelope per Kubernetes watch event; translators consume them. The
envelope is JSON so the Kafka log stays readable by the replay tool and by humans.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

SCHEMA_VERSION: Final = 1
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


MARKER_TYPES: Final = frozenset({EventType.RELIST_STARTED, EventType.RELIST_FINISHED})


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
    schema_version: int = SCHEMA_VERSION

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

    @property
    def key(self) -> bytes:
        """The Kafka message key: the tenant, so one tenant's events stay ordered."""
        return self.tenant.encode()

    def to_bytes(self) -> bytes:
        doc = {
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
        if schema != SCHEMA_VERSION:
            raise EnvelopeError(f"unsupported envelope schema {schema!r}, want {SCHEMA_VERSION}")
        try:
            event_type = EventType(doc["type"])
            obj = doc.get("object")
            if obj is not None and not isinstance(obj, dict):
                raise EnvelopeError("envelope object must be a JSON object or null")
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
            )
        except KeyError as exc:
            raise EnvelopeError(f"envelope lacks field {exc.args[0]!r}") from exc
        except (TypeError, ValueError) as exc:
            if isinstance(exc, EnvelopeError):
                raise
            raise EnvelopeError(f"envelope field has a wrong type: {exc}") from exc


def _str(doc: Mapping[str, Any], key: str) -> str:
    value = doc[key]
    if not isinstance(value, str):
        raise EnvelopeError(f"envelope field {key!r} must be a string, got {type(value).__name__}")
    return value
