"""kubernetes_asyncio adapter: raw JSON list and watch of one kind (no model classes: the
watcher publishes the API's own JSON, and skipping deserialization keeps a 20k-object list
cheap). `NamespacedKindApi` reads a kind namespace by namespace, for the strict RBAC mode."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog
from kubernetes_asyncio import client, config

from ripple_watcher.kinds import KindSpec
from ripple_watcher.leases import LeaseConflictError, LeaseRecord
from ripple_watcher.ports import ListPage, RawEvent, ResourceExpiredError

log = structlog.get_logger(__name__)

_HTTP_GONE = 410
_HTTP_NOT_FOUND = 404
_HTTP_FORBIDDEN = 403


class KubeApiError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status


async def make_api_client(kubeconfig: str | None) -> Any:
    """From a kubeconfig file, or the in-cluster service account when None."""
    if kubeconfig:
        return await config.new_client_from_config(config_file=kubeconfig)
    config.load_incluster_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


class KubeKindApi:
    """KindApi for one kind, over a shared kubernetes_asyncio ApiClient."""

    def __init__(self, api_client: Any, spec: KindSpec, *, request_timeout: float = 60.0) -> None:
        self._client = api_client
        self.spec = spec
        self._timeout = request_timeout

    async def _get(self, path: str, query: Mapping[str, str], *, request_timeout: float) -> Any:
        return await self._client.call_api(
            path,
            "GET",
            query_params=list(query.items()),
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=request_timeout,
        )

    async def _get_json(self, path: str, query: Mapping[str, str]) -> Any:
        resp = await self._get(path, query, request_timeout=self._timeout)
        try:
            body = await resp.read()
            _raise_for_status(resp.status, body)
            return json.loads(body)
        finally:
            resp.release()

    async def available(self) -> bool:
        if not self.spec.optional:
            return True
        try:
            doc = await self._get_json(self.spec.api_prefix, {})
        except KubeApiError as exc:
            if exc.status == _HTTP_NOT_FOUND:
                return False
            raise
        return any(r.get("name") == self.spec.plural for r in doc.get("resources") or [])

    async def list_pages(self, *, page_size: int) -> AsyncIterator[ListPage]:
        async for page in self.list_path(self.spec.collection_path, page_size=page_size):
            yield page

    async def list_path(self, path: str, *, page_size: int) -> AsyncIterator[ListPage]:
        """Every page of the list at `path` (the collection, or one namespace's)."""
        token: str | None = None
        first_rv: str | None = None
        while True:
            doc = await self._get_json(
                path, self.spec.list_query(limit=page_size, continue_token=token)
            )
            meta = doc.get("metadata") or {}
            first_rv = first_rv or str(meta.get("resourceVersion", ""))
            yield ListPage(items=doc.get("items") or [], resource_version=first_rv)
            token = meta.get("continue") or None
            if token is None:
                return

    async def watch(
        self, *, resource_version: str, timeout_seconds: int
    ) -> AsyncIterator[RawEvent]:
        async for event in self.watch_path(
            self.spec.collection_path,
            resource_version=resource_version,
            timeout_seconds=timeout_seconds,
        ):
            yield event

    async def watch_path(
        self, path: str, *, resource_version: str, timeout_seconds: int
    ) -> AsyncIterator[RawEvent]:
        """The watch of `path` (the collection, or one namespace's)."""
        query = self.spec.watch_query(
            resource_version=resource_version, timeout_seconds=timeout_seconds
        )
        # Client-side limit a little past the server's own: the idle timeout of the watch loop
        # catches silent connections long before this.
        resp = await self._get(path, query, request_timeout=timeout_seconds + 30)
        try:
            if resp.status != 200:
                _raise_for_status(resp.status, await resp.read())
            # Split lines ourselves: aiohttp's readline() raises LineTooLong past its buffer
            # limit (which depends on the client's read_bufsize), and one watch event carries a
            # whole object, whatever its size.
            buffer = b""
            async for chunk in resp.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield _event(line)
            if buffer.strip():
                yield _event(buffer)
        finally:
            resp.release()


class NamespacedKindApi:
    """KindApi of a namespaced kind read namespace by namespace: only in the namespaces
    `namespaces()` names at each list (the selected tenant namespaces), so the watcher needs
    the kind's `list, watch` only there (a RoleBinding per namespace: the strict Secret mode of
    docs/deploy.md). The namespaces' lists are one list and their watches one watch to the
    watch loop, so the kind keeps one re-list contract (one RELIST_STARTED/FINISHED pair).

    Each namespace's watch resumes from its own resourceVersion (kept here: the loop's single
    one cannot say where each stream stood). A namespace whose list is forbidden (no
    RoleBinding there yet) or gone is skipped with a warning: it blocks no other namespace."""

    def __init__(
        self,
        api_client: Any,
        spec: KindSpec,
        *,
        namespaces: Callable[[], Iterable[str]],
        idle_bookmark_seconds: float = 30.0,
        request_timeout: float = 60.0,
    ) -> None:
        if not spec.namespaced:
            raise ValueError(f"{spec.kind} is cluster-scoped")
        self._api = KubeKindApi(api_client, spec, request_timeout=request_timeout)
        self.spec = spec
        self._namespaces = namespaces
        self._bookmark_s = idle_bookmark_seconds
        # Per listed namespace: the resourceVersion its watch resumes from.
        self._resume: dict[str, str] = {}

    @property
    def watched_namespaces(self) -> list[str]:
        return sorted(self._resume)

    async def available(self) -> bool:
        return await self._api.available()

    async def list_pages(self, *, page_size: int) -> AsyncIterator[ListPage]:
        listed: dict[str, str] = {}
        first_rv = ""
        for ns in sorted(set(self._namespaces())):
            try:
                async for page in self._api.list_path(
                    self.spec.namespaced_path(ns), page_size=page_size
                ):
                    listed.setdefault(ns, page.resource_version)
                    first_rv = first_rv or page.resource_version
                    yield ListPage(items=page.items, resource_version=first_rv)
            except KubeApiError as exc:
                if exc.status not in (_HTTP_FORBIDDEN, _HTTP_NOT_FOUND):
                    raise
                log.warning(
                    "namespace skipped: its list is not allowed (no RoleBinding?) or it is gone",
                    kind=self.spec.kind,
                    namespace=ns,
                    status=exc.status,
                )
        self._resume = listed
        if not first_rv:  # no namespace at all: an empty list (the loop needs a page)
            yield ListPage(items=[], resource_version="0")

    async def watch(
        self, *, resource_version: str, timeout_seconds: int
    ) -> AsyncIterator[RawEvent]:
        if not self._resume:
            # Nothing to watch: bookmarks keep the loop's idle check quiet until a re-list.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_seconds
            while (left := deadline - loop.time()) > 0:
                await asyncio.sleep(min(self._bookmark_s, left))
                yield RawEvent("BOOKMARK", {"metadata": {"resourceVersion": resource_version}})
            return
        queue: asyncio.Queue[tuple[str, RawEvent] | BaseException | None] = asyncio.Queue(100)

        async def pump(ns: str, rv: str) -> None:
            try:
                async for event in self._api.watch_path(
                    self.spec.namespaced_path(ns),
                    resource_version=rv,
                    timeout_seconds=timeout_seconds,
                ):
                    await queue.put((ns, event))
                await queue.put(None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await queue.put(exc)

        tasks = [
            asyncio.create_task(pump(ns, rv), name=f"watch {self.spec.kind} in {ns}")
            for ns, rv in self._resume.items()
        ]
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return  # one stream ended (the server's timeout): all resume from here
                if isinstance(item, BaseException):
                    raise item
                ns, event = item
                rv = _event_rv(event)
                if rv and event.type != "ERROR":
                    # The loop handles this event before it asks for the next, or re-lists
                    # (which starts over): a resume from here never skips one.
                    self._resume[ns] = rv
                yield event
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _event_rv(event: RawEvent) -> str:
    meta = event.object.get("metadata") if isinstance(event.object, Mapping) else None
    rv = meta.get("resourceVersion") if isinstance(meta, Mapping) else None
    return rv if isinstance(rv, str) else ""


def _event(line: bytes) -> RawEvent:
    doc = json.loads(line)
    return RawEvent(type=str(doc.get("type", "")), object=doc.get("object") or {})


def _raise_for_status(status: int, body: bytes) -> None:
    if 200 <= status <= 299:
        return
    text = body.decode(errors="replace")
    if status == _HTTP_GONE:
        raise ResourceExpiredError(text[:300])
    raise KubeApiError(status, text)


_LEASES = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
_HTTP_CONFLICT = 409


class KubeLeaseApi:
    """LeaseApi over coordination.k8s.io/v1 Leases in one namespace."""

    def __init__(self, api_client: Any, *, namespace: str, request_timeout: float = 10.0) -> None:
        self._client = api_client
        self._base = _LEASES.format(namespace=namespace)
        self._namespace = namespace
        self._timeout = request_timeout

    async def _call(self, method: str, path: str, body: Mapping[str, Any] | None) -> Any:
        resp = await self._client.call_api(
            path,
            method,
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=self._timeout,
        )
        try:
            raw = await resp.read()
            status = int(resp.status)
        finally:
            resp.release()
        if status == _HTTP_NOT_FOUND:
            return None
        if status == _HTTP_CONFLICT:
            raise LeaseConflictError(raw.decode(errors="replace")[:300])
        _raise_for_status(status, raw)
        return json.loads(raw)

    async def get(self, name: str) -> LeaseRecord | None:
        doc = await self._call("GET", f"{self._base}/{name}", None)
        return None if doc is None else _lease_from(doc)

    async def create(self, record: LeaseRecord) -> LeaseRecord:
        doc = await self._call("POST", self._base, _lease_doc(record, self._namespace))
        if doc is None:
            raise KubeApiError(_HTTP_NOT_FOUND, f"namespace {self._namespace} not found")
        return _lease_from(doc)

    async def update(self, record: LeaseRecord) -> LeaseRecord:
        doc = await self._call(
            "PUT", f"{self._base}/{record.name}", _lease_doc(record, self._namespace)
        )
        if doc is None:
            raise LeaseConflictError(f"lease {record.name} is gone")
        return _lease_from(doc)


def _micro_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _lease_doc(record: LeaseRecord, namespace: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": record.name, "namespace": namespace}
    if record.resource_version:
        meta["resourceVersion"] = record.resource_version
    spec: dict[str, Any] = {
        "holderIdentity": record.holder,
        "leaseDurationSeconds": record.duration_seconds,
        "acquireTime": _micro_time(record.acquire_time),
        "renewTime": _micro_time(record.renew_time),
        "leaseTransitions": record.transitions,
    }
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta,
        "spec": {k: v for k, v in spec.items() if v is not None},
    }


def _lease_from(doc: Mapping[str, Any]) -> LeaseRecord:
    meta = doc.get("metadata") or {}
    spec = doc.get("spec") or {}
    return LeaseRecord(
        name=str(meta.get("name", "")),
        holder=spec.get("holderIdentity") or None,
        duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
        renew_time=_parse_time(spec.get("renewTime")),
        acquire_time=_parse_time(spec.get("acquireTime")),
        transitions=int(spec.get("leaseTransitions") or 0),
        resource_version=meta.get("resourceVersion"),
    )
