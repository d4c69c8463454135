"""Node identity: which Envoy is asking, which gateway it belongs to and so which listeners
and tenants it is served. Pure logic, no I/O.

- The first request of every ADS stream must carry a `node` with a non-empty, printable `id`
  (Envoy sends it on the first message with `set_node_on_first_message_only`).
- The node's gateway is its metadata field `ripple.gateway` when set, else `node.cluster`
  (Envoy's `--service-cluster`).
- Without configured gateways (the default), every identified node gets every tenant: one
  gateway. With gateways configured (`GatewayPolicy`), the node's gateway must be one of them,
  and the node gets that gateway's tenants only (resources named `<tenant>/...`) plus the
  shared gateway resources (the plain-HTTP listener) and its own HTTPS listener.
- Over mTLS, the client certificate is the proof: the gateway (or the node id) must be one
  of the certificate's names (DNS SANs or common name), so a node cannot claim another
  gateway's tenants by writing their name in its bootstrap.

A node that fails any rule gets nothing: its stream is closed with a message saying why."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from ripple_xds.tenants import tenant_of

MAX_NODE_ID = 256
GATEWAY_METADATA: Final = "ripple.gateway"
ALL_TENANTS: Final = "*"
HTTPS_LISTENER_PREFIX: Final = "ripple-https"


class IdentityError(ValueError):
    """A node that presents no usable identity; the message is sent to the client."""


class NotPermittedError(IdentityError):
    """A node identified, but not allowed what it asks (unknown gateway, certificate
    mismatch)."""


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    node_id: str
    cluster: str = ""
    gateway: str = ""


@dataclass(frozen=True, slots=True)
class Gateway:
    """A gateway: its name and its tenants (None: every tenant)."""

    name: str
    tenants: frozenset[str] | None = None

    @property
    def https_listener(self) -> str:
        """The name of this gateway's HTTPS listener (the default gateway's is the plain
        `ripple-https`)."""
        return f"{HTTPS_LISTENER_PREFIX}.{self.name}" if self.name else HTTPS_LISTENER_PREFIX

    def allows_tenant(self, tenant: str) -> bool:
        return self.tenants is None or tenant in self.tenants

    def allows(self, name: str) -> bool:
        """Whether a node of this gateway may be sent the resource `name`."""
        tenant = tenant_of(name)
        if tenant is not None:
            return self.allows_tenant(tenant)
        if name.startswith(HTTPS_LISTENER_PREFIX):
            return name == self.https_listener
        return True


DEFAULT_GATEWAY = Gateway(name="")


@dataclass(frozen=True, slots=True)
class GatewayPolicy:
    """The configured gateways (name -> tenants, `*` for all); empty: one default gateway
    with every tenant, any node allowed."""

    gateways: Mapping[str, Gateway] = field(default_factory=dict)

    @classmethod
    def of(cls, config: Mapping[str, Collection[str]]) -> GatewayPolicy:
        gateways = {}
        for name, tenants in config.items():
            if not name or not name.isprintable() or "/" in name:
                raise ValueError(f"gateway name {name!r} must be printable, without '/'")
            selected = None if ALL_TENANTS in tenants else frozenset(tenants)
            gateways[name] = Gateway(name=name, tenants=selected)
        return cls(gateways=gateways)

    def all(self) -> tuple[Gateway, ...]:
        """Every gateway whose listeners are built."""
        return tuple(self.gateways.values()) if self.gateways else (DEFAULT_GATEWAY,)

    def gateway_of(self, identity: NodeIdentity, *, peer_names: Iterable[str] = ()) -> Gateway:
        """The gateway a node is served as, or NotPermittedError. `peer_names`: the names of the
        client certificate (mTLS), empty on a plaintext connection."""
        names = frozenset(peer_names)
        if names and identity.gateway not in names and identity.node_id not in names:
            raise NotPermittedError(
                f"ripple-xds: node {identity.node_id!r} claims gateway {identity.gateway!r} "
                f"but its client certificate names neither ({', '.join(sorted(names))})"
            )
        if not self.gateways:
            return DEFAULT_GATEWAY
        gateway = self.gateways.get(identity.gateway)
        if gateway is None:
            raise NotPermittedError(
                f"ripple-xds: node {identity.node_id!r} names gateway {identity.gateway!r}, "
                "which is not configured (set node.cluster or node metadata "
                f"{GATEWAY_METADATA} to a gateway of RIPPLE_XDS_GATEWAYS)"
            )
        return gateway


def identify(
    *, has_node: bool, node_id: str, cluster: str = "", metadata_gateway: str = ""
) -> NodeIdentity:
    """The identity a stream's first request presents, or IdentityError."""
    if not has_node:
        raise IdentityError(
            "ripple-xds: the first request of a stream must carry node.id "
            "(set node.id in the Envoy bootstrap)"
        )
    if not node_id.strip():
        raise IdentityError("ripple-xds: node.id is empty (set node.id in the Envoy bootstrap)")
    if len(node_id) > MAX_NODE_ID or not node_id.isprintable():
        raise IdentityError(
            f"ripple-xds: node.id must be printable and at most {MAX_NODE_ID} characters"
        )
    return NodeIdentity(node_id=node_id, cluster=cluster, gateway=metadata_gateway or cluster)
