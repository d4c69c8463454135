"""The gateway's HTTPS listener: one filter chain per TLS host, matched by SNI, whose
certificate comes by SDS (the tenant's Secret resource, `<tenant>/<namespace>/<secret>`);
behind TLS, the same scoped-RDS HTTP connection manager as the plain-HTTP listener.

Which host gets which certificate is the translator's choice (the one place that decides it,
`ripple_translator.translate.tls`, whose diagnostics name it): it writes the Secret resource on
the host's virtual host in the tenant's RouteConfiguration,
``filter_metadata[TLS_METADATA][TLS_SECRET_KEY]`` (`ripple_common.gateway_contract`), and this
module serves exactly that. It only refuses what must never be served: a Secret of another
tenant than the RouteConfiguration's (one tenant's certificate cannot take another's host), a
host its tenant does not route (no scope `<tenant>/scope/<host>`), a Secret not in the cache
(refused by `secrets.SecretOpener`) or quarantined (below): such a host gets the default
certificate. Chains match exact server names (a ``*.`` host's chain is Envoy's wildcard match);
a host routed by two tenants at once (an ownership handover) takes the smallest tenant's choice,
so every replica builds the same bytes, hence the same version.

`TlsHosts` keeps what the listener is built from (the Secrets present, per tenant its hosts,
per RouteConfiguration its hosts' Secrets) and is fed by name as the cache changes; a
RouteConfiguration is read once per change. With gateways configured
(`identity.GatewayPolicy`), each gateway has its own HTTPS listener (`ripple-https.<gateway>`)
holding only its tenants' hosts.

The default certificate (`default_certificate`: configured, or generated at start as
ingress-nginx's fake certificate) is the listener's `default_filter_chain`: a client whose SNI
names no bound host (a host whose Secret is missing or invalid, an unknown host, no SNI) gets
it, and the same routes behind it (an unknown host answers 404), so the HTTPS listener exists
even when no host has a certificate, as ingress-nginx's port 443 does. It is the Secret
resource `DEFAULT_CERTIFICATE`, served by SDS like a tenant's (so only to verified gateways).
The listeners take the gateway's client-address settings (`gateway.ClientAddress`: the PROXY
protocol listener filter comes before the TLS inspector).

One tenant's certificate must never fail the listener shared with the others. Secrets whose
certificate and key Envoy would reject never enter the cache (`secrets.SecretOpener`). Should
Envoy still reject something (`HttpsFeed.nacked`, fed the NACKs of every stream): a NACKed
Secret (the one its error names, or the only one of the response), or the Secrets a NACKed
HTTPS listener's error names (by Secret name or host), else the Secrets the newest build added
when they are one tenant's, are quarantined: left out of every listener until their
content changes, with a log line naming the tenant, and a NACK of the listener counted against
that tenant (`ripple_xds_nack_tenant_total`). Pure: no I/O, no grpc."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import structlog
from envoy.config.core.v3 import address_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from google.protobuf.message import DecodeError

from ripple_common.gateway_contract import TLS_METADATA, TLS_SECRET_KEY, TLS_TRANSPORT_SOCKET
from ripple_common.resources import Resource, TypeUrl
from ripple_xds.gateway import (
    EDGE,
    HCM_FILTER,
    ClientAddress,
    add_proxy_protocol,
    ads_config_source,
    http_connection_manager,
)
from ripple_xds.identity import DEFAULT_GATEWAY, HTTPS_LISTENER_PREFIX, Gateway
from ripple_xds.protocol import Nack
from ripple_xds.snapshot import CacheChange, SnapshotCache
from ripple_xds.tenants import tenant_of

_log = structlog.get_logger(__name__)

HTTPS_LISTENER: Final = HTTPS_LISTENER_PREFIX  # the default gateway's
TLS_INSPECTOR: Final = "envoy.filters.listener.tls_inspector"
SCOPE_MARKER: Final = "/scope/"
DEFAULT_CHAIN: Final = "default"


def scope_host(name: str) -> tuple[str, str] | None:
    """(tenant, host) of a scope named `<tenant>/scope/<host>`, else None."""
    tenant, marker, host = name.partition(SCOPE_MARKER)
    if not marker or not tenant or "/" in tenant or not host:
        return None
    return tenant, host


def chosen_certificates(route_body: bytes) -> dict[str, str]:
    """host -> Secret resource: the translator's choice on each virtual host of a serialized
    RouteConfiguration (a virtual host is named after its host); empty when it has none."""
    try:
        config = route_pb2.RouteConfiguration.FromString(route_body)
    except DecodeError as exc:
        _log.warning("route configuration does not parse", error=str(exc))
        return {}
    chosen: dict[str, str] = {}
    for vhost in config.virtual_hosts:
        metadata = vhost.metadata.filter_metadata
        if TLS_METADATA not in metadata:
            continue
        value = metadata[TLS_METADATA].fields.get(TLS_SECRET_KEY)
        if value is not None and value.string_value:
            chosen[vhost.name] = value.string_value
    return chosen


def bindings(
    chosen: Mapping[str, Mapping[str, str]],
    hosts: Mapping[str, Collection[str]],
    secrets: Collection[str],
) -> dict[str, str]:
    """host -> Secret name: the translator's choice (`chosen`: per RouteConfiguration, host ->
    Secret) for each host its tenant routes (`hosts`: per tenant), with a Secret of that tenant
    among `secrets` (see the module doc)."""
    bound: dict[str, str] = {}
    for route in sorted(chosen):
        tenant = tenant_of(route)
        routed = hosts.get(tenant, ()) if tenant is not None else ()
        for host, secret in chosen[route].items():
            if host in routed and tenant_of(secret) == tenant and secret in secrets:
                bound.setdefault(host, secret)
    return bound


def https_listener(
    *,
    address: str,
    port: int,
    bound: Mapping[str, str],
    name: str = HTTPS_LISTENER,
    default_secret: str | None = None,
    client: ClientAddress = EDGE,
) -> Resource | None:
    """The HTTPS listener serving every bound host (host -> Secret) and, with `default_secret`,
    every other server name with that certificate; None when it would serve nothing (no host
    has a certificate and there is no default one)."""
    if not 0 < port < 65536:
        raise ValueError(f"listener port {port} out of range")
    if not bound and default_secret is None:
        return None
    listener = listener_pb2.Listener(
        name=name,
        address=address_pb2.Address(
            socket_address=address_pb2.SocketAddress(address=address, port_value=port)
        ),
    )
    add_proxy_protocol(listener, client)
    inspector = listener.listener_filters.add(name=TLS_INSPECTOR)
    inspector.typed_config.Pack(tls_inspector_pb2.TlsInspector())
    manager = listener_components_pb2.Filter(name=HCM_FILTER)
    manager.typed_config.Pack(http_connection_manager(stat_prefix=HTTPS_LISTENER, client=client))
    for host in sorted(bound):
        chain = listener.filter_chains.add(name=host)
        chain.filter_chain_match.server_names.append(host)
        chain.filters.append(manager)
        chain.transport_socket.name = TLS_TRANSPORT_SOCKET
        chain.transport_socket.typed_config.Pack(_tls_context(bound[host]))
    if default_secret is not None:
        chain = listener.default_filter_chain
        chain.name = DEFAULT_CHAIN
        chain.filters.append(manager)
        chain.transport_socket.name = TLS_TRANSPORT_SOCKET
        chain.transport_socket.typed_config.Pack(_tls_context(default_secret))
    body = listener.SerializeToString(deterministic=True)
    return Resource(TypeUrl.LISTENER, name, body)


def _tls_context(secret: str) -> Any:
    context = tls_pb2.DownstreamTlsContext(
        common_tls_context=tls_pb2.CommonTlsContext(
            alpn_protocols=["h2", "http/1.1"],
            tls_certificate_sds_secret_configs=[
                secret_pb2.SdsSecretConfig(name=secret, sds_config=ads_config_source())
            ],
        )
    )
    context.common_tls_context.tls_params.tls_minimum_protocol_version = (
        common_pb2.TlsParameters.TLSv1_2
    )
    return context


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpsSettings:
    address: str
    port: int
    client: ClientAddress = EDGE
    # The Secret resource of the default certificate (`default_certificate`); None: none.
    default_certificate: Resource | None = None


class TlsHosts:
    """What the HTTPS listener is built from, fed by name as the cache changes."""

    def __init__(self, settings: HttpsSettings) -> None:
        self._settings = settings
        self._digests: dict[str, bytes] = {}  # Secret present -> digest of its content
        self._quarantined: dict[str, bytes] = {}  # Secret -> the content Envoy rejected
        self._hosts: dict[str, set[str]] = {}
        self._chosen: dict[str, dict[str, str]] = {}  # RouteConfiguration -> host -> Secret

    def secret(self, name: str, body: bytes | None) -> None:
        """Secret `name` is now `body` (None: removed). New content lifts a quarantine."""
        if body is None:
            self._digests.pop(name, None)
            self._quarantined.pop(name, None)
            return
        digest = hashlib.blake2b(body, digest_size=16).digest()
        self._digests[name] = digest
        if self._quarantined.get(name, digest) != digest:
            del self._quarantined[name]

    def route(self, name: str, body: bytes | None) -> bool:
        """RouteConfiguration `name` is now `body` (None: removed); whether its hosts'
        certificates changed."""
        chosen = chosen_certificates(body) if body is not None else {}
        if chosen == self._chosen.get(name, {}):
            return False
        if chosen:
            self._chosen[name] = chosen
        else:
            del self._chosen[name]
        return True

    def quarantine(self, name: str) -> bool:
        """Leave Secret `name` out of every listener until its content changes; False when
        it is unknown or already quarantined."""
        digest = self._digests.get(name)
        if digest is None or self._quarantined.get(name) == digest:
            return False
        self._quarantined[name] = digest
        return True

    @property
    def quarantined(self) -> frozenset[str]:
        return frozenset(self._quarantined)

    def scope(self, name: str, *, present: bool) -> None:
        """Scope `name` exists (or not): its host is routed for its tenant."""
        parsed = scope_host(name)
        if parsed is None:
            return
        tenant, host = parsed
        if present:
            self._hosts.setdefault(tenant, set()).add(host)
            return
        hosts = self._hosts.get(tenant)
        if hosts is not None:
            hosts.discard(host)
            if not hosts:
                del self._hosts[tenant]

    def bindings(self, gateway: Gateway = DEFAULT_GATEWAY) -> dict[str, str]:
        """host -> Secret of the hosts of `gateway`'s tenants."""
        hosts = {t: h for t, h in self._hosts.items() if gateway.allows_tenant(t)}
        if not self._quarantined:
            return bindings(self._chosen, hosts, self._digests.keys())
        usable = {n for n in self._digests if n not in self._quarantined}
        return bindings(self._chosen, hosts, usable)

    def listener(self, gateway: Gateway = DEFAULT_GATEWAY) -> Resource | None:
        """`gateway`'s HTTPS listener (named `gateway.https_listener`)."""
        default = self._settings.default_certificate
        return https_listener(
            address=self._settings.address,
            port=self._settings.port,
            bound=self.bindings(gateway),
            name=gateway.https_listener,
            default_secret=default.name if default is not None else None,
            client=self._settings.client,
        )


