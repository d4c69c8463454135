"""Ingress backends resolved to Envoy clusters, and EndpointSlices to endpoints.

A backend names a Service and one of its ports (by number or name). It resolves to a
`ClusterTarget`: the cluster (service port + upstream settings) and its endpoint assignment
(service port only). Endpoints come from the Service's EndpointSlices: the slice port whose name
equals the Service port's name gives the target port (Kubernetes resolves named target ports per
pod into the slices), and only ready endpoints count.

A Service of type ExternalName has no EndpointSlices: its cluster resolves the external name
by DNS (`ClusterSettings.external_name`, an Envoy STRICT_DNS cluster) on the Service port's
numeric targetPort, else its port, else (a Service without that port) the backend's port
number, as ingress-nginx. A TLS backend sends the external name as SNI unless upstream-vhost
names another. Whether a gateway serves such clusters is its own policy (the xds server's
`external_name_services`: a tenant could name a cluster-internal host).
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from ripple_translator.translate import naming
from ripple_translator.translate.annotations import ClusterSettings
from ripple_translator.translate.diagnostics import Reason
from ripple_translator.translate.model import (
    Backend,
    EndpointSlice,
    ResourceBackend,
    Service,
    ServiceBackend,
    ServicePort,
)

_ADDRESS_TYPES = frozenset({"IPv4", "IPv6"})
# A DNS-1123 subdomain (what Kubernetes validates spec.externalName against), lower case.
_DNS_NAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterTarget:
    cluster: str
    endpoints: str
    namespace: str
    service: str
    port: ServicePort
    settings: ClusterSettings


@dataclass(frozen=True, slots=True)
class Unresolved:
    reason: Reason
    message: str


@dataclass(frozen=True, slots=True)
class LocalityEndpoints:
    """Ready endpoints of one locality (zone, node), each an (address, port) pair."""

    zone: str
    sub_zone: str
    addresses: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Inventory:
    """The tenant's Services and EndpointSlices, indexed by namespace and name."""

    services: Mapping[tuple[str, str], Service]
    slices: Mapping[tuple[str, str], tuple[EndpointSlice, ...]]

    @classmethod
    def build(cls, services: Iterable[Service], slices: Iterable[EndpointSlice]) -> Inventory:
        by_service: dict[tuple[str, str], list[EndpointSlice]] = defaultdict(list)
        for s in slices:
            if s.service_name:
                by_service[(s.meta.namespace, s.service_name)].append(s)
        return cls(
            services={(s.meta.namespace, s.meta.name): s for s in services},
            slices={k: tuple(sorted(v, key=lambda s: s.meta.name)) for k, v in by_service.items()},
        )

    def resolve(
        self, *, tenant: str, namespace: str, backend: Backend, settings: ClusterSettings
    ) -> ClusterTarget | Unresolved:
        if isinstance(backend, ResourceBackend):
            return Unresolved(
                Reason.UNSUPPORTED_BACKEND,
                f"resource backend {backend.kind} {backend.name} is not supported",
            )
        service = self.services.get((namespace, backend.service))
        if service is None:
            return Unresolved(
                Reason.SERVICE_NOT_FOUND,
                f"Service {namespace}/{backend.service} does not exist",
            )
        if service.type == "ExternalName":
            return _external_name(
                tenant=tenant, service=service, backend=backend, settings=settings
            )
        port = _find_port(service.ports, backend.port)
        if port is None:
            return Unresolved(
                Reason.SERVICE_PORT_NOT_FOUND,
                f"Service {namespace}/{backend.service} has no port {backend.port!r}",
            )
        if port.protocol != "TCP":
            return Unresolved(
                Reason.UNSUPPORTED_BACKEND,
                f"Service {namespace}/{backend.service} port {backend.port!r} is "
                f"{port.protocol}, not TCP",
            )
        endpoints = naming.endpoints_name(tenant, namespace, backend.service, port.port)
        return ClusterTarget(
            cluster=naming.cluster_name(endpoints, settings.variant),
            endpoints=endpoints,
            namespace=namespace,
            service=backend.service,
            port=port,
            settings=settings,
        )

    def endpoints(self, target: ClusterTarget) -> tuple[tuple[LocalityEndpoints, ...], list[str]]:
        """The ready endpoints of a target by locality, and notes on slices left out."""
        return collect_endpoints(
            target.port, self.slices.get((target.namespace, target.service), ())
        )


