"""xDS resource identity shared by the translator (which writes resources) and the xds servers
(which serve them). A resource is held as the serialized bytes of its Envoy proto message, so
it is encoded once and sent to every Envoy as is."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field

_PREFIX = "type.googleapis.com/"


class TypeUrl(enum.StrEnum):
    CLUSTER = _PREFIX + "envoy.config.cluster.v3.Cluster"
    ENDPOINT = _PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"
    LISTENER = _PREFIX + "envoy.config.listener.v3.Listener"
    ROUTE = _PREFIX + "envoy.config.route.v3.RouteConfiguration"
    SCOPED_ROUTE = _PREFIX + "envoy.config.route.v3.ScopedRouteConfiguration"
    VIRTUAL_HOST = _PREFIX + "envoy.config.route.v3.VirtualHost"
    SECRET = _PREFIX + "envoy.extensions.transport_sockets.tls.v3.Secret"

    @property
    def short(self) -> str:
        """Short name used in Redis keys and logs: cds, eds, lds, rds, srds, vhds, sds."""
        return _SHORT[self]


_SHORT: dict[TypeUrl, str] = {
    TypeUrl.CLUSTER: "cds",
    TypeUrl.ENDPOINT: "eds",
    TypeUrl.LISTENER: "lds",
    TypeUrl.ROUTE: "rds",
    TypeUrl.SCOPED_ROUTE: "srds",
    TypeUrl.VIRTUAL_HOST: "vhds",
    TypeUrl.SECRET: "sds",
}

# Make before break: the order in which a server pushes changes of several types.
PUSH_ORDER: tuple[TypeUrl, ...] = (
    TypeUrl.CLUSTER,
    TypeUrl.ENDPOINT,
    TypeUrl.SECRET,
    TypeUrl.LISTENER,
    TypeUrl.SCOPED_ROUTE,
    TypeUrl.ROUTE,
    TypeUrl.VIRTUAL_HOST,
)


@dataclass(frozen=True, slots=True)
class Resource:
    """One named xDS resource: its type, name and serialized proto message."""

    type_url: TypeUrl
    name: str
    body: bytes = field(repr=False)

    @property
    def version(self) -> str:
        """Content version: equal bytes give an equal version on every replica."""
        return hashlib.blake2b(self.body, digest_size=8).hexdigest()
