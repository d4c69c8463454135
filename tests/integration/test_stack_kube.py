"""kube-apiserver from Python (kubernetes-asyncio): create an Ingress and see it on a watch."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, cast

from kubernetes_asyncio import client, config, watch

from tests.conftest import StackEnv


def _ingress(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name},
        "spec": {
            "rules": [
                {
                    "host": f"{name}.example.test",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "web", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ]
        },
    }


async def test_ingress_create_is_seen_by_a_watch(stack: StackEnv) -> None:
    api_client = await config.new_client_from_config(config_file=stack["KUBECONFIG"])
    ns = f"it-{uuid.uuid4().hex[:8]}"
    try:
        core = client.CoreV1Api(api_client)
        net = client.NetworkingV1Api(api_client)
        await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
        listed = await net.list_namespaced_ingress(ns)
        w = watch.Watch()

        async def first_added() -> tuple[str, str]:
            async for event in w.stream(
                net.list_namespaced_ingress,
                ns,
                resource_version=listed.metadata.resource_version,
                timeout_seconds=30,
            ):
                obj = event["object"]
                return event["type"], obj.metadata.name
            raise AssertionError("watch ended without an event")

        waiter = asyncio.create_task(first_added())
        await asyncio.sleep(0.2)
        # The client accepts manifests as dicts, as the watcher will see them.
        await net.create_namespaced_ingress(ns, cast(client.V1Ingress, _ingress("web")))
        assert await asyncio.wait_for(waiter, timeout=30) == ("ADDED", "web")
        w.stop()

        # The APIs the watcher needs are served.
        discovery = client.DiscoveryV1Api(api_client)
        slices = await discovery.list_namespaced_endpoint_slice(ns)
        assert slices.items == []
    finally:
        await client.CoreV1Api(api_client).delete_namespace(ns)
        await api_client.close()
