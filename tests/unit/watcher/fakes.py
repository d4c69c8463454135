"""Test doubles for the watcher's Protocols, and Kubernetes object builders."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from ripple_common.envelope import Envelope, EventType
from ripple_watcher.ports import ListPage, PublishError, RawEvent

# Not a real key: the sealing tests only need the PEM framing.
FAKE_KEY_PEM = (
    b"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
)
FAKE_CERT_PEM = b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"
HANG = "hang"
Step = RawEvent | BaseException | str | asyncio.Event


def meta(
    name: str, *, namespace: str | None = None, rv: str = "1", uid: str | None = None
) -> dict[str, Any]:
    m: dict[str, Any] = {
        "name": name,
        "uid": uid or f"uid-{namespace}-{name}",
        "resourceVersion": rv,
    }
    if namespace is not None:
        m["namespace"] = namespace
    return m


def ingress(ns: str, name: str, *, rv: str = "1", host: str = "a.example.test") -> dict[str, Any]:
    return {
        "metadata": meta(name, namespace=ns, rv=rv),
        "spec": {"rules": [{"host": host}]},
        "status": {"loadBalancer": {}},
    }


def namespace(
    name: str, *, labels: Mapping[str, str] | None = None, rv: str = "1"
) -> dict[str, Any]:
    m = meta(name, rv=rv)
    if labels:
        m["labels"] = dict(labels)
    return {"metadata": m, "status": {"phase": "Active"}}


def tls_secret(ns: str, name: str, *, rv: str = "1") -> dict[str, Any]:
    return {
        "metadata": meta(name, namespace=ns, rv=rv),
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": base64.b64encode(FAKE_CERT_PEM).decode(),
            "tls.key": base64.b64encode(FAKE_KEY_PEM).decode(),
        },
    }


def event(event_type: str, obj: Mapping[str, Any]) -> RawEvent:
    return RawEvent(type=event_type, object=obj)


def bookmark(rv: str) -> RawEvent:
    return RawEvent(type="BOOKMARK", object={"metadata": {"resourceVersion": rv}})


def gone() -> RawEvent:
    return RawEvent(
        type="ERROR",
        object={"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"},
    )


class FakeKindApi:
    """Scripted lists and watch streams. Each list call takes the next listing (the last one
    repeats); each watch call plays the next script (then hangs), a step being an event, an
    exception to raise, an asyncio.Event to wait for, or HANG."""

    def __init__(
        self,
        *,
        listings: Sequence[tuple[str, Sequence[Mapping[str, Any]]] | BaseException],
        scripts: Sequence[Sequence[Step]] = (),
        available: Sequence[bool] = (True,),
    ) -> None:
        self._listings = list(listings)
        self._scripts = list(scripts)
        self._available = list(available)
        self.list_calls = 0
        self.watch_calls: list[str] = []
        self.available_calls = 0

    async def available(self) -> bool:
        self.available_calls += 1
        if len(self._available) > 1:
            return self._available.pop(0)
        return self._available[0]

    async def list_pages(self, *, page_size: int) -> AsyncIterator[ListPage]:
        self.list_calls += 1
        listing = self._listings.pop(0) if len(self._listings) > 1 else self._listings[0]
        if isinstance(listing, BaseException):
            raise listing
        rv, items = listing
        for i in range(0, max(len(items), 1), page_size):
            yield ListPage(items=items[i : i + page_size], resource_version=rv)

    async def watch(
        self, *, resource_version: str, timeout_seconds: int
    ) -> AsyncIterator[RawEvent]:
        self.watch_calls.append(resource_version)
        script = self._scripts.pop(0) if self._scripts else [HANG]
        for step in script:
            if isinstance(step, BaseException):
                raise step
            if isinstance(step, asyncio.Event):
                await step.wait()
                continue
            if step == HANG:
                await asyncio.Event().wait()
            assert isinstance(step, RawEvent)
            yield step


class RecordingSink:
    """EventSink that keeps what it is given; can be told to fail the next publish."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.flushes = 0
        self.fail_next = 0

    async def publish(self, envelope: Envelope) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise PublishError("broker down")
        self.envelopes.append(envelope)

    async def flush(self) -> None:
        self.flushes += 1

    def summary(self) -> list[tuple[str, str, str]]:
        """(type, tenant, name) of each envelope, markers as (type, tenant, kind)."""
        return [(e.type.value, e.tenant, e.name or e.kind) for e in self.envelopes]

    def of_type(self, event_type: EventType) -> list[Envelope]:
        return [e for e in self.envelopes if e.type is event_type]


class FakeSleep:
    """Records requested delays; yields to the loop instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)
