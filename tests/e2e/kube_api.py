"""The stack's kube-apiserver for the e2e tests that make their own namespace."""

from __future__ import annotations

from typing import cast

import aiohttp
from kubernetes_asyncio import client, config

from scripts.demo import service_manifest
from tests.waiting import eventually


async def api_client(kubeconfig: str, *, within_s: float = 60.0) -> client.ApiClient:
    """A client of the stack's kube-apiserver, once it answers (other sessions may restart
    the shared apiserver)."""

    async def answering() -> client.ApiClient:
        api = await config.new_client_from_config(config_file=kubeconfig)
        try:
            await client.VersionApi(api).get_code()
        except (OSError, aiohttp.ClientError):
            await api.close()
            raise
        return api

    return await eventually(
        answering,
        within_s=within_s,
        every_s=0.5,
        what="the kube-apiserver answering",
        ignoring=(OSError, aiohttp.ClientError),
    )


async def kube_setup(kubeconfig: str, ns: str, label: str, rid: str) -> None:
    """Namespace `ns` labelled `label=rid`, with the Service `web` (port 8080)."""
    async with await api_client(kubeconfig) as api:
        core = client.CoreV1Api(api)
        body = {"metadata": {"name": ns, "labels": {label: rid}}}
        await core.create_namespace(cast(client.V1Namespace, body))
        await core.create_namespaced_service(
            ns, cast(client.V1Service, service_manifest("web", target_port=8080))
        )