def _external_name(
    *, tenant: str, service: Service, backend: ServiceBackend, settings: ClusterSettings
) -> ClusterTarget | Unresolved:
    """The DNS cluster of an ExternalName Service (see the module doc)."""
    where = f"Service {service.meta.namespace}/{service.meta.name}"
    name = (service.external_name or "").rstrip(".").lower()
    if not _DNS_NAME.match(name):
        return Unresolved(
            Reason.UNSUPPORTED_BACKEND,
            f"{where} is of type ExternalName with externalName "
            f"{service.external_name!r}, not a DNS name",
        )
    port = _find_port(service.ports, backend.port)
    if port is None:
        if not isinstance(backend.port, int):
            return Unresolved(
                Reason.SERVICE_PORT_NOT_FOUND, f"{where} has no port {backend.port!r}"
            )
        port = ServicePort(name="", port=backend.port)
    if port.protocol != "TCP":
        return Unresolved(
            Reason.UNSUPPORTED_BACKEND,
            f"{where} port {backend.port!r} is {port.protocol}, not TCP",
        )
    target = port.target_port if port.target_port else port.port
    settings = replace(
        settings,
        external_name=name,
        external_port=target,
        sni=settings.sni or (name if settings.tls else None),
    )
    endpoints = naming.endpoints_name(tenant, service.meta.namespace, service.meta.name, port.port)
    return ClusterTarget(
        cluster=naming.cluster_name(endpoints, settings.variant),
        endpoints=endpoints,
        namespace=service.meta.namespace,
        service=service.meta.name,
        port=port,
        settings=settings,
    )


def _find_port(ports: Sequence[ServicePort], wanted: int | str) -> ServicePort | None:
    for port in ports:
        if (port.port if isinstance(wanted, int) else port.name) == wanted:
            return port
    return None


def collect_endpoints(
    port: ServicePort, slices: Sequence[EndpointSlice]
) -> tuple[tuple[LocalityEndpoints, ...], list[str]]:
    """Group the ready endpoints serving `port` by (zone, node); drop duplicate addresses.

    gRPC's xDS client rejects an assignment that lists one address twice, so an address seen
    in two slices (which happens while slices are rebalanced) is kept once: the first in slice
    name order.
    """
    notes: list[str] = []
    seen: set[tuple[str, int]] = set()
    groups: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
    for s in slices:
        if s.address_type not in _ADDRESS_TYPES:
            notes.append(f"EndpointSlice {s.meta.name} has addressType {s.address_type}")
            continue
        target = next(
            (p.port for p in s.ports if p.name == port.name and p.protocol == port.protocol),
            None,
        )
        if target is None:
            continue
        for ep in s.endpoints:
            if not ep.ready:
                continue
            for raw in ep.addresses:
                try:
                    address = str(ipaddress.ip_address(raw))
                except ValueError:
                    notes.append(f"EndpointSlice {s.meta.name} lists {raw!r}, not an IP")
                    continue
                key = (address, target)
                if key not in seen:
                    seen.add(key)
                    groups[(ep.zone, ep.node_name)].append(key)
    return (
        tuple(
            LocalityEndpoints(zone, sub_zone, tuple(sorted(addrs, key=_address_order)))
            for (zone, sub_zone), addrs in sorted(groups.items())
        ),
        notes,
    )


def _address_order(item: tuple[str, int]) -> tuple[int, int, int]:
    ip = ipaddress.ip_address(item[0])
    return (ip.version, int(ip), item[1])
