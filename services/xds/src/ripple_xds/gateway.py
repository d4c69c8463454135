"""The gateway's listeners: what every Envoy of a gateway shares, whatever the tenants.

The plain-HTTP listener routes by scoped RDS: the scope key is the `SCOPE_KEY_HEADER` header,
which the first HTTP filter sets to the request's host without its port, or to the host's
one-label wildcard when no scope of the exact host exists (`scope_key`). Each host's
ScopedRouteConfiguration (written by the translator) points at its tenant's
RouteConfiguration. Adding a host adds one scope; changing a tenant's routes touches only that
tenant's RouteConfiguration (see the scaling rules in DESIGN.md).

The HTTP filter chain holds, in order (the names the translator's routes refer to are
`ripple_common.gateway_contract`'s), the scope-key Lua filter and its catch-all twin (a host
without a scope: the gateway's default backend), the custom_response filter
(empty: custom-http-errors routes give it the codes to re-route to their error page), the CORS,
RBAC and local rate limit filters (empty: the translator configures them per route through
`typed_per_filter_config`), the body-limit Lua filter (`body_limit`: reads a route's metadata),
the header-mutation filter writing X-Forwarded-For (`ClientAddress`), the stateful-session
filter (empty: affinity-mode persistent routes give it their cookie) and the router.

The client address (`ClientAddress`, ingress-nginx's ConfigMap keys `use-forwarded-headers`,
`forwarded-for-header`, `compute-full-forwarded-for`, `use-proxy-protocol`): what RBAC
(allow/deny source ranges, `remote_ip`) and the local rate limits (`remote_address`) see.
By default the peer of the connection (a client can claim nothing); with forwarded headers the
`trusted_hops`-th address from the right of X-Forwarded-For (Envoy `xff_num_trusted_hops`:
the load balancers in front of the gateway append one address each), or the value of a
custom header (`original_ip_detection_extensions` custom_header); with the PROXY protocol on
the listeners, the source address its header carries. Upstream, X-Forwarded-For is the
client address alone (nginx's default), or the incoming list plus the peer with
`compute_full_forwarded_for`; the incoming value travels as X-Original-Forwarded-For.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from envoy.config.common.mutation_rules.v3 import mutation_rules_pb2
from envoy.config.core.v3 import address_pb2, base_pb2, config_source_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.custom_response.v3 import custom_response_pb2
from envoy.extensions.filters.http.header_mutation.v3 import header_mutation_pb2
from envoy.extensions.filters.http.local_ratelimit.v3 import local_rate_limit_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.http.stateful_session.v3 import stateful_session_pb2
from envoy.extensions.filters.listener.proxy_protocol.v3 import proxy_protocol_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.http.original_ip_detection.custom_header.v3 import custom_header_pb2

from ripple_common.gateway_contract import (
    BODY_LIMIT_FILTER,
    CORS_FILTER,
    CUSTOM_RESPONSE_FILTER,
    LOCAL_RATELIMIT_FILTER,
    RATE_LIMIT_STAT_PREFIX,
    RBAC_FILTER,
    ROUTER_FILTER,
    SCOPE_FILTER,
    SCOPE_KEY_HEADER,
    STATEFUL_SESSION_FILTER,
)
from ripple_common.resources import Resource, TypeUrl
from ripple_xds.body_limit import body_limit_filter_config
from ripple_xds.scope_key import catch_all_filter_config, scope_filter_config

HTTP_LISTENER: Final = "ripple-http"
SCOPED_ROUTES: Final = "ripple-scopes"
HCM_FILTER: Final = "envoy.filters.network.http_connection_manager"
PROXY_PROTOCOL_FILTER: Final = "envoy.filters.listener.proxy_protocol"
HEADER_MUTATION_FILTER: Final = "envoy.filters.http.header_mutation"
CUSTOM_HEADER_DETECTION: Final = "envoy.http.original_ip_detection.custom_header"
XFF: Final = "x-forwarded-for"
ORIGINAL_XFF: Final = "x-original-forwarded-for"
XFH: Final = "x-forwarded-host"
ORIGINAL_XFH: Final = "x-original-forwarded-host"
MAX_TRUSTED_HOPS: Final = 16
_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")  # an HTTP header name (RFC 9110 token)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientAddress:
    """How the gateway finds the client's address (see the module doc)."""

    use_forwarded_headers: bool = False
    forwarded_for_header: str = "X-Forwarded-For"
    trusted_hops: int = 1
    compute_full_forwarded_for: bool = False
    proxy_protocol: bool = False

    def __post_init__(self) -> None:
        if not _TOKEN.match(self.forwarded_for_header):
            raise ValueError(
                f"forwarded_for_header {self.forwarded_for_header!r} is not an HTTP header name"
            )
        if not 1 <= self.trusted_hops <= MAX_TRUSTED_HOPS:
            raise ValueError(f"trusted_hops must be in 1..{MAX_TRUSTED_HOPS}")

    @property
    def custom_header(self) -> bool:
        """Forwarded headers trusted, from another header than X-Forwarded-For."""
        return self.use_forwarded_headers and self.forwarded_for_header.lower() != XFF


