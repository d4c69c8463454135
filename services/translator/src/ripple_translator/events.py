"""Kubernetes adapter of `reporting.EventPoster`: `events.k8s.io/v1` Events through
kubernetes-asyncio (the only translator module importing it). Creates the Event; if it
exists already (the same problem reported before, by any instance) patches its series count
and last observed time."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from ripple_translator.reporting import EventSpec

CONTROLLER = "ripple.dev/translator"
ACTION = "Translate"


async def api_client(kubeconfig: str | None) -> client.ApiClient:
    """From a kubeconfig file, or the in-cluster service account when None."""
    if kubeconfig:
        return await config.new_client_from_config(config_file=kubeconfig)
    config.load_incluster_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


class KubeEventPoster:
    """A lifecycle resource holding the API client."""

    def __init__(self, kubeconfig: str | None, *, instance: str | None = None) -> None:
        self._kubeconfig = kubeconfig
        self._instance = (instance or socket.gethostname())[:128]
        self._client: client.ApiClient | None = None
        self._api: Any = None

    async def start(self) -> None:
        self._client = await api_client(self._kubeconfig)
        self._api = client.EventsV1Api(self._client)

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def post(self, spec: EventSpec, *, count: int) -> None:
        now = datetime.now(UTC)
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": spec.name, "namespace": spec.namespace},
            "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "reportingController": CONTROLLER,
            "reportingInstance": self._instance,
            "action": ACTION,
            "type": spec.type,
            "reason": spec.reason,
            "note": spec.note,
            "regarding": {
                "apiVersion": spec.api_version,
                "kind": spec.kind,
                "namespace": spec.namespace,
                "name": spec.object_name,
            },
        }
        try:
            await self._api.create_namespaced_event(spec.namespace, body)
            return
        except ApiException as exc:
            if exc.status != 409:
                raise
        series = {
            "series": {
                "count": max(count, 2),
                "lastObservedTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            }
        }
        await self._api.patch_namespaced_event(spec.name, spec.namespace, series)
