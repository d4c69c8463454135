"""Gateway API objects (gateway.networking.k8s.io/v1 Gateway and HTTPRoute) as frozen dataclasses.

As in `model`, parsing checks structure only and fills in the API's defaults (a rule without
matches matches every path, a match without a path is ``PathPrefix /``, a backendRef weighs 1);
what the values mean is judged in `gateway` and `httproute`. A malformed object raises
`ModelError` naming the offending field.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeVar

from ripple_translator.translate.model import (
    JsonObject,
    Meta,
    ModelError,
    _as_map,
    _as_str,
    _list,
    _opt_map,
    _opt_str,
    _req_str,
    parse_meta,
)

GATEWAY_GROUP = "gateway.networking.k8s.io"
_E = TypeVar("_E", bound=enum.StrEnum)


class PathType(enum.StrEnum):
    EXACT = "Exact"
    PATH_PREFIX = "PathPrefix"
    REGULAR_EXPRESSION = "RegularExpression"


class ValueType(enum.StrEnum):
    EXACT = "Exact"
    REGULAR_EXPRESSION = "RegularExpression"


class PathModifierType(enum.StrEnum):
    REPLACE_FULL_PATH = "ReplaceFullPath"
    REPLACE_PREFIX_MATCH = "ReplacePrefixMatch"


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateRef:
    group: str
    kind: str
    name: str
    namespace: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Listener:
    name: str
    hostname: str | None
    port: int
    protocol: str
    # allowedRoutes.namespaces.from: Same (the default), All or Selector.
    allowed_from: str = "Same"
    # allowedRoutes.kinds as (group, kind); empty: the protocol's default (HTTPRoute for HTTP/S).
    allowed_kinds: tuple[tuple[str, str], ...] = ()
    # tls.mode (Terminate, the default, or Passthrough) and tls.certificateRefs.
    tls_mode: str = "Terminate"
    certificate_refs: tuple[CertificateRef, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Gateway:
    meta: Meta
    class_name: str
    listeners: tuple[Listener, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ParentRef:
    group: str
    kind: str
    namespace: str | None
    name: str
    section_name: str | None = None
    port: int | None = None


@dataclass(frozen=True, slots=True)
class PathMatchSpec:
    type: PathType
    value: str


@dataclass(frozen=True, slots=True)
class ValueMatch:
    """A header or query parameter match."""

    type: ValueType
    name: str
    value: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteMatch:
    path: PathMatchSpec
    headers: tuple[ValueMatch, ...] = ()
    query_params: tuple[ValueMatch, ...] = ()
    method: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HeaderModifier:
    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PathModifier:
    type: PathModifierType
    value: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestRedirect:
    scheme: str | None = None
    hostname: str | None = None
    path: PathModifier | None = None
    port: int | None = None
    status_code: int = 302


@dataclass(frozen=True, slots=True, kw_only=True)
class UrlRewrite:
    hostname: str | None = None
    path: PathModifier | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendRef:
    group: str
    kind: str
    name: str
    namespace: str | None = None
    port: int | None = None
    weight: int = 1
    has_filters: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteRule:
    matches: tuple[RouteMatch, ...]
    backend_refs: tuple[BackendRef, ...] = ()
    request_headers: HeaderModifier | None = None
    response_headers: HeaderModifier | None = None
    redirect: RequestRedirect | None = None
    rewrite: UrlRewrite | None = None
    # Filter types given but not translated (RequestMirror, ExtensionRef, CORS, ...).
    other_filters: tuple[str, ...] = ()
    has_timeouts: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class HTTPRoute:
    meta: Meta
    parent_refs: tuple[ParentRef, ...] = ()
    hostnames: tuple[str, ...] = ()
    rules: tuple[RouteRule, ...] = ()


_MATCH_ALL = RouteMatch(path=PathMatchSpec(PathType.PATH_PREFIX, "/"))


def parse_gateway(obj: JsonObject) -> Gateway:
    meta = parse_meta(obj, kind="Gateway")
    spec = _opt_map(obj, "spec", "spec")
    listeners = []
    for i, raw in enumerate(_list(spec, "listeners", "spec")):
        where = f"spec.listeners[{i}]"
        lis = _as_map(raw, where)
        allowed = _opt_map(lis, "allowedRoutes", f"{where}.allowedRoutes")
        namespaces = _opt_map(allowed, "namespaces", f"{where}.allowedRoutes.namespaces")
        kinds = []
        for j, k in enumerate(_list(allowed, "kinds", f"{where}.allowedRoutes")):
            kwhere = f"{where}.allowedRoutes.kinds[{j}]"
            kind = _as_map(k, kwhere)
            group = _opt_str(kind, "group", f"{kwhere}.group")
            kinds.append(
                (GATEWAY_GROUP if group is None else group, _req_str(kind, "kind", kwhere))
            )
        tls = _opt_map(lis, "tls", f"{where}.tls")
        certs = []
        for j, c in enumerate(_list(tls, "certificateRefs", f"{where}.tls")):
            cwhere = f"{where}.tls.certificateRefs[{j}]"
            cert = _as_map(c, cwhere)
            certs.append(
                CertificateRef(
                    group=_opt_str(cert, "group", f"{cwhere}.group") or "",
                    kind=_opt_str(cert, "kind", f"{cwhere}.kind") or "Secret",
                    name=_req_str(cert, "name", f"{cwhere}.name"),
                    namespace=_opt_str(cert, "namespace", f"{cwhere}.namespace") or None,
                )
            )
        listeners.append(
            Listener(
                name=_req_str(lis, "name", f"{where}.name"),
                hostname=_opt_str(lis, "hostname", f"{where}.hostname") or None,
                port=_int(lis, "port", f"{where}.port", required=True) or 0,
                protocol=_req_str(lis, "protocol", f"{where}.protocol"),
                allowed_from=_opt_str(namespaces, "from", f"{where}.allowedRoutes.namespaces.from")
                or "Same",
                allowed_kinds=tuple(kinds),
                tls_mode=_opt_str(tls, "mode", f"{where}.tls.mode") or "Terminate",
                certificate_refs=tuple(certs),
            )
        )
    return Gateway(
        meta=meta,
        class_name=_req_str(spec, "gatewayClassName", "spec.gatewayClassName"),
        listeners=tuple(listeners),
    )


def parse_http_route(obj: JsonObject) -> HTTPRoute:
    meta = parse_meta(obj, kind="HTTPRoute")
    spec = _opt_map(obj, "spec", "spec")
    parents = []
    for i, raw in enumerate(_list(spec, "parentRefs", "spec")):
        where = f"spec.parentRefs[{i}]"
        ref = _as_map(raw, where)
        group = _opt_str(ref, "group", f"{where}.group")
        parents.append(
            ParentRef(
                group=GATEWAY_GROUP if group is None else group,
                kind=_opt_str(ref, "kind", f"{where}.kind") or "Gateway",
                namespace=_opt_str(ref, "namespace", f"{where}.namespace") or None,
                name=_req_str(ref, "name", f"{where}.name"),
                section_name=_opt_str(ref, "sectionName", f"{where}.sectionName") or None,
                port=_int(ref, "port", f"{where}.port"),
            )
        )
    hostnames = tuple(
        _as_str(h, f"spec.hostnames[{i}]") for i, h in enumerate(_list(spec, "hostnames", "spec"))
    )
    rules = tuple(
        _parse_rule(r, f"spec.rules[{i}]") for i, r in enumerate(_list(spec, "rules", "spec"))
    )
    return HTTPRoute(meta=meta, parent_refs=tuple(parents), hostnames=hostnames, rules=rules)


def _parse_rule(raw: object, where: str) -> RouteRule:
    rule = _as_map(raw, where)
    matches = tuple(
        _parse_match(m, f"{where}.matches[{i}]")
        for i, m in enumerate(_list(rule, "matches", where))
    )
    backends = tuple(
        _parse_backend(b, f"{where}.backendRefs[{i}]")
        for i, b in enumerate(_list(rule, "backendRefs", where))
    )
    request_headers = response_headers = None
    redirect, rewrite = None, None
    seen: set[str] = set()
    others: list[str] = []
    for i, f in enumerate(_list(rule, "filters", where)):
        fwhere = f"{where}.filters[{i}]"
        flt = _as_map(f, fwhere)
        kind = _req_str(flt, "type", f"{fwhere}.type")
        if kind in seen:
            raise ModelError(f"{fwhere}: filter {kind} is given twice in one rule")
        seen.add(kind)
        if kind == "RequestHeaderModifier":
            request_headers = _parse_modifier(flt, "requestHeaderModifier", fwhere)
        elif kind == "ResponseHeaderModifier":
            response_headers = _parse_modifier(flt, "responseHeaderModifier", fwhere)
        elif kind == "RequestRedirect":
            redirect = _parse_redirect(flt, fwhere)
        elif kind == "URLRewrite":
            rewrite = _parse_rewrite(flt, fwhere)
        else:
            others.append(kind)
    return RouteRule(
        matches=matches or (_MATCH_ALL,),
        backend_refs=backends,
        request_headers=request_headers,
        response_headers=response_headers,
        redirect=redirect,
        rewrite=rewrite,
        other_filters=tuple(others),
        has_timeouts=rule.get("timeouts") is not None,
    )


def _parse_match(raw: object, where: str) -> RouteMatch:
    match = _as_map(raw, where)
    path = _opt_map(match, "path", f"{where}.path")
    path_type = _enum(PathType, _opt_str(path, "type", f"{where}.path.type"), f"{where}.path.type")
    return RouteMatch(
        path=PathMatchSpec(
            path_type or PathType.PATH_PREFIX, _opt_str(path, "value", f"{where}.path.value") or "/"
        ),
        headers=_value_matches(match, "headers", where),
        query_params=_value_matches(match, "queryParams", where),
        method=_opt_str(match, "method", f"{where}.method"),
    )


def _value_matches(match: JsonObject, key: str, where: str) -> tuple[ValueMatch, ...]:
    out = []
    for i, raw in enumerate(_list(match, key, where)):
        vwhere = f"{where}.{key}[{i}]"
        item = _as_map(raw, vwhere)
        kind = _enum(ValueType, _opt_str(item, "type", f"{vwhere}.type"), f"{vwhere}.type")
        value = _opt_str(item, "value", f"{vwhere}.value")
        if value is None:
            raise ModelError(f"{vwhere}.value is required")
        out.append(ValueMatch(kind or ValueType.EXACT, _req_str(item, "name", vwhere), value))
    return tuple(out)


def _parse_modifier(flt: JsonObject, key: str, where: str) -> HeaderModifier:
    mod = _as_map(flt.get(key), f"{where}.{key}")

    def pairs(field: str) -> tuple[tuple[str, str], ...]:
        out = []
        for i, raw in enumerate(_list(mod, field, f"{where}.{key}")):
            pwhere = f"{where}.{key}.{field}[{i}]"
            header = _as_map(raw, pwhere)
            value = _opt_str(header, "value", f"{pwhere}.value")
            if value is None:
                raise ModelError(f"{pwhere}.value is required")
            out.append((_req_str(header, "name", f"{pwhere}.name"), value))
        return tuple(out)

    remove = tuple(
        _as_str(r, f"{where}.{key}.remove[{i}]")
        for i, r in enumerate(_list(mod, "remove", f"{where}.{key}"))
    )
    return HeaderModifier(set=pairs("set"), add=pairs("add"), remove=remove)


def _parse_path_modifier(raw: JsonObject, where: str) -> PathModifier | None:
    path = _opt_map(raw, "path", f"{where}.path")
    if not path:
        return None
    kind = _enum(PathModifierType, _req_str(path, "type", f"{where}.path.type"), where)
    assert kind is not None
    field = (
        "replaceFullPath" if kind is PathModifierType.REPLACE_FULL_PATH else "replacePrefixMatch"
    )
    value = _opt_str(path, field, f"{where}.path.{field}")
    if value is None:
        raise ModelError(f"{where}.path.{field} is required for type {kind}")
    return PathModifier(kind, value)


def _parse_redirect(flt: JsonObject, where: str) -> RequestRedirect:
    raw = _as_map(flt.get("requestRedirect"), f"{where}.requestRedirect")
    rwhere = f"{where}.requestRedirect"
    return RequestRedirect(
        scheme=_opt_str(raw, "scheme", f"{rwhere}.scheme"),
        hostname=_opt_str(raw, "hostname", f"{rwhere}.hostname"),
        path=_parse_path_modifier(raw, rwhere),
        port=_int(raw, "port", f"{rwhere}.port"),
        status_code=_int(raw, "statusCode", f"{rwhere}.statusCode") or 302,
    )


def _parse_rewrite(flt: JsonObject, where: str) -> UrlRewrite:
    raw = _as_map(flt.get("urlRewrite"), f"{where}.urlRewrite")
    rwhere = f"{where}.urlRewrite"
    return UrlRewrite(
        hostname=_opt_str(raw, "hostname", f"{rwhere}.hostname"),
        path=_parse_path_modifier(raw, rwhere),
    )


def _parse_backend(raw: object, where: str) -> BackendRef:
    ref = _as_map(raw, where)
    weight = _int(ref, "weight", f"{where}.weight")
    return BackendRef(
        group=_opt_str(ref, "group", f"{where}.group") or "",
        kind=_opt_str(ref, "kind", f"{where}.kind") or "Service",
        name=_req_str(ref, "name", f"{where}.name"),
        namespace=_opt_str(ref, "namespace", f"{where}.namespace") or None,
        port=_int(ref, "port", f"{where}.port"),
        weight=1 if weight is None else weight,
        has_filters=bool(_list(ref, "filters", where)),
    )


def _int(obj: JsonObject, key: str, where: str, *, required: bool = False) -> int | None:
    raw = obj.get(key)
    if raw is None and not required:
        return None
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise ModelError(f"{where} must be an integer")
    return raw


def _enum(cls: type[_E], raw: str | None, where: str) -> _E | None:
    if raw is None:
        return None
    try:
        return cls(raw)
    except ValueError:
        allowed = ", ".join(m.value for m in cls)
        raise ModelError(f"{where} {raw!r} is not one of {allowed}") from None