EDGE: Final = ClientAddress()  # the default: the gateway is the edge, the peer is the client


def http_filters(client: ClientAddress = EDGE) -> list[tuple[str, Any, bool]]:
    """(name, config, disabled) of the filters after the scope-key filter (none is disabled
    today: Envoy picks a stream's filters before the scope key exists, see `body_limit`)."""
    return [
        # custom-http-errors: routes give it the codes to re-route to their error page.
        (CUSTOM_RESPONSE_FILTER, custom_response_pb2.CustomResponse(), False),
        (CORS_FILTER, cors_pb2.Cors(), False),
        (RBAC_FILTER, rbac_pb2.RBAC(), False),
        (
            LOCAL_RATELIMIT_FILTER,
            local_rate_limit_pb2.LocalRateLimit(stat_prefix=RATE_LIMIT_STAT_PREFIX),
            False,
        ),
        (BODY_LIMIT_FILTER, body_limit_filter_config(), False),
        (HEADER_MUTATION_FILTER, forwarded_for_mutation(client), False),
        # affinity-mode persistent: routes give it a cookie-based session state.
        (STATEFUL_SESSION_FILTER, stateful_session_pb2.StatefulSession(), False),
        (ROUTER_FILTER, router_pb2.Router(), False),
    ]


def forwarded_for_mutation(client: ClientAddress) -> Any:
    """X-Original-Forwarded-For = the incoming forwarded-for header (when present), then
    X-Forwarded-For = the client address (or, with compute_full_forwarded_for, the incoming
    list plus the peer: what Envoy's own append gives, which the HCM skips); without
    use_forwarded_headers, X-Forwarded-Host = the Host (the incoming one kept as
    X-Original-Forwarded-Host); X-Forwarded-Scheme = X-Forwarded-Proto. A header whose
    value would be empty is not added."""
    option = base_pb2.HeaderValueOption
    incoming = f"%REQ({client.forwarded_for_header})%"
    if client.compute_full_forwarded_for:
        xff = option(
            header=base_pb2.HeaderValue(
                key=XFF, value="%DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%"
            ),
            append_action=option.APPEND_IF_EXISTS_OR_ADD,
        )
    else:
        xff = option(
            header=base_pb2.HeaderValue(key=XFF, value="%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"),
            append_action=option.OVERWRITE_IF_EXISTS_OR_ADD,
        )

    def overwrite(key: str, value: str) -> Any:
        return mutation_rules_pb2.HeaderMutation(
            append=option(
                header=base_pb2.HeaderValue(key=key, value=value),
                append_action=option.OVERWRITE_IF_EXISTS_OR_ADD,
            )
        )

    mutations = [overwrite(ORIGINAL_XFF, incoming), mutation_rules_pb2.HeaderMutation(append=xff)]
    if not client.use_forwarded_headers:
        # The client's X-Forwarded-Host is not trusted either (nginx: X-Original-Forwarded-Host
        # keeps it, X-Forwarded-Host is the Host).
        mutations.append(overwrite(ORIGINAL_XFH, "%REQ(x-forwarded-host)%"))
        mutations.append(overwrite(XFH, "%REQ(:authority)%"))
    # X-Forwarded-Scheme is X-Forwarded-Proto (Envoy's own, or a trusted proxy's).
    mutations.append(overwrite("x-forwarded-scheme", "%REQ(x-forwarded-proto)%"))
    return header_mutation_pb2.HeaderMutation(
        mutations=header_mutation_pb2.Mutations(request_mutations=mutations)
    )


