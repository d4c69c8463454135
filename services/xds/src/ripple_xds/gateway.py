"""The gateway's listeners: what every Envoy of a gateway shares, whatever the tenants.

The plain-HTTP listener routes by scoped RDS: the scope key is the `x-ripple-scope` header,
which the first HTTP filter sets to the request's host without its port, or to the host's
one-label wildcard when no scope of the exact host exists (`scope_key`). Each host's
ScopedRouteConfiguration (written by the translator) points at its tenant's
RouteConfiguration. Adding a host adds one scope; changing a tenant's routes touches only that
tenant's RouteConfiguration (see the scaling rules in DESIGN.md).

The HTTP filter chain holds, in order, the scope-key Lua filter, the CORS, RBAC and local rate
limit filters (empty: the translator configures them per route through
`typed_per_filter_config`), the body-limit Lua filter (`body_limit`: reads a route's metadata)
and the router.
"""

from __future__ import annotations

from typing import Any, Final

from envoy.config.core.v3 import address_pb2, config_source_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.local_ratelimit.v3 import local_rate_limit_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from ripple_common.resources import Resource, TypeUrl
from ripple_xds.body_limit import BODY_LIMIT_FILTER, body_limit_filter_config
from ripple_xds.scope_key import SCOPE_FILTER, SCOPE_KEY_HEADER, scope_filter_config

HTTP_LISTENER: Final = "ripple-http"
SCOPED_ROUTES: Final = "ripple-scopes"
HCM_FILTER: Final = "envoy.filters.network.http_connection_manager"


def http_filters() -> list[tuple[str, Any, bool]]:
    """(name, config, disabled) of the filters after the scope-key filter (none is disabled
    today: Envoy picks a stream's filters before the scope key exists, see `body_limit`)."""
    return [
        ("envoy.filters.http.cors", cors_pb2.Cors(), False),
        ("envoy.filters.http.rbac", rbac_pb2.RBAC(), False),
        (
            "envoy.filters.http.local_ratelimit",
            local_rate_limit_pb2.LocalRateLimit(stat_prefix="ripple_limit_rps"),
            False,
        ),
        (BODY_LIMIT_FILTER, body_limit_filter_config(), False),
        ("envoy.filters.http.router", router_pb2.Router(), False),
    ]


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


def http_connection_manager(*, stat_prefix: str) -> Any:
    manager = hcm_pb2.HttpConnectionManager(
        stat_prefix=stat_prefix,
        scoped_routes=_scoped_routes(),
        # The gateway is the edge: the client address is the peer, x-forwarded-proto is ours.
        merge_slashes=True,
    )
    manager.use_remote_address.value = True
    manager.normalize_path.value = True
    manager.http_filters.add(name=SCOPE_FILTER).typed_config.Pack(scope_filter_config())
    for name, config, disabled in http_filters():
        manager.http_filters.add(name=name, disabled=disabled).typed_config.Pack(config)
    return manager


def http_listener(*, address: str, port: int, name: str = HTTP_LISTENER) -> Resource:
    """The plain-HTTP listener on `address`:`port`, routing every host by scoped RDS."""
    if not 0 < port < 65536:
        raise ValueError(f"listener port {port} out of range")
    listener = listener_pb2.Listener(
        name=name,
        address=address_pb2.Address(
            socket_address=address_pb2.SocketAddress(address=address, port_value=port)
        ),
    )
    chain = listener.filter_chains.add()
    chain.filters.append(listener_components_pb2.Filter(name=HCM_FILTER))
    chain.filters[0].typed_config.Pack(http_connection_manager(stat_prefix=name))
    return Resource(TypeUrl.LISTENER, name, listener.SerializeToString(deterministic=True))
