"""Which DNS clusters (a tenant's Service of type ExternalName) a gateway serves.

An ExternalName Service makes Envoy connect to whatever name the tenant wrote: a hostile
tenant could name a cluster-internal host (`kube-apiserver.kube-system.svc`, `redis.internal`,
the cloud metadata address) and reach it through the gateway, a known ingress-nginx risk
(its `disable-svc-external-name` flag). So it is the gateway operator's choice
(`RIPPLE_XDS_EXTERNAL_NAME_SERVICES`, off by default): off, no STRICT_DNS/LOGICAL_DNS cluster
of a tenant is served (its routes answer 503, as a Service without endpoints); on, names equal
to or under a denied suffix (`RIPPLE_XDS_EXTERNAL_NAME_DENIED_SUFFIXES`) are still refused, as
are `localhost` and loopback, link-local and unspecified addresses (as ingress-nginx refuses
localhost). Name checks cannot see what a name resolves to: a public name pointing at an
internal address passes; the gateway's egress network policy is the defence for that.
Pure: no I/O."""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import structlog
from envoy.config.cluster.v3 import cluster_pb2

from ripple_common.resources import Resource, TypeUrl
from ripple_xds.tenants import tenant_of

_log = structlog.get_logger(__name__)
_DNS_TYPES = frozenset({cluster_pb2.Cluster.STRICT_DNS, cluster_pb2.Cluster.LOGICAL_DNS})


def name_problem(name: str, denied_suffixes: Iterable[str]) -> str | None:
    """Why a gateway must not connect to the external name `name` (None: it may)."""
    host = name.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return f"{name!r} is localhost"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and (
        address.is_loopback or address.is_link_local or address.is_unspecified
    ):
        return f"{name!r} is a loopback, link-local or unspecified address"
    for denied in denied_suffixes:
        suffix = denied.strip(".").lower()
        if suffix and (host == suffix or host.endswith(f".{suffix}")):
            return f"{name!r} is under the denied suffix {suffix!r}"
    return None


@dataclass(slots=True)
class ExternalNameStats:
    # DNS clusters not served, by tenant.
    refused: Counter[str] = field(default_factory=Counter)


class ExternalNameGate:
    """Passes every resource but a tenant's DNS cluster the policy refuses (None)."""

    def __init__(self, *, enabled: bool, denied_suffixes: Iterable[str] = ()) -> None:
        self._enabled = enabled
        self._denied = tuple(denied_suffixes)
        self.stats = ExternalNameStats()

    def __call__(self, resource: Resource) -> Resource | None:
        if resource.type_url is not TypeUrl.CLUSTER:
            return resource
        cluster = cluster_pb2.Cluster.FromString(resource.body)
        if cluster.type not in _DNS_TYPES:
            return resource
        problem = self.problem(cluster)
        if problem is None:
            return resource
        tenant = tenant_of(resource.name) or "-"
        self.stats.refused[tenant] += 1
        _log.error(
            "cluster not served: ExternalName Service refused by the gateway's policy",
            cluster=resource.name,
            tenant=tenant,
            error=problem,
        )
        return None

    def problem(self, cluster: cluster_pb2.Cluster) -> str | None:
        if not self._enabled:
            return (
                "ExternalName Services are off on this gateway (RIPPLE_XDS_EXTERNAL_NAME_SERVICES)"
            )
        for group in cluster.load_assignment.endpoints:
            for lb in group.lb_endpoints:
                name = lb.endpoint.address.socket_address.address
                if (problem := name_problem(name, self._denied)) is not None:
                    return problem
        return None