def ads_config_source() -> Any:
    """A config source: this ADS stream."""
    return config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(),
        resource_api_version=config_source_pb2.V3,
    )


def _scoped_routes() -> Any:
    builder = hcm_pb2.ScopedRoutes.ScopeKeyBuilder
    fragment = builder.FragmentBuilder(
        header_value_extractor=builder.FragmentBuilder.HeaderValueExtractor(
            name=SCOPE_KEY_HEADER, element_separator=":", index=0
        )
    )
    return hcm_pb2.ScopedRoutes(
        name=SCOPED_ROUTES,
        scope_key_builder=builder(fragments=[fragment]),
        rds_config_source=ads_config_source(),
        scoped_rds=hcm_pb2.ScopedRds(scoped_rds_config_source=ads_config_source()),
    )


def http_connection_manager(*, stat_prefix: str, client: ClientAddress = EDGE) -> Any:
    manager = hcm_pb2.HttpConnectionManager(
        stat_prefix=stat_prefix,
        scoped_routes=_scoped_routes(),
        merge_slashes=True,
        # X-Forwarded-For is written by the header-mutation filter (`forwarded_for_mutation`).
        skip_xff_append=True,
        append_x_forwarded_port=True,
        # ingress-nginx passes the client's X-Request-ID on ($req_id), making one only when
        # it has none.
        preserve_external_request_id=True,
    )
    manager.normalize_path.value = True
    if client.custom_header:
        # The client address is the custom header's (Envoy: these extensions exclude
        # use_remote_address); the peer when the header is missing or not an address.
        detection = manager.original_ip_detection_extensions.add(name=CUSTOM_HEADER_DETECTION)
        detection.typed_config.Pack(
            custom_header_pb2.CustomHeaderConfig(header_name=client.forwarded_for_header.lower())
        )
    else:
        # The gateway is the edge: the client address is the peer (or, trusting forwarded
        # headers, the trusted_hops-th address from the right of X-Forwarded-For);
        # x-forwarded-proto is ours.
        manager.use_remote_address.value = True
        if client.use_forwarded_headers:
            manager.xff_num_trusted_hops = client.trusted_hops
    manager.http_filters.add(name=SCOPE_FILTER).typed_config.Pack(scope_filter_config())
    # A host without a scope: the catch-all key (the gateway's default backend, else 404).
    manager.http_filters.add(name=SCOPE_FILTER).typed_config.Pack(catch_all_filter_config())
    for name, config, disabled in http_filters(client):
        manager.http_filters.add(name=name, disabled=disabled).typed_config.Pack(config)
    return manager


def add_proxy_protocol(listener: Any, client: ClientAddress) -> None:
    """The PROXY protocol (v1 and v2) listener filter, first, when `client` asks for it: every
    connection must then start with a PROXY header (as nginx's `listen ... proxy_protocol`)."""
    if client.proxy_protocol:
        proxy = listener.listener_filters.add(name=PROXY_PROTOCOL_FILTER)
        proxy.typed_config.Pack(proxy_protocol_pb2.ProxyProtocol())


def http_listener(
    *,
    address: str,
    port: int,
    name: str = HTTP_LISTENER,
    client: ClientAddress = EDGE,
) -> Resource:
    """The plain-HTTP listener on `address`:`port`, routing every host by scoped RDS."""
    if not 0 < port < 65536:
        raise ValueError(f"listener port {port} out of range")
    listener = listener_pb2.Listener(
        name=name,
        address=address_pb2.Address(
            socket_address=address_pb2.SocketAddress(address=address, port_value=port)
        ),
    )
    add_proxy_protocol(listener, client)
    chain = listener.filter_chains.add()
    chain.filters.append(listener_components_pb2.Filter(name=HCM_FILTER))
    chain.filters[0].typed_config.Pack(http_connection_manager(stat_prefix=name, client=client))
    return Resource(TypeUrl.LISTENER, name, listener.SerializeToString(deterministic=True))
