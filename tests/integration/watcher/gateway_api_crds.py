"""Minimal Gateway API CustomResourceDefinitions (gateway.networking.k8s.io/v1 Gateway and
HTTPRoute) for the watcher's integration tests.

Not the upstream CRDs: no validation beyond `type: object`, spec and status kept as given. That
is all the watcher needs (it publishes the API's JSON), and the API serves, lists and watches
these kinds exactly as it does the real ones.

They are installed once and left installed: deleting a CRD deletes every object of its kind,
and the other watcher tests (their kinds never include the Gateway API) do not care whether
these are served.
"""

from __future__ import annotations

import json
from typing import Any, cast

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests.waiting import eventually

GROUP = "gateway.networking.k8s.io"
VERSION = "v1"
# (kind, plural, singular, short names)
KINDS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("Gateway", "gateways", "gateway", ("gtw",)),
    ("HTTPRoute", "httproutes", "httproute", ()),
)
API_APPROVED = "https://github.com/kubernetes-sigs/gateway-api/pull/2466"
CRD_NAMES = tuple(f"{plural}.{GROUP}" for _kind, plural, _singular, _short in KINDS)
_CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
_HTTP_OK = 200
_HTTP_CONFLICT = 409
_HTTP_NOT_FOUND = 404


def crd(kind: str, plural: str, singular: str, short_names: tuple[str, ...]) -> dict[str, Any]:
    """One namespaced CRD serving and storing `v1`, any spec and status accepted."""
    free = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    names: dict[str, Any] = {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": plural,
        "singular": singular,
        "categories": ["gateway-api"],
    }
    if short_names:
        names["shortNames"] = list(short_names)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{GROUP}",
            # A *.k8s.io group is protected: the API refuses its CRDs without this annotation
            # (the value upstream's CRDs carry).
            "annotations": {"api-approved.kubernetes.io": API_APPROVED},
        },
        "spec": {
            "group": GROUP,
            "names": names,
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": free, "status": free},
                        }
                    },
                }
            ],
        },
    }


def _established(found: dict[str, Any]) -> bool:
    conditions = (found.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


async def _read(api_client: Any, name: str) -> dict[str, Any] | None:
    """The CRD as the API's JSON (not the generated model: its client-side validation may
    reject a status the API has not filled in yet); None when it does not exist."""
    resp = await api_client.call_api(
        f"{_CRDS}/{name}",
        "GET",
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
        _preload_content=False,
    )
    try:
        if resp.status == _HTTP_NOT_FOUND:
            return None
        raw = await resp.read()
        if resp.status != _HTTP_OK:
            raise RuntimeError(f"reading CRD {name}: HTTP {resp.status}: {raw[:300]!r}")
        return cast(dict[str, Any], json.loads(raw))
    finally:
        resp.release()


async def installed(api_client: Any) -> bool:
    """Both CRDs exist and are Established."""
    for name in CRD_NAMES:
        found = await _read(api_client, name)
        if found is None or not _established(found):
            return False
    return True


async def install(api_client: Any, *, within: float = 30.0) -> None:
    """Create the CRDs (those already present are left as they are) and wait until both are
    Established, i.e. their API is served."""
    ext = client.ApiextensionsV1Api(api_client)
    for kind, plural, singular, short_names in KINDS:
        body = crd(kind, plural, singular, short_names)
        try:
            await ext.create_custom_resource_definition(
                cast(client.V1CustomResourceDefinition, body)
            )
        except ApiException as exc:
            if exc.status != _HTTP_CONFLICT:
                raise
    await eventually(
        lambda: installed(api_client),
        within_s=within,
        every_s=0.1,
        what="the Gateway API CRDs served",
    )
