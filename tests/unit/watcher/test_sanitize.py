from __future__ import annotations

import copy
from typing import Any

from ripple_watcher.kinds import CONFIG_MAP, ENDPOINT_SLICE, INGRESS, NAMESPACE
from ripple_watcher.sanitize import fingerprint, sanitize
from tests.unit.watcher.fakes import ingress, meta, namespace


def _slice(**endpoint: Any) -> dict[str, Any]:
    ep = {
        "addresses": ["198.18.0.2"],
        "conditions": {"ready": True, "serving": True, "terminating": False},
        "nodeName": "node-1",
        "targetRef": {"kind": "Pod", "name": "web-1", "resourceVersion": "10"},
        **endpoint,
    }
    return {
        "metadata": meta("web-abc", namespace="shop"),
        "addressType": "IPv4",
        "endpoints": [ep],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }


def test_managed_fields_and_status_are_dropped() -> None:
    obj = ingress("shop", "web")
    obj["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    clean = sanitize(INGRESS, obj)
    assert "managedFields" not in clean["metadata"]
    assert "status" not in clean


def test_last_applied_configuration_is_dropped() -> None:
    obj = ingress("shop", "web")
    obj["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": "{...}",
        "nginx.ingress.kubernetes.io/rewrite-target": "/",
    }
    assert sanitize(INGRESS, obj)["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/rewrite-target": "/"
    }


def test_list_items_get_their_kind_and_api_version() -> None:
    clean = sanitize(INGRESS, ingress("shop", "web"))
    assert (clean["apiVersion"], clean["kind"]) == ("networking.k8s.io/v1", "Ingress")


def test_input_object_is_not_modified() -> None:
    obj = ingress("shop", "web")
    before = copy.deepcopy(obj)
    sanitize(INGRESS, obj)
    assert obj == before


def test_resource_version_alone_keeps_the_fingerprint() -> None:
    a = sanitize(INGRESS, ingress("shop", "web", rv="1"))
    b = sanitize(INGRESS, ingress("shop", "web", rv="2"))
    assert fingerprint(a) == fingerprint(b)


def test_generation_alone_keeps_the_fingerprint() -> None:
    a = _slice()
    b = _slice()
    a["metadata"]["generation"] = 1
    b["metadata"]["generation"] = 2
    assert fingerprint(sanitize(ENDPOINT_SLICE, a)) == fingerprint(sanitize(ENDPOINT_SLICE, b))


def test_spec_change_changes_the_fingerprint() -> None:
    a = sanitize(INGRESS, ingress("shop", "web", host="a.example.test"))
    b = sanitize(INGRESS, ingress("shop", "web", host="b.example.test"))
    assert fingerprint(a) != fingerprint(b)


def test_endpoint_bookkeeping_changes_keep_the_fingerprint() -> None:
    a = sanitize(ENDPOINT_SLICE, _slice())
    b = sanitize(
        ENDPOINT_SLICE, _slice(nodeName="node-2", targetRef={"kind": "Pod", "name": "web-2"})
    )
    assert fingerprint(a) == fingerprint(b)


def test_endpoint_readiness_changes_the_fingerprint() -> None:
    a = sanitize(ENDPOINT_SLICE, _slice())
    b = sanitize(
        ENDPOINT_SLICE,
        _slice(conditions={"ready": False, "serving": True, "terminating": True}),
    )
    assert fingerprint(a) != fingerprint(b)


def test_namespace_keeps_only_metadata() -> None:
    clean = sanitize(NAMESPACE, namespace("shop", labels={"team": "a"}))
    assert set(clean) == {"apiVersion", "kind", "metadata"}
    assert clean["metadata"]["labels"] == {"team": "a"}


def test_config_map_keeps_its_data() -> None:
    obj = {"metadata": meta("headers", namespace="shop"), "data": {"X-Team": "a"}}
    assert sanitize(CONFIG_MAP, obj)["data"] == {"X-Team": "a"}
