"""NamespacedKindApi: one list and one watch over the selected namespaces, each namespace's
watch resuming from its own resourceVersion; a forbidden namespace skipped, not fatal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

import pytest
from pydantic import ValidationError

from ripple_watcher.kinds import TLS_SECRET
from ripple_watcher.kube import KubeApiError, NamespacedKindApi
from ripple_watcher.ports import ListPage, RawEvent
from ripple_watcher.settings import WatcherSettings


def _secret(ns: str, name: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"namespace": ns, "name": name, "resourceVersion": rv}}


class FakePaths:
    """list_path / watch_path of KubeKindApi, by namespace."""

    def __init__(self) -> None:
        self.watched: list[tuple[str, str]] = []
        self.streams: dict[str, list[RawEvent]] = {}

    async def list_path(self, path: str, *, page_size: int) -> AsyncIterator[ListPage]:
        ns = path.split("/")[4]
        if ns == "forbidden":
            raise KubeApiError(403, "secrets is forbidden")
        yield ListPage(items=[_secret(ns, "s", "10")], resource_version={"a": "10", "b": "20"}[ns])

    async def watch_path(
        self, path: str, *, resource_version: str, timeout_seconds: int
    ) -> AsyncIterator[RawEvent]:
        ns = path.split("/")[4]
        self.watched.append((ns, resource_version))
        for event in self.streams.pop(ns, []):
            yield event
        if ns == "b":
            await asyncio.sleep(3600)  # b's stream stays open


def _api(namespaces: list[str]) -> tuple[NamespacedKindApi, FakePaths]:
    api = NamespacedKindApi(object(), TLS_SECRET, namespaces=lambda: namespaces)
    fake = FakePaths()
    api._api = fake  # type: ignore[assignment]
    return api, fake


async def test_each_namespace_resumes_from_its_own_resource_version() -> None:
    api, fake = _api(["b", "forbidden", "a"])
    pages = [p async for p in api.list_pages(page_size=10)]
    assert [[i["metadata"]["namespace"] for i in p.items] for p in pages] == [["a"], ["b"]]
    assert {p.resource_version for p in pages} == {"10"}  # one list: one resourceVersion
    assert api.watched_namespaces == ["a", "b"]  # the forbidden one is skipped

    fake.streams["a"] = [RawEvent("ADDED", _secret("a", "new", "11"))]
    first = [e async for e in api.watch(resource_version="10", timeout_seconds=60)]
    assert [e.object["metadata"]["name"] for e in first] == ["new"]  # then a's stream ended
    assert sorted(fake.watched) == [("a", "10"), ("b", "20")]

    fake.watched.clear()
    fake.streams["a"] = []
    _ = [e async for e in api.watch(resource_version="11", timeout_seconds=60)]
    assert sorted(fake.watched) == [("a", "11"), ("b", "20")]


async def test_a_failing_stream_fails_the_watch() -> None:
    api, fake = _api(["a", "b"])
    _ = [p async for p in api.list_pages(page_size=10)]

    async def broken(*_: Any, **__: Any) -> AsyncIterator[RawEvent]:
        nothing: tuple[RawEvent, ...] = ()
        for event in nothing:
            yield event
        raise KubeApiError(500, "boom")

    fake.watch_path = broken  # type: ignore[method-assign]
    with pytest.raises(KubeApiError):
        _ = [e async for e in api.watch(resource_version="10", timeout_seconds=60)]


async def test_no_namespace_lists_empty_and_watches_bookmarks() -> None:
    api = NamespacedKindApi(object(), TLS_SECRET, namespaces=list, idle_bookmark_seconds=0.01)
    pages = [p async for p in api.list_pages(page_size=10)]
    assert [p.items for p in pages] == [[]]
    events = [e async for e in api.watch(resource_version="0", timeout_seconds=0)]
    assert events == []
    stream = cast(AsyncGenerator[RawEvent], api.watch(resource_version="7", timeout_seconds=1))
    first = await anext(stream)
    assert (first.type, first.object["metadata"]["resourceVersion"]) == ("BOOKMARK", "7")
    await stream.aclose()


def test_per_namespace_mode_needs_a_namespace_selector() -> None:
    with pytest.raises(ValidationError, match="needs RIPPLE_WATCHER_NAMESPACE_SELECTOR"):
        WatcherSettings(secrets_per_namespace=True)
    assert WatcherSettings(secrets_per_namespace=True, namespace_selector="ripple.io/tenant")
