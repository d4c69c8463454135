"""Kubernetes objects as frozen dataclasses, parsed from the plain dicts that envelopes carry.

Parsing checks structure only (types, required fields); what the values mean is judged later
(`validate`, `annotations`, `ingress`). A malformed object raises `ModelError` with a message
naming the offending field, which the caller reports as a diagnostic on that object.
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TypeVar

from ripple_translator.translate.diagnostics import ObjectRef

JsonObject = Mapping[str, Any]

_T = TypeVar("_T")
_NEVER = datetime.max.replace(tzinfo=UTC)
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"


class ModelError(ValueError):
    """A Kubernetes object that does not have the expected shape."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Meta:
    kind: str
    namespace: str
    name: str
    creation_timestamp: datetime | None = None
    annotations: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({}), hash=False, compare=False
    )
    labels: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({}), hash=False, compare=False
    )

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.kind, self.namespace, self.name)

    @property
    def age_key(self) -> tuple[datetime, str, str]:
        """Sort key: older first; an object without a timestamp counts as the newest."""
        return (self.creation_timestamp or _NEVER, self.namespace, self.name)


class PathType(enum.StrEnum):
    EXACT = "Exact"
    PREFIX = "Prefix"
    IMPLEMENTATION_SPECIFIC = "ImplementationSpecific"


@dataclass(frozen=True, slots=True)
class ServiceBackend:
    service: str
    # A port number or a port name, exactly one of which the Ingress gives.
    port: int | str


@dataclass(frozen=True, slots=True)
class ResourceBackend:
    api_group: str
    kind: str
    name: str


Backend = ServiceBackend | ResourceBackend


@dataclass(frozen=True, slots=True)
class IngressPath:
    path: str
    path_type: PathType
    backend: Backend


@dataclass(frozen=True, slots=True)
class IngressRule:
    host: str | None
    paths: tuple[IngressPath, ...]


@dataclass(frozen=True, slots=True)
class IngressTLS:
    hosts: tuple[str, ...]
    secret_name: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Ingress:
    meta: Meta
    class_name: str | None = None
    default_backend: Backend | None = None
    rules: tuple[IngressRule, ...] = ()
    tls: tuple[IngressTLS, ...] = ()


@dataclass(frozen=True, slots=True)
class ServicePort:
    name: str
    port: int
    protocol: str = "TCP"
    target_port: int | None = None  # a numeric targetPort (ExternalName Services use it)


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    meta: Meta
    type: str = "ClusterIP"
    ports: tuple[ServicePort, ...] = ()
    external_name: str | None = None  # spec.externalName (type ExternalName)


