"""Builders of Kubernetes objects as the plain dicts the watcher publishes (test data)."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from ripple_translator.translate import TenantState, TranslateOptions, Translation, translate
from tests.unit.xds import certs

JsonDict = dict[str, Any]
NS = "shop"
TENANT = "t1"
CONTROLLER = "ripple.dev/ingress-controller"
ANN = "nginx.ingress.kubernetes.io/"

# A real certificate and its key (the translator checks that they parse and match).
_PAIR = certs.self_signed("shop.example.com", "*.example.com")
CERT = _PAIR.certificate.decode()
KEY = _PAIR.private_key.decode()


def meta(
    name: str,
    *,
    namespace: str | None = NS,
    created: str = "2024-01-01T00:00:00Z",
    annotations: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> JsonDict:
    m: JsonDict = {"name": name, "creationTimestamp": created}
    if namespace is not None:
        m["namespace"] = namespace
    if annotations:
        m["annotations"] = dict(annotations)
    if labels:
        m["labels"] = dict(labels)
    return m


def backend(service: str = "web", port: int | str = 80) -> JsonDict:
    key = "number" if isinstance(port, int) else "name"
    return {"service": {"name": service, "port": {key: port}}}


def path(
    p: str = "/",
    *,
    path_type: str = "Prefix",
    service: str = "web",
    port: int | str = 80,
) -> JsonDict:
    return {"path": p, "pathType": path_type, "backend": backend(service, port)}


def rule(host: str | None = "shop.example.com", *paths: JsonDict) -> JsonDict:
    r: JsonDict = {"http": {"paths": list(paths) or [path()]}}
    if host is not None:
        r["host"] = host
    return r


def ingress(
    name: str = "web",
    *,
    rules: Sequence[JsonDict] | None = None,
    annotations: Mapping[str, str] | None = None,
    class_name: str | None = "ripple",
    created: str = "2024-01-01T00:00:00Z",
    namespace: str = NS,
    tls: Sequence[JsonDict] = (),
    default_backend: JsonDict | None = None,
) -> JsonDict:
    spec: JsonDict = {"rules": list(rules) if rules is not None else [rule()]}
    if class_name is not None:
        spec["ingressClassName"] = class_name
    if tls:
        spec["tls"] = list(tls)
    if default_backend is not None:
        spec["defaultBackend"] = default_backend
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta(name, namespace=namespace, created=created, annotations=annotations),
        "spec": spec,
    }


def nginx(**values: str) -> dict[str, str]:
    """ingress-nginx annotations from keyword arguments: proxy_read_timeout="5" etc."""
    return {ANN + k.replace("_", "-"): v for k, v in values.items()}


def service(
    name: str = "web",
    *,
    ports: Sequence[JsonDict] = ({"name": "http", "port": 80, "targetPort": 8080},),
    namespace: str = NS,
    type_: str = "ClusterIP",
) -> JsonDict:
    return {
        "kind": "Service",
        "metadata": meta(name, namespace=namespace),
        "spec": {"type": type_, "ports": list(ports)},
    }


def endpoint(
    *addresses: str,
    ready: bool | None = True,
    zone: str | None = "zone-a",
    node: str | None = None,
) -> JsonDict:
    ep: JsonDict = {"addresses": list(addresses)}
    if ready is not None:
        ep["conditions"] = {"ready": ready}
    if zone is not None:
        ep["zone"] = zone
    if node is not None:
        ep["nodeName"] = node
    return ep


def endpoint_slice(
    name: str = "web-abc",
    *,
    service_name: str = "web",
    endpoints: Sequence[JsonDict] = (),
    ports: Sequence[JsonDict] = ({"name": "http", "port": 8080, "protocol": "TCP"},),
    address_type: str = "IPv4",
    namespace: str = NS,
) -> JsonDict:
    return {
        "kind": "EndpointSlice",
        "metadata": meta(
            name, namespace=namespace, labels={"kubernetes.io/service-name": service_name}
        ),
        "addressType": address_type,
        "ports": list(ports),
        "endpoints": list(endpoints),
    }


def tls_secret(name: str = "web-tls", *, cert: str = CERT, key: str = KEY) -> JsonDict:
    return {
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": meta(name),
        "data": {
            "tls.crt": base64.b64encode(cert.encode()).decode(),
            "tls.key": base64.b64encode(key.encode()).decode(),
        },
    }


def config_map(name: str, data: Mapping[str, str], *, namespace: str = NS) -> JsonDict:
    return {"kind": "ConfigMap", "metadata": meta(name, namespace=namespace), "data": dict(data)}


def ingress_class(
    name: str = "ripple",
    *,
    controller: str = CONTROLLER,
    default: bool = False,
    created: str = "2024-01-01T00:00:00Z",
) -> JsonDict:
    annotations = {"ingressclass.kubernetes.io/is-default-class": "true"} if default else None
    return {
        "kind": "IngressClass",
        "metadata": meta(name, namespace=None, created=created, annotations=annotations),
        "spec": {"controller": controller},
    }


def state(
    *ingresses: JsonDict,
    services: Sequence[JsonDict] | None = None,
    slices: Sequence[JsonDict] | None = None,
    secrets: Sequence[JsonDict] = (),
    config_maps: Sequence[JsonDict] = (),
    tenant: str = TENANT,
) -> TenantState:
    """A tenant with the given Ingresses; by default Service `web` with one ready endpoint."""
    return TenantState(
        tenant=tenant,
        ingresses=tuple(ingresses),
        services=tuple(services if services is not None else [service()]),
        endpoint_slices=tuple(
            slices if slices is not None else [endpoint_slice(endpoints=[endpoint("10.0.0.1")])]
        ),
        secrets=tuple(secrets),
        config_maps=tuple(config_maps),
    )


def run(
    *ingresses: JsonDict,
    options: TranslateOptions | None = None,
    classes: Sequence[JsonDict] | None = None,
    services: Sequence[JsonDict] | None = None,
    slices: Sequence[JsonDict] | None = None,
    secrets: Sequence[JsonDict] = (),
    config_maps: Sequence[JsonDict] = (),
    tenant: str = TENANT,
) -> Translation:
    """Translate a tenant holding `ingresses` (class "ripple" exists and is ours)."""
    return translate(
        state(
            *ingresses,
            services=services,
            slices=slices,
            secrets=secrets,
            config_maps=config_maps,
            tenant=tenant,
        ),
        ingress_classes=tuple(classes if classes is not None else [ingress_class()]),
        options=options,
    )
