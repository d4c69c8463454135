"""TOO_LARGE envelopes (pure): an object the watcher could not publish because its envelope
does not fit in one Kafka message. The translator serves no version of it (an older, smaller
version would be stale: it is removed like a deletion) and tells its owner why, as an Event on
the object through the usual diagnostics path."""

from __future__ import annotations

import dataclasses

from ripple_common.envelope import Envelope, EventType
from ripple_translator.translate.diagnostics import Diagnostic, ObjectRef, Reason, error


def not_served_message(envelope: Envelope) -> str:
    sizes = envelope.too_large
    if sizes is None:
        raise ValueError(f"{envelope.type} envelope carries no sizes")
    return (
        f"not served: object too large ({sizes.encoded_bytes} bytes > {sizes.limit_bytes} "
        "bytes, the largest event the pipeline carries even compressed); make it smaller or "
        "split it"
    )


def too_large_diagnostic(envelope: Envelope) -> Diagnostic:
    """The Error diagnostic (a Warning Event on the object) for a TOO_LARGE envelope."""
    ref = ObjectRef(kind=envelope.kind, namespace=envelope.namespace or "", name=envelope.name)
    return error(ref, Reason.OBJECT_TOO_LARGE, not_served_message(envelope))


def as_removal(envelope: Envelope) -> Envelope:
    """The DELETED envelope a TOO_LARGE one amounts to for the object's state (no object)."""
    if envelope.type is not EventType.TOO_LARGE:
        raise ValueError(f"{envelope.type} is not TOO_LARGE")
    return dataclasses.replace(envelope, type=EventType.DELETED, too_large=None)
