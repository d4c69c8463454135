"""Node identity: which Envoy is asking, which gateway it belongs to and so which listeners,
tenants and secrets it is served. Pure logic, no I/O (the grpc adapter hands in the verified
client certificate's PEM).

- The first request of every ADS stream must carry a `node` with a non-empty, printable `id`
  (Envoy sends it on the first message with `set_node_on_first_message_only`).
- Over mTLS the gateway comes from the verified client certificate, never from the node:
  a URI SAN `spiffe://<trust domain>/gateway/<name>` names gateway `<name>`; a certificate
  without such a URI SAN names the configured gateway equal to one of its DNS SANs or its
  subject common name. A certificate naming several gateways, or none of the configured ones,
  is refused. The node's own claim (its metadata field `ripple.gateway`, else `node.cluster`)
  may be empty or the certificate's gateway; a node claiming another is refused.
- Without configured gateways (the default) every accepted node gets every tenant: one
  gateway. With gateways configured (`GatewayPolicy`), a node gets its gateway's tenants only
  (resources named `<tenant>/...`) plus the shared gateway resources (the plain-HTTP listener)
  and its own HTTPS listener; gateways need mTLS: a node without a verified certificate is
  refused (the node fields are the client's to choose, so they prove nothing). A gateway's
  tenants are names, or name prefixes written with a trailing `*` (`team-a-*`), or `*` (all).
- A replica loads and follows only the tenants some configured gateway of it sees
  (`GatewayPolicy.tenant_filter`): one xds Deployment per gateway group holds that group's
  tenants, not the whole cloud's.
- Secrets (SDS: opened TLS private keys) are served only on streams whose client presented a
  verified certificate, unless the server runs with the development flag
  (RIPPLE_XDS_INSECURE_DEV_SECRETS); see `secrets_allowed`.

A node that fails any rule gets nothing: its stream is closed with a message saying why."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import NameOID

from ripple_xds.tenants import tenant_of

MAX_NODE_ID = 256
GATEWAY_METADATA: Final = "ripple.gateway"
ALL_TENANTS: Final = "*"
WILDCARD: Final = "*"  # trailing, in a tenant pattern: every tenant whose name starts so
# Not in a tenant name (`/` ends it, braces are its Redis hash tag) nor a pattern's stem
# (only a trailing `*`; fnmatch's `?` and `[...]` are not supported).
_RESERVED: Final = frozenset("/{}*?[]")
HTTPS_LISTENER_PREFIX: Final = "ripple-https"
SPIFFE_SCHEME: Final = "spiffe"
GATEWAY_PATH: Final = "gateway"  # spiffe://<trust domain>/gateway/<name>


class IdentityError(ValueError):
    """A node that presents no usable identity; the message is sent to the client."""


class NotPermittedError(IdentityError):
    """A node identified, but not allowed what it asks (unknown gateway, certificate
    mismatch, secrets without a certificate)."""


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    node_id: str
    cluster: str = ""
    gateway: str = ""  # what the node claims (metadata ripple.gateway, else cluster)


@dataclass(frozen=True, slots=True)
class PeerCertificate:
    """The names of a verified client certificate (the leaf)."""

    uris: tuple[str, ...] = ()
    dns_names: tuple[str, ...] = ()
    common_names: tuple[str, ...] = ()

    @classmethod
    def from_pem(cls, pem: bytes) -> PeerCertificate:
        """The names of the first certificate of `pem`; ValueError when it does not parse."""
        leaf = x509.load_pem_x509_certificates(pem)[0]
        try:
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            uris = tuple(san.get_values_for_type(x509.UniformResourceIdentifier))
            dns = tuple(san.get_values_for_type(x509.DNSName))
        except x509.ExtensionNotFound:
            uris, dns = (), ()
        common = tuple(
            str(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        )
        return cls(uris=uris, dns_names=dns, common_names=common)

    def uri_gateways(self) -> frozenset[str]:
        """Gateway names of the URI SANs `spiffe://<trust domain>/gateway/<name>`."""
        return frozenset(g for uri in self.uris if (g := spiffe_gateway(uri)) is not None)

    @property
    def names(self) -> tuple[str, ...]:
        """DNS SANs, then common names (for messages and the DNS/CN rule)."""
        return tuple(dict.fromkeys((*self.dns_names, *self.common_names)))


def spiffe_gateway(uri: str) -> str | None:
    """`<name>` of `spiffe://<trust domain>/gateway/<name>`, else None."""
    parts = urlsplit(uri)
    if parts.scheme != SPIFFE_SCHEME or not parts.netloc or parts.query or parts.fragment:
        return None
    segments = parts.path.split("/")
    if len(segments) != 3 or segments[0] or segments[1] != GATEWAY_PATH or not segments[2]:
        return None
    return segments[2]


@dataclass(frozen=True, slots=True)
class Gateway:
    """A gateway: its name and its tenants: `tenants` by exact name (None: every tenant) and
    every tenant whose name starts with one of `prefixes` (patterns `team-a-*`)."""

    name: str
    tenants: frozenset[str] | None = None
    prefixes: tuple[str, ...] = ()

    @property
    def https_listener(self) -> str:
        """The name of this gateway's HTTPS listener (the default gateway's is the plain
        `ripple-https`)."""
        return f"{HTTPS_LISTENER_PREFIX}.{self.name}" if self.name else HTTPS_LISTENER_PREFIX

    def allows_tenant(self, tenant: str) -> bool:
        return self.tenants is None or tenant in self.tenants or tenant.startswith(self.prefixes)

    def tenants_among(self, tenants: Collection[str]) -> frozenset[str]:
        """The ones of `tenants` this gateway sees (exact names by a set intersection)."""
        if self.tenants is None:
            return frozenset(tenants)
        found = self.tenants.intersection(tenants)
        if not self.prefixes:
            return found
        prefixes = self.prefixes
        return found | {t for t in tenants if t.startswith(prefixes)}

    @property
    def patterns(self) -> list[str] | None:
        """The tenants as configured: names, then prefix patterns (None: every tenant)."""
        if self.tenants is None:
            return None
        return [*sorted(self.tenants), *(p + WILDCARD for p in self.prefixes)]

    def allows(self, name: str) -> bool:
        """Whether a node of this gateway may be sent the resource `name`."""
        tenant = tenant_of(name)
        if tenant is not None:
            return self.allows_tenant(tenant)
        if name.startswith(HTTPS_LISTENER_PREFIX):
            return name == self.https_listener
        return True


DEFAULT_GATEWAY = Gateway(name="")


def gateway_of_patterns(name: str, patterns: Collection[str]) -> Gateway:
    """Gateway `name` seeing `patterns`: `*` (every tenant), tenant names, and name prefixes
    written with one trailing `*` (`team-a-*`); ValueError naming the bad entry otherwise."""
    if isinstance(patterns, str):
        raise ValueError(f"gateway {name!r}: tenants must be a list, e.g. [{patterns!r}]")
    names: set[str] = set()
    prefixes: set[str] = set()
    for pattern in patterns:
        if pattern == ALL_TENANTS:
            continue
        stem = pattern.removesuffix(WILDCARD)
        bad = sorted(_RESERVED.intersection(stem))
        if not stem or stem != stem.strip() or not stem.isprintable() or bad:
            raise ValueError(
                f"gateway {name!r}: tenant pattern {pattern!r} is neither a tenant name, nor a "
                "name prefix with one trailing '*' (e.g. 'team-a-*'), nor '*'"
                + (f" (it holds {' '.join(bad)})" if bad else "")
            )
        (prefixes if pattern.endswith(WILDCARD) else names).add(stem)
    if ALL_TENANTS in patterns:
        return Gateway(name=name)
    return Gateway(name=name, tenants=frozenset(names), prefixes=tuple(sorted(prefixes)))


def secrets_allowed(peer: PeerCertificate | None, *, insecure_dev_secrets: bool) -> bool:
    """Whether a stream may be sent secrets: its client presented a verified certificate, or
    the server runs with the insecure development flag."""
    return peer is not None or insecure_dev_secrets


@dataclass(frozen=True, slots=True)
class GatewayPolicy:
    """The configured gateways (name -> tenants, `*` for all); empty: one default gateway
    with every tenant."""

    gateways: Mapping[str, Gateway] = field(default_factory=dict)

    @classmethod
    def of(cls, config: Mapping[str, Collection[str]]) -> GatewayPolicy:
        """The policy of RIPPLE_XDS_GATEWAYS; ValueError (saying which gateway and entry)
        for a bad gateway name or tenant pattern."""
        gateways = {}
        for name, tenants in config.items():
            if not name or not name.isprintable() or "/" in name:
                raise ValueError(f"gateway name {name!r} must be printable, without '/'")
            gateways[name] = gateway_of_patterns(name, tenants)
        return cls(gateways=gateways)

    def all(self) -> tuple[Gateway, ...]:
        """Every gateway whose listeners are built."""
        return tuple(self.gateways.values()) if self.gateways else (DEFAULT_GATEWAY,)

    def tenant_filter(self) -> Callable[[str], bool] | None:
        """Which tenants a replica loads, follows and holds: those some configured gateway
        sees. None: every tenant (no gateways, or a gateway of every tenant)."""
        gateways = self.gateways.values()
        if not gateways or any(g.tenants is None for g in gateways):
            return None
        union = Gateway(
            name="",
            tenants=frozenset().union(*(g.tenants or () for g in gateways)),
            prefixes=tuple(sorted({p for g in gateways for p in g.prefixes})),
        )
        return union.allows_tenant

    def certificate_gateway(self, peer: PeerCertificate) -> str | None:
        """The gateway a verified client certificate names (see the module doc), None when it
        names none and no gateways are configured; NotPermittedError when it is ambiguous or
        names no configured gateway."""
        named = peer.uri_gateways()
        if not named and self.gateways:
            named = frozenset(n for n in peer.names if n in self.gateways)
        if len(named) > 1:
            raise NotPermittedError(
                "ripple-xds: the client certificate names several gateways "
                f"({', '.join(sorted(named))}); issue one certificate per gateway"
            )
        if not named:
            if self.gateways:
                raise NotPermittedError(
                    "ripple-xds: the client certificate names no configured gateway (URI SAN "
                    f"spiffe://<trust domain>/{GATEWAY_PATH}/<name>, or a DNS SAN or common "
                    f"name equal to a gateway of RIPPLE_XDS_GATEWAYS); it names: "
                    f"{', '.join((*peer.uris, *peer.names)) or 'nothing'}"
                )
            return None
        return next(iter(named))

    def gateway_of(self, identity: NodeIdentity, *, peer: PeerCertificate | None) -> Gateway:
        """The gateway a node is served as, or NotPermittedError. `peer`: the verified client
        certificate (mTLS), None on a connection without one."""
        if peer is None:
            if self.gateways:
                raise NotPermittedError(
                    f"ripple-xds: node {identity.node_id!r} presents no client certificate; "
                    "with RIPPLE_XDS_GATEWAYS the gateway is proven by mTLS only"
                )
            return DEFAULT_GATEWAY
        name = self.certificate_gateway(peer)
        if name is not None and identity.gateway and identity.gateway != name:
            raise NotPermittedError(
                f"ripple-xds: node {identity.node_id!r} claims gateway {identity.gateway!r} "
                f"but its client certificate is gateway {name!r}"
            )
        if not self.gateways:
            return DEFAULT_GATEWAY
        assert name is not None  # certificate_gateway names one when gateways are configured
        gateway = self.gateways.get(name)
        if gateway is None:
            raise NotPermittedError(
                f"ripple-xds: the client certificate names gateway {name!r}, which is not "
                "configured in RIPPLE_XDS_GATEWAYS"
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
