"""kubernetes_asyncio adapter of `ripple status`: the xds replicas behind a Kubernetes
Service, as health base URLs from its EndpointSlices (ready endpoints, the named port).
The selection from the EndpointSlice JSON is pure (`urls_from_slices`)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from kubernetes_asyncio import client, config

SERVICE_LABEL = "kubernetes.io/service-name"


def parse_service(value: str) -> tuple[str, str]:
    """`namespace/name` -> (namespace, name)."""
    namespace, sep, name = value.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise ValueError(f"--service {value!r} is not NAMESPACE/NAME")
    return namespace, name


def _host(address: str) -> str:
    try:
        return f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    except ValueError:
        return address


def urls_from_slices(slices: Iterable[Mapping[str, Any]], *, port_name: str) -> list[str]:
    """`http://address:port` of every ready endpoint of the slices, on the port `port_name`."""
    urls: set[str] = set()
    for item in slices:
        ports = [p for p in item.get("ports") or [] if p.get("name") == port_name]
        if not ports:
            continue
        port = ports[0]["port"]
        for endpoint in item.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            for address in endpoint.get("addresses") or []:
                urls.add(f"http://{_host(address)}:{port}")
    return sorted(urls)


async def _slices(namespace: str, name: str, kubeconfig: str | None) -> list[dict[str, Any]]:
    if kubeconfig:
        api = await config.new_client_from_config(config_file=kubeconfig)
    else:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        api = client.ApiClient()
    async with api:
        resp = await api.call_api(
            f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices",
            "GET",
            query_params=[("labelSelector", f"{SERVICE_LABEL}={name}")],
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=10,
        )
        try:
            body = await resp.read()
            status = int(resp.status)
        finally:
            resp.release()
    if status != 200:
        raise OSError(
            f"listing EndpointSlices of {namespace}/{name}: HTTP {status}: {body[:200]!r}"
        )
    items = json.loads(body).get("items")
    return list(items or [])


def service_urls(service: str, *, port_name: str, kubeconfig: str | None) -> list[str]:
    """The health base URLs of the Service's ready endpoints."""
    namespace, name = parse_service(service)
    slices = asyncio.run(_slices(namespace, name, kubeconfig or os.environ.get("KUBECONFIG")))
    urls = urls_from_slices(slices, port_name=port_name)
    if not urls:
        raise ValueError(f"Service {service} has no ready endpoint with a port named {port_name}")
    return urls
