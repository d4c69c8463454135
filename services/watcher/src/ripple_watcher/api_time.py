"""The API server's own time of a change, read from the object a watch event carries (pure).

Propagation is timed from this, not only from when the watcher observed the event, so that
time the change spent waiting while the watcher (or anything after it) was down is counted.

- ADDED / MODIFIED (and re-listed objects): the newest of `metadata.creationTimestamp` and
  every `metadata.managedFields[].time` (a create's managedFields entry has its creation
  time; an update moves the time of the manager that wrote it).
- DELETED: `metadata.deletionTimestamp` (when the deletion was asked for); a DELETED event
  of an object without one has no API time (None: the consumer falls back to the observed
  time).

Kubernetes writes these times with whole-second resolution (RFC 3339, `metav1.Time`), so the
time read is the change's time rounded down to the second: "API -> ACK" may over-count by up
to 1 s; it is reported as is. Read it from the raw object: `sanitize` drops managedFields.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

_NS = 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_time_ns(value: object) -> int | None:
    """An RFC 3339 Kubernetes time (`2026-12-06T19:00:00Z`) as epoch nanoseconds; None when
    absent or not a time."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    since = moment - _EPOCH  # exact integer arithmetic (no float timestamp)
    return (since.days * 86_400 + since.seconds) * _NS + since.microseconds * 1000


def api_time_ns(event_type: str, obj: Mapping[str, Any]) -> int | None:
    """The API's time of the change `event_type` of `obj` (see the module doc), epoch ns."""
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return None
    if event_type == "DELETED":
        return parse_time_ns(meta.get("deletionTimestamp"))
    times = [parse_time_ns(meta.get("creationTimestamp"))]
    managed = meta.get("managedFields")
    if isinstance(managed, list):
        times.extend(parse_time_ns(e.get("time")) for e in managed if isinstance(e, Mapping))
    known = [t for t in times if t is not None]
    return max(known) if known else None
