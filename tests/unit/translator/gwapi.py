"""Builders of Gateway API objects (Gateway, HTTPRoute) as the plain dicts the watcher publishes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ripple_translator.translate import TenantState, TranslateOptions, Translation, translate
from tests.unit.translator import k8s

JsonDict = dict[str, Any]
HOST = "shop.example.com"


def listener(
    name: str = "http",
    *,
    hostname: str | None = None,
    protocol: str = "HTTP",
    port: int = 80,
    allowed_from: str | None = None,
    kinds: Sequence[str] | None = None,
    certificates: Sequence[str] = (),
    tls_mode: str | None = None,
) -> JsonDict:
    lis: JsonDict = {"name": name, "protocol": protocol, "port": port}
    if certificates or tls_mode:
        lis["tls"] = {"certificateRefs": [{"name": c} for c in certificates]}
        if tls_mode:
            lis["tls"]["mode"] = tls_mode
    if hostname is not None:
        lis["hostname"] = hostname
    allowed: JsonDict = {}
    if allowed_from is not None:
        allowed["namespaces"] = {"from": allowed_from}
    if kinds is not None:
        allowed["kinds"] = [{"kind": k} for k in kinds]
    if allowed:
        lis["allowedRoutes"] = allowed
    return lis


def gateway(
    name: str = "gw",
    *,
    class_name: str = "ripple",
    listeners: Sequence[JsonDict] | None = None,
    namespace: str = k8s.NS,
) -> JsonDict:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": k8s.meta(name, namespace=namespace),
        "spec": {
            "gatewayClassName": class_name,
            "listeners": list(listeners) if listeners is not None else [listener()],
        },
    }


def backend_ref(
    name: str = "web", port: int | None = 80, *, weight: int | None = None, **extra: Any
) -> JsonDict:
    ref: JsonDict = {"name": name, **extra}
    if port is not None:
        ref["port"] = port
    if weight is not None:
        ref["weight"] = weight
    return ref


def path_match(value: str = "/", kind: str = "PathPrefix", **extra: Any) -> JsonDict:
    return {"path": {"type": kind, "value": value}, **extra}


def rule(
    *matches: JsonDict,
    backends: Sequence[JsonDict] | None = None,
    filters: Sequence[JsonDict] = (),
    **extra: Any,
) -> JsonDict:
    r: JsonDict = {"backendRefs": list(backends) if backends is not None else [backend_ref()]}
    if matches:
        r["matches"] = list(matches)
    if filters:
        r["filters"] = list(filters)
    r.update(extra)
    return r


def http_route(
    name: str = "web",
    *,
    hostnames: Sequence[str] | None = (HOST,),
    rules: Sequence[JsonDict] | None = None,
    parents: Sequence[JsonDict] | None = None,
    namespace: str = k8s.NS,
    created: str = "2024-01-01T00:00:00Z",
) -> JsonDict:
    spec: JsonDict = {
        "parentRefs": list(parents) if parents is not None else [{"name": "gw"}],
        "rules": list(rules) if rules is not None else [rule()],
    }
    if hostnames is not None:
        spec["hostnames"] = list(hostnames)
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": k8s.meta(name, namespace=namespace, created=created),
        "spec": spec,
    }


def header_filter(kind: str, **ops: Sequence[Any]) -> JsonDict:
    """RequestHeaderModifier/ResponseHeaderModifier with set=[(n, v)], add=..., remove=[n]."""
    body: JsonDict = {}
    for op, items in ops.items():
        if op == "remove":
            body[op] = list(items)
        else:
            body[op] = [{"name": n, "value": v} for n, v in items]
    key = kind[0].lower() + kind[1:]
    return {"type": kind, key: body}


def run(
    *routes: JsonDict,
    gateways: Sequence[JsonDict] | None = None,
    ingresses: Sequence[JsonDict] = (),
    services: Sequence[JsonDict] | None = None,
    slices: Sequence[JsonDict] | None = None,
    secrets: Sequence[JsonDict] = (),
    options: TranslateOptions | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Translation:
    """Translate a tenant with Gateway `gw` (class ripple, one HTTP listener) and `routes`."""
    base = k8s.state(*ingresses, services=services, slices=slices, secrets=secrets)
    state = TenantState(
        tenant=base.tenant,
        ingresses=base.ingresses,
        services=base.services,
        endpoint_slices=base.endpoint_slices,
        secrets=base.secrets,
        gateways=tuple(gateways if gateways is not None else [gateway()]),
        http_routes=tuple(routes),
        **(extra or {}),
    )
    return translate(state, ingress_classes=(k8s.ingress_class(),), options=options)
