"""Readable Envoy resources and their diffs (pure): each resource as indented JSON of its proto
(secrets redacted to a digest: a TLS private key is never printed), unified diffs between
versions, and the view of one host (its virtual host, scope, clusters and endpoints) that
`--explain HOST` follows.

The xds-protos stubs are untyped, so proto objects stay inside this module."""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2, scoped_route_pb2
from google.protobuf import json_format
from google.protobuf.message import DecodeError

import ripple_translator.translate.envoy  # noqa: F401  (registers the Any types it embeds)
from ripple_cli.replay.run import Change
from ripple_common.resources import PUSH_ORDER, Resource, TypeUrl
from ripple_translator.store.model import ResourceKey

_MESSAGES: dict[TypeUrl, Any] = {
    TypeUrl.CLUSTER: cluster_pb2.Cluster,
    TypeUrl.ENDPOINT: endpoint_pb2.ClusterLoadAssignment,
    TypeUrl.LISTENER: listener_pb2.Listener,
    TypeUrl.ROUTE: route_pb2.RouteConfiguration,
    TypeUrl.SCOPED_ROUTE: scoped_route_pb2.ScopedRouteConfiguration,
    TypeUrl.VIRTUAL_HOST: route_components_pb2.VirtualHost,
}
_TYPE_RANK = {t: i for i, t in enumerate(PUSH_ORDER)}


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:16]


def as_dict(type_url: TypeUrl, body: bytes) -> dict[str, Any]:
    """The resource as a JSON-able dict; a Secret is only named by a digest of its bytes."""
    message_type = _MESSAGES.get(type_url)
    if message_type is None:  # a Secret (or a type this tool does not render)
        return {"redacted": f"{len(body)} bytes, sha256 {digest(body)}"}
    try:
        message = message_type.FromString(body)
        out: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True)
    except (DecodeError, TypeError, json_format.Error) as exc:
        return {"unreadable": f"{exc}", "sha256": digest(body)}
    return out


def render(type_url: TypeUrl, body: bytes | None) -> list[str]:
    if body is None:
        return []
    return json.dumps(as_dict(type_url, body), indent=2, sort_keys=True).splitlines()


def label(type_url: TypeUrl, name: str) -> str:
    return f"{type_url.short} {name}"


def change_lines(change: Change) -> list[str]:
    """A unified diff of one changed resource (headed by what happened to it)."""
    what = "added" if change.before is None else "removed" if change.after is None else "changed"
    head = f"{what} {label(change.type_url, change.name)}"
    if change.type_url is TypeUrl.SECRET:
        before = "-" if change.before is None else digest(change.before)
        after = "-" if change.after is None else digest(change.after)
        return [f"{head} (content redacted; sha256 {before} -> {after})"]
    diff = difflib.unified_diff(
        render(change.type_url, change.before),
        render(change.type_url, change.after),
        fromfile="before",
        tofile="after",
        n=2,
        lineterm="",
    )
    return [head, *(f"  {line}" for line in list(diff)[2:])]


def config_lines(resources: Mapping[ResourceKey, Resource]) -> list[str]:
    """Every resource of a tenant, in push order (secrets redacted)."""
    out: list[str] = []
    for key in sorted(resources, key=lambda k: (_TYPE_RANK[k[0]], k[1])):
        resource = resources[key]
        out.append(f"--- {label(resource.type_url, resource.name)}")
        out.extend(render(resource.type_url, resource.body))
    return out


# -- one host -----------------------------------------------------------------------------


def host_view(resources: Mapping[ResourceKey, Resource], host: str) -> dict[str, Any]:
    """What serves `host`: its scope, its virtual host(s) and the clusters (with endpoints)
    their routes reach. Two equal views serve the host the same way."""
    view: dict[str, Any] = {}
    clusters: set[str] = set()
    for (type_url, name), resource in sorted(resources.items(), key=lambda i: i[0][1]):
        if type_url is TypeUrl.SCOPED_ROUTE:
            scope = as_dict(type_url, resource.body)
            if _scope_host(scope) == host:
                view[label(type_url, name)] = scope
        elif type_url is TypeUrl.ROUTE:
            config = route_pb2.RouteConfiguration.FromString(resource.body)
            for vhost in config.virtual_hosts:
                if any(_domain_matches(d, host) for d in vhost.domains):
                    view[f"{label(type_url, name)} virtual host {vhost.name}"] = (
                        json_format.MessageToDict(vhost, preserving_proto_field_name=True)
                    )
                    clusters.update(_route_clusters(vhost.routes))
    for cluster in sorted(clusters):
        body = resources.get((TypeUrl.CLUSTER, cluster))
        if body is None:
            view[label(TypeUrl.CLUSTER, cluster)] = None
            continue
        view[label(TypeUrl.CLUSTER, cluster)] = as_dict(TypeUrl.CLUSTER, body.body)
        service = cluster_pb2.Cluster.FromString(body.body).eds_cluster_config.service_name
        endpoints = resources.get((TypeUrl.ENDPOINT, service or cluster))
        view[label(TypeUrl.ENDPOINT, service or cluster)] = (
            None if endpoints is None else as_dict(TypeUrl.ENDPOINT, endpoints.body)
        )
    return view


def view_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    return list(
        difflib.unified_diff(
            json.dumps(before, indent=2, sort_keys=True).splitlines(),
            json.dumps(after, indent=2, sort_keys=True).splitlines(),
            fromfile="before",
            tofile="after",
            n=2,
            lineterm="",
        )
    )[2:]


def _scope_host(scope: Mapping[str, Any]) -> str | None:
    fragments = scope.get("key", {}).get("fragments", [])
    if len(fragments) == 1:
        value = fragments[0].get("string_key")
        return value if isinstance(value, str) else None
    return None


def _domain_matches(domain: str, host: str) -> bool:
    domain, host = domain.lower(), host.lower()
    if domain == host:
        return True
    return domain.startswith("*.") and host.endswith(domain[1:]) and host != domain[2:]


def _route_clusters(routes: Iterable[Any]) -> set[str]:
    out: set[str] = set()
    for route in routes:
        if not route.HasField("route"):
            continue
        action = route.route
        if action.cluster:
            out.add(action.cluster)
        out.update(c.name for c in action.weighted_clusters.clusters)
    return out