class HttpsFeed:
    """Keeps the HTTPS listener in `cache` up to date: subscribed to the cache, it feeds
    `TlsHosts` with the Secrets, scopes and RouteConfigurations that changed and rebuilds the
    listener once per burst of changes (`schedule` runs the rebuild later, e.g.
    `loop.call_soon`: a load of thousands of tenants rebuilds it a few times, not once per
    tenant)."""

    def __init__(
        self,
        cache: SnapshotCache,
        settings: HttpsSettings,
        *,
        schedule: Callable[[Callable[[], None]], object],
        gateways: Sequence[Gateway] = (DEFAULT_GATEWAY,),
        nack_tenants: Counter[str] | None = None,
    ) -> None:
        self._cache = cache
        self._gateways = tuple(gateways)
        self._hosts = TlsHosts(settings)
        self._schedule = schedule
        self._pending = False
        self.rebuilds = 0
        # NACKs of a listener attributed to the tenants found at fault (the server's
        # `XdsStats.nack_tenants`: a listener's name names no tenant).
        self.nack_tenants: Counter[str] = nack_tenants if nack_tenants is not None else Counter()
        # Per listener: host -> Secret of the last build and of the one before.
        self._built: dict[str, dict[str, str]] = {}
        self._before: dict[str, dict[str, str]] = {}
        if settings.default_certificate is not None:
            # Served from the start, before any tenant has a certificate.
            cache.apply(upserts=[settings.default_certificate])
            self.rebuild()
        self._subscription = cache.subscribe(self._on_change)

    @property
    def hosts(self) -> TlsHosts:
        return self._hosts

    def close(self) -> None:
        self._subscription.close()

    def _on_change(self, change: CacheChange) -> None:
        touched = False
        for name in change.names.get(TypeUrl.SECRET, ()):
            entry = self._cache.get(TypeUrl.SECRET, name)
            self._hosts.secret(name, entry.resource.body if entry is not None else None)
            touched = True
        for name in change.names.get(TypeUrl.SCOPED_ROUTE, ()):
            present = self._cache.get(TypeUrl.SCOPED_ROUTE, name) is not None
            self._hosts.scope(name, present=present)
            touched = True
        for name in change.names.get(TypeUrl.ROUTE, ()):
            entry = self._cache.get(TypeUrl.ROUTE, name)
            body = entry.resource.body if entry is not None else None
            touched = self._hosts.route(name, body) or touched
        if touched and not self._pending:
            self._pending = True
            self._schedule(self.rebuild)

    def rebuild(self) -> None:
        self._pending = False
        self.rebuilds += 1
        upserts: list[Resource] = []
        removals: list[tuple[TypeUrl, str]] = []
        for gateway in self._gateways:
            name = gateway.https_listener
            self._before[name] = self._built.get(name, {})
            self._built[name] = self._hosts.bindings(gateway)
            listener = self._hosts.listener(gateway)
            if listener is None:
                if self._cache.get(TypeUrl.LISTENER, gateway.https_listener) is not None:
                    removals.append((TypeUrl.LISTENER, gateway.https_listener))
            else:
                upserts.append(listener)
        self._cache.apply(upserts=upserts, removals=removals)

    def nacked(self, nack: Nack) -> tuple[str, ...]:
        """An Envoy rejected a response (any stream's NACK): quarantine the Secrets at fault
        (see the module doc) and rebuild. Returns the tenants found at fault."""
        if nack.type_url is TypeUrl.SECRET:
            # One response may carry several tenants' Secrets: only those the error names
            # are at fault, or the only one.
            names = [n for n in nack.names if tenant_of(n) is not None]
            suspects = [n for n in names if n in nack.error] or (names if len(names) == 1 else [])
            attribute = False  # the server counts a Secret's NACK against its tenant already
        elif nack.type_url is TypeUrl.LISTENER:
            ours = [n for n in nack.names if n in self._built]
            if not ours:
                return ()
            suspects = sorted({s for n in ours for s in self._suspects(n, nack.error)})
            attribute = True
        else:
            return ()
        newly = [s for s in suspects if self._hosts.quarantine(s)]
        tenants = tuple(sorted({t for s in suspects if (t := tenant_of(s)) is not None}))
        if attribute:
            self.nack_tenants.update(tenants)
        if newly:
            _log.error(
                "https: secrets left out of the shared listener after a NACK",
                type=nack.type_url.short,
                tenants=list(tenants),
                secrets=newly[:20],
                error=nack.error[:300],
            )
            if not self._pending:
                self._pending = True
                self._schedule(self.rebuild)
        elif not suspects:
            _log.warning(
                "https: a NACK of the shared listener names no tenant's secret",
                listeners=list(nack.names),
                error=nack.error[:300],
            )
        return tenants

    def _suspects(self, listener: str, error: str) -> set[str]:
        """The Secrets of `listener` that a NACK with `error` blames: those the error names
        (the Secret, or the host of its filter chain), else those the last build added when
        they are all one tenant's (an innocent tenant is never left out on a guess)."""
        built = self._built.get(listener, {})
        named = {
            secret
            for host, secret in built.items()
            if secret in error or f"'{host}'" in error or f" {host} " in f" {error} "
        }
        if named:
            return named
        before = self._before.get(listener, {})
        added = {secret for host, secret in built.items() if before.get(host) != secret}
        return added if len({tenant_of(s) for s in added}) == 1 else set()
