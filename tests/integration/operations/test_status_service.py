"""`ripple status --service NAMESPACE/NAME` against the stack's kube-apiserver: the xds replicas
are the ready endpoints of the Service's EndpointSlices on the named port (an unready endpoint
and a slice without that port are left out); a Service without any is a clear error.
(TEST-NET addresses: the apiserver refuses loopback endpoints, and nothing is dialled here.)"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any, cast

import pytest
from kubernetes_asyncio import client, config

from ripple_cli.status_kube import service_urls
from tests.conftest import StackEnv


def endpoint_slice(name: str, service: str, *, ports: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": ["198.18.7.1"], "conditions": {"ready": True}},
            {"addresses": ["198.18.7.2"], "conditions": {"ready": False}},
            {"addresses": ["198.18.7.3"]},
        ],
        "ports": ports,
    }


async def _setup(kubeconfig: str, ns: str) -> None:
    api = await config.new_client_from_config(config_file=kubeconfig)
    async with api:
        core, discovery = client.CoreV1Api(api), client.DiscoveryV1Api(api)
        await core.create_namespace(cast(client.V1Namespace, {"metadata": {"name": ns}}))
        http = {"name": "grpc", "port": 18000, "protocol": "TCP"}
        health = {"name": "health", "port": 8080, "protocol": "TCP"}
        for body in (
            endpoint_slice("ripple-xds-a", "ripple-xds", ports=[http, health]),
            endpoint_slice("ripple-xds-b", "ripple-xds", ports=[http]),
            endpoint_slice("other-a", "other", ports=[health]),
        ):
            await discovery.create_namespaced_endpoint_slice(ns, cast(client.V1EndpointSlice, body))


async def _cleanup(kubeconfig: str, ns: str) -> None:
    api = await config.new_client_from_config(config_file=kubeconfig)
    async with api:
        core, discovery = client.CoreV1Api(api), client.DiscoveryV1Api(api)
        with contextlib.suppress(client.ApiException):
            await discovery.delete_collection_namespaced_endpoint_slice(ns)
        with contextlib.suppress(client.ApiException):
            await core.delete_namespace(ns)
            body = {"metadata": {"name": ns}, "spec": {"finalizers": []}}
            await core.replace_namespace_finalize(ns, cast(client.V1Namespace, body))


def test_replicas_are_the_ready_endpoints_of_the_service(stack: StackEnv) -> None:
    kubeconfig = stack["KUBECONFIG"]
    ns = f"it-status-{uuid.uuid4().hex[:8]}"
    asyncio.run(_setup(kubeconfig, ns))
    try:
        urls = service_urls(f"{ns}/ripple-xds", port_name="health", kubeconfig=kubeconfig)
        assert urls == ["http://198.18.7.1:8080", "http://198.18.7.3:8080"]
        with pytest.raises(ValueError, match="has no ready endpoint with a port named health"):
            service_urls(f"{ns}/missing", port_name="health", kubeconfig=kubeconfig)
    finally:
        asyncio.run(_cleanup(kubeconfig, ns))