@dataclass(frozen=True, slots=True)
class EndpointPort:
    name: str
    port: int | None
    protocol: str = "TCP"


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    addresses: tuple[str, ...]
    ready: bool = True
    zone: str = ""
    node_name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointSlice:
    meta: Meta
    service_name: str | None
    address_type: str
    ports: tuple[EndpointPort, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsSecret:
    meta: Meta
    type: str
    certificate: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class IngressClass:
    meta: Meta
    controller: str
    is_default: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigMap:
    meta: Meta
    data: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({}), hash=False, compare=False
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantState:
    """An immutable view of one tenant's objects, as the plain dicts the watcher publishes.

    IngressClasses are cluster-wide and passed to `translate` separately. Secrets may hold their
    PEM data base64-encoded under ``data`` (the Kubernetes wire form, after the service has
    decrypted it) or as plain strings under ``stringData``.
    """

    tenant: str
    ingresses: tuple[JsonObject, ...] = ()
    services: tuple[JsonObject, ...] = ()
    endpoint_slices: tuple[JsonObject, ...] = ()
    secrets: tuple[JsonObject, ...] = ()
    config_maps: tuple[JsonObject, ...] = ()
    # Gateway API (gateway.networking.k8s.io/v1) Gateways and HTTPRoutes.
    gateways: tuple[JsonObject, ...] = ()
    http_routes: tuple[JsonObject, ...] = ()


# ---------------------------------------------------------------------------------------------
# Parsers


def parse_meta(obj: JsonObject, *, kind: str, namespaced: bool = True) -> Meta:
    raw = obj.get("metadata")
    if not isinstance(raw, Mapping):
        raise ModelError("metadata must be an object")
    name = _req_str(raw, "name", "metadata.name")
    namespace = _opt_str(raw, "namespace", "metadata.namespace") or ""
    if namespaced and not namespace:
        raise ModelError("metadata.namespace is required")
    return Meta(
        kind=kind,
        namespace=namespace,
        name=name,
        creation_timestamp=_timestamp(raw.get("creationTimestamp")),
        annotations=_str_map(raw.get("annotations"), "metadata.annotations"),
        labels=_str_map(raw.get("labels"), "metadata.labels"),
    )


def parse_ingress(obj: JsonObject) -> Ingress:
    meta = parse_meta(obj, kind="Ingress")
    spec = _opt_map(obj, "spec", "spec")
    default = spec.get("defaultBackend")
    rules = tuple(
        _parse_rule(r, f"spec.rules[{i}]") for i, r in enumerate(_list(spec, "rules", "spec"))
    )
    tls = tuple(_parse_tls(t, f"spec.tls[{i}]") for i, t in enumerate(_list(spec, "tls", "spec")))
    return Ingress(
        meta=meta,
        class_name=_opt_str(spec, "ingressClassName", "spec.ingressClassName"),
        default_backend=None if default is None else _parse_backend(default, "spec.defaultBackend"),
        rules=rules,
        tls=tls,
    )


def parse_service(obj: JsonObject) -> Service:
    meta = parse_meta(obj, kind="Service")
    spec = _opt_map(obj, "spec", "spec")
    ports = []
    for i, raw in enumerate(_list(spec, "ports", "spec")):
        where = f"spec.ports[{i}]"
        port = _as_map(raw, where)
        ports.append(
            ServicePort(
                name=_opt_str(port, "name", f"{where}.name") or "",
                port=_req_int(port, "port", f"{where}.port"),
                protocol=_opt_str(port, "protocol", f"{where}.protocol") or "TCP",
                target_port=_numeric_target_port(port.get("targetPort"), f"{where}.targetPort"),
            )
        )
    return Service(
        meta=meta,
        type=_opt_str(spec, "type", "spec.type") or "ClusterIP",
        ports=tuple(ports),
        external_name=_opt_str(spec, "externalName", "spec.externalName"),
    )


def _numeric_target_port(raw: object, where: str) -> int | None:
    """A targetPort number; None when absent or named (a pod port name)."""
    if raw is None or isinstance(raw, str):
        return None
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise ModelError(f"{where} must be an integer or a port name")
    return raw


def parse_endpoint_slice(obj: JsonObject) -> EndpointSlice:
    meta = parse_meta(obj, kind="EndpointSlice")
    ports = []
    for i, raw in enumerate(_list(obj, "ports", "")):
        where = f"ports[{i}]"
        port = _as_map(raw, where)
        number = port.get("port")
        if number is not None and (not isinstance(number, int) or isinstance(number, bool)):
            raise ModelError(f"{where}.port must be an integer")
        ports.append(
            EndpointPort(
                name=_opt_str(port, "name", f"{where}.name") or "",
                port=number,
                protocol=_opt_str(port, "protocol", f"{where}.protocol") or "TCP",
            )
        )
    endpoints = []
    for i, raw in enumerate(_list(obj, "endpoints", "")):
        where = f"endpoints[{i}]"
        ep = _as_map(raw, where)
        conditions = _opt_map(ep, "conditions", f"{where}.conditions")
        ready = conditions.get("ready")
        if ready is not None and not isinstance(ready, bool):
            raise ModelError(f"{where}.conditions.ready must be a boolean")
        endpoints.append(
            Endpoint(
                addresses=tuple(
                    _as_str(a, f"{where}.addresses[{j}]")
                    for j, a in enumerate(_list(ep, "addresses", where))
                ),
                # Kubernetes: a nil `ready` condition is to be read as ready.
                ready=ready is not False,
                zone=_opt_str(ep, "zone", f"{where}.zone") or "",
                node_name=_opt_str(ep, "nodeName", f"{where}.nodeName") or "",
            )
        )
    return EndpointSlice(
        meta=meta,
        service_name=meta.labels.get(SERVICE_NAME_LABEL),
        address_type=_req_str(obj, "addressType", "addressType"),
        ports=tuple(ports),
        endpoints=tuple(endpoints),
    )


def parse_secret(obj: JsonObject) -> TlsSecret:
    meta = parse_meta(obj, kind="Secret")
    data = _str_map(obj.get("data"), "data")
    string_data = _str_map(obj.get("stringData"), "stringData")

    def value(key: str) -> str | None:
        if key in string_data:
            return string_data[key]
        if key not in data:
            return None
        try:
            return base64.b64decode(data[key], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ModelError(f"data.{key} is not base64-encoded UTF-8 text: {exc}") from exc

    return TlsSecret(
        meta=meta,
        type=_opt_str(obj, "type", "type") or "Opaque",
        certificate=value("tls.crt"),
        private_key=value("tls.key"),
    )


def parse_ingress_class(obj: JsonObject) -> IngressClass:
    meta = parse_meta(obj, kind="IngressClass", namespaced=False)
    spec = _opt_map(obj, "spec", "spec")
    return IngressClass(
        meta=meta,
        controller=_opt_str(spec, "controller", "spec.controller") or "",
        is_default=meta.annotations.get(DEFAULT_CLASS_ANNOTATION, "").strip().lower() == "true",
    )


def parse_config_map(obj: JsonObject) -> ConfigMap:
    meta = parse_meta(obj, kind="ConfigMap")
    return ConfigMap(meta=meta, data=_str_map(obj.get("data"), "data"))


def parse_all(
    objects: Sequence[JsonObject], parser: Callable[[JsonObject], _T], *, kind: str
) -> tuple[list[_T], list[tuple[ObjectRef, str]]]:
    """Parse every object; return the parsed ones and (object, message) for the malformed."""
    parsed: list[_T] = []
    failed: list[tuple[ObjectRef, str]] = []
    for obj in objects:
        try:
            parsed.append(parser(obj))
        except ModelError as exc:
            failed.append((_best_ref(obj, kind), str(exc)))
    return parsed, failed


# ---------------------------------------------------------------------------------------------
# Helpers


def _parse_rule(raw: object, where: str) -> IngressRule:
    rule = _as_map(raw, where)
    host = _opt_str(rule, "host", f"{where}.host")
    http = _opt_map(rule, "http", f"{where}.http")
    paths = []
    for i, p in enumerate(_list(http, "paths", f"{where}.http")):
        pwhere = f"{where}.http.paths[{i}]"
        path = _as_map(p, pwhere)
        raw_type = _opt_str(path, "pathType", f"{pwhere}.pathType") or "ImplementationSpecific"
        try:
            path_type = PathType(raw_type)
        except ValueError:
            raise ModelError(
                f"{pwhere}.pathType {raw_type!r} is not one of Exact, Prefix, "
                "ImplementationSpecific"
            ) from None
        if "backend" not in path:
            raise ModelError(f"{pwhere}.backend is required")
        paths.append(
            IngressPath(
                path=_opt_str(path, "path", f"{pwhere}.path") or "/",
                path_type=path_type,
                backend=_parse_backend(path["backend"], f"{pwhere}.backend"),
            )
        )
    return IngressRule(host=host or None, paths=tuple(paths))


def _parse_tls(raw: object, where: str) -> IngressTLS:
    tls = _as_map(raw, where)
    hosts = tuple(
        _as_str(h, f"{where}.hosts[{i}]") for i, h in enumerate(_list(tls, "hosts", where))
    )
    return IngressTLS(hosts=hosts, secret_name=_opt_str(tls, "secretName", f"{where}.secretName"))


def _parse_backend(raw: object, where: str) -> Backend:
    backend = _as_map(raw, where)
    if "resource" in backend:
        res = _as_map(backend["resource"], f"{where}.resource")
        return ResourceBackend(
            api_group=_opt_str(res, "apiGroup", f"{where}.resource.apiGroup") or "",
            kind=_req_str(res, "kind", f"{where}.resource.kind"),
            name=_req_str(res, "name", f"{where}.resource.name"),
        )
    service = _as_map(backend.get("service"), f"{where}.service")
    name = _req_str(service, "name", f"{where}.service.name")
    port = _as_map(service.get("port"), f"{where}.service.port")
    number, port_name = port.get("number"), port.get("name")
    if number is not None and port_name is not None:
        raise ModelError(f"{where}.service.port must set only one of number and name")
    if port_name is not None:
        return ServiceBackend(name, _as_str(port_name, f"{where}.service.port.name"))
    if isinstance(number, int) and not isinstance(number, bool):
        return ServiceBackend(name, number)
    raise ModelError(f"{where}.service.port needs a number or a name")


def _best_ref(obj: JsonObject, kind: str) -> ObjectRef:
    raw = obj.get("metadata") if isinstance(obj, Mapping) else None
    meta = raw if isinstance(raw, Mapping) else {}
    ns, name = meta.get("namespace"), meta.get("name")
    return ObjectRef(
        kind, ns if isinstance(ns, str) else "", name if isinstance(name, str) else "<unnamed>"
    )


def _timestamp(raw: object) -> datetime | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ModelError("metadata.creationTimestamp must be a string")
    try:
        ts = datetime.fromisoformat(raw)
    except ValueError:
        raise ModelError(f"metadata.creationTimestamp {raw!r} is not RFC 3339") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _as_map(raw: object, where: str) -> JsonObject:
    if not isinstance(raw, Mapping):
        raise ModelError(f"{where} must be an object")
    return raw


def _as_str(raw: object, where: str) -> str:
    if not isinstance(raw, str):
        raise ModelError(f"{where} must be a string")
    return raw


def _opt_map(obj: JsonObject, key: str, where: str) -> JsonObject:
    raw = obj.get(key)
    return {} if raw is None else _as_map(raw, where)


def _list(obj: JsonObject, key: str, where: str) -> Sequence[object]:
    raw = obj.get(key)
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple):
        raise ModelError(f"{where + '.' if where else ''}{key} must be a list")
    return raw


def _opt_str(obj: JsonObject, key: str, where: str) -> str | None:
    raw = obj.get(key)
    return None if raw is None else _as_str(raw, where)


def _req_str(obj: JsonObject, key: str, where: str) -> str:
    raw = obj.get(key)
    if not isinstance(raw, str) or not raw:
        raise ModelError(f"{where} is required and must be a non-empty string")
    return raw


def _req_int(obj: JsonObject, key: str, where: str) -> int:
    raw = obj.get(key)
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise ModelError(f"{where} is required and must be an integer")
    return raw


def _str_map(raw: object, where: str) -> Mapping[str, str]:
    if raw is None:
        return MappingProxyType({})
    if not isinstance(raw, Mapping):
        raise ModelError(f"{where} must be an object")
    out: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ModelError(f"{where} must map strings to strings")
        out[key] = value
    return MappingProxyType(out)
