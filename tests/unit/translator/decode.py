"""Decode translated resources back into Envoy protos, to assert on what Envoy would see."""

from __future__ import annotations

from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.route.v3 import route_pb2, scoped_route_pb2
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from ripple_common.resources import Resource, TypeUrl
from ripple_translator.translate import Diagnostic, Reason, Severity, Translation

_CLASSES: dict[TypeUrl, Any] = {
    TypeUrl.CLUSTER: cluster_pb2.Cluster,
    TypeUrl.ENDPOINT: endpoint_pb2.ClusterLoadAssignment,
    TypeUrl.ROUTE: route_pb2.RouteConfiguration,
    TypeUrl.SCOPED_ROUTE: scoped_route_pb2.ScopedRouteConfiguration,
    TypeUrl.SECRET: secret_pb2.Secret,
}


def of_type(t: Translation, type_url: TypeUrl) -> list[Resource]:
    return [r for r in t.resources if r.type_url is type_url]


def names(t: Translation, type_url: TypeUrl) -> list[str]:
    return [r.name for r in of_type(t, type_url)]


def decode(resource: Resource) -> Any:
    return _CLASSES[resource.type_url].FromString(resource.body)


def one(t: Translation, type_url: TypeUrl, name: str | None = None) -> Any:
    found = [r for r in of_type(t, type_url) if name is None or r.name == name]
    assert len(found) == 1, f"expected one {type_url.short} {name or ''}, got {found}"
    return decode(found[0])


def route_config(t: Translation) -> Any:
    return one(t, TypeUrl.ROUTE)


def vhost(t: Translation, host: str) -> Any:
    hosts = [vh for vh in route_config(t).virtual_hosts if vh.name == host]
    assert len(hosts) == 1, f"no virtual host {host}"
    return hosts[0]


def routes(t: Translation, host: str = "shop.example.com") -> list[Any]:
    return list(vhost(t, host).routes)


def main_route(t: Translation, host: str = "shop.example.com") -> Any:
    """The last route of the host that forwards or responds (not a redirect to https)."""
    candidates = [r for r in routes(t, host) if not r.match.headers]
    assert candidates, f"no header-less route on {host}"
    return candidates[-1]


def cluster(t: Translation, name: str | None = None) -> Any:
    return one(t, TypeUrl.CLUSTER, name)


def endpoints(t: Translation, name: str | None = None) -> Any:
    return one(t, TypeUrl.ENDPOINT, name)


def cors(route: Any) -> Any:
    return cors_pb2.CorsPolicy.FromString(
        route.typed_per_filter_config["envoy.filters.http.cors"].value
    )


def rbac(route: Any) -> Any:
    return rbac_pb2.RBACPerRoute.FromString(
        route.typed_per_filter_config["envoy.filters.http.rbac"].value
    )


def diags(
    t: Translation, reason: Reason | None = None, severity: Severity | None = None
) -> list[Diagnostic]:
    return [
        d
        for d in t.diagnostics
        if (reason is None or d.reason is reason) and (severity is None or d.severity is severity)
    ]


def match_of(route: Any) -> tuple[str, str]:
    """(kind, value) of a route's path match."""
    kind = route.match.WhichOneof("path_specifier")
    value = route.match.safe_regex.regex if kind == "safe_regex" else getattr(route.match, kind)
    return kind, value
