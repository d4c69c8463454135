"""The watcher's dependencies as small Protocols (the adapters and the test fakes implement
them), and the values that cross them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ripple_common.envelope import Envelope


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of a (paginated) list; every page of one list has the same resourceVersion."""

    items: Sequence[Mapping[str, Any]]
    resource_version: str


@dataclass(frozen=True, slots=True)
class RawEvent:
    """One line of a watch stream: ADDED, MODIFIED, DELETED, BOOKMARK or ERROR."""

    type: str
    object: Mapping[str, Any]


class ResourceExpiredError(Exception):
    """410 Gone: the resourceVersion (or list continue token) is older than the server keeps."""


class PublishError(Exception):
    """An envelope handed to the publisher did not reach Kafka."""


class KindApi(Protocol):
    """The API server, for one kind."""

    async def available(self) -> bool:
        """False while the kind is not served (a Gateway API CRD not installed)."""
        ...

    def list_pages(self, *, page_size: int) -> AsyncIterator[ListPage]: ...

    def watch(self, *, resource_version: str, timeout_seconds: int) -> AsyncIterator[RawEvent]:
        """Events after `resource_version`; ends when the server closes the stream. Raises
        ResourceExpiredError for an HTTP 410; an ERROR event is passed through as it came."""
        ...


class EventSink(Protocol):
    """Where envelopes go (Kafka). `publish` blocks while too many are in flight, so a slow
    broker slows the watch; a failed delivery surfaces as PublishError from a later call."""

    async def publish(self, envelope: Envelope) -> None: ...

    async def flush(self) -> None: ...
