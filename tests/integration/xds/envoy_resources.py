"""Envoy resources and bootstrap for the xds integration tests: a listener whose HTTP
connection manager routes by scoped RDS (scope key = :authority without the port), one scope
per host pointing at a RouteConfiguration, an EDS cluster and its endpoints."""

# ruff: noqa: E501  (the bootstrap YAML holds long type URLs)

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, config_source_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2, scoped_route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.type.matcher.v3 import regex_pb2

from ripple_common.resources import Resource, TypeUrl

HCM = hcm_pb2.HttpConnectionManager
BACKEND_CLUSTER = "backend"


def _ads() -> Any:
    return config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(),
        resource_api_version=config_source_pb2.V3,
    )


def _address(port: int) -> Any:
    return address_pb2.Address(
        socket_address=address_pb2.SocketAddress(address="127.0.0.1", port_value=port)
    )


def listener(name: str, *, port: int, stat_prefix: str = "ingress") -> Resource:
    hcm = HCM(
        stat_prefix=stat_prefix,
        scoped_routes=hcm_pb2.ScopedRoutes(
            name="scopes",
            scope_key_builder=hcm_pb2.ScopedRoutes.ScopeKeyBuilder(
                fragments=[
                    hcm_pb2.ScopedRoutes.ScopeKeyBuilder.FragmentBuilder(
                        header_value_extractor=hcm_pb2.ScopedRoutes.ScopeKeyBuilder.FragmentBuilder.HeaderValueExtractor(
                            name=":authority", element_separator=":", index=0
                        )
                    )
                ]
            ),
            rds_config_source=_ads(),
            scoped_rds=hcm_pb2.ScopedRds(scoped_rds_config_source=_ads()),
        ),
        http_filters=[hcm_pb2.HttpFilter(name="envoy.filters.http.router")],
    )
    hcm.http_filters[0].typed_config.Pack(router_pb2.Router())
    chain = listener_components_pb2.FilterChain(
        filters=[
            listener_components_pb2.Filter(name="envoy.filters.network.http_connection_manager")
        ]
    )
    chain.filters[0].typed_config.Pack(hcm)
    message = listener_pb2.Listener(name=name, address=_address(port), filter_chains=[chain])
    return Resource(TypeUrl.LISTENER, name, message.SerializeToString())


def scope(host: str, *, route_config: str) -> Resource:
    message = scoped_route_pb2.ScopedRouteConfiguration(
        name=f"scope-{host}",
        route_configuration_name=route_config,
        key=scoped_route_pb2.ScopedRouteConfiguration.Key(
            fragments=[scoped_route_pb2.ScopedRouteConfiguration.Key.Fragment(string_key=host)]
        ),
    )
    return Resource(TypeUrl.SCOPED_ROUTE, message.name, message.SerializeToString())


def route_config(name: str, *, host: str, cluster: str, bad_regex: bool = False) -> Resource:
    """All paths of `host` to `cluster`. With `bad_regex`, a route whose regex does not
    compile: valid protobuf that Envoy rejects (NACK)."""
    routes = []
    if bad_regex:
        routes.append(
            route_components_pb2.Route(
                match=route_components_pb2.RouteMatch(
                    safe_regex=regex_pb2.RegexMatcher(regex="(unclosed")
                ),
                route=route_components_pb2.RouteAction(cluster=cluster),
            )
        )
    routes.append(
        route_components_pb2.Route(
            match=route_components_pb2.RouteMatch(prefix="/"),
            route=route_components_pb2.RouteAction(cluster=cluster),
        )
    )
    message = route_pb2.RouteConfiguration(
        name=name,
        virtual_hosts=[route_components_pb2.VirtualHost(name=host, domains=["*"], routes=routes)],
    )
    return Resource(TypeUrl.ROUTE, name, message.SerializeToString())


def eds_cluster(name: str, *, connect_timeout_ms: int = 1000) -> Resource:
    message = cluster_pb2.Cluster(
        name=name,
        type=cluster_pb2.Cluster.EDS,
        eds_cluster_config=cluster_pb2.Cluster.EdsClusterConfig(eds_config=_ads()),
    )
    message.connect_timeout.FromMilliseconds(connect_timeout_ms)
    return Resource(TypeUrl.CLUSTER, name, message.SerializeToString())


def endpoints(cluster: str, *, port: int) -> Resource:
    message = endpoint_pb2.ClusterLoadAssignment(
        cluster_name=cluster,
        endpoints=[
            endpoint_components_pb2.LocalityLbEndpoints(
                lb_endpoints=[
                    endpoint_components_pb2.LbEndpoint(
                        endpoint=endpoint_components_pb2.Endpoint(address=_address(port))
                    )
                ]
            )
        ],
    )
    return Resource(TypeUrl.ENDPOINT, cluster, message.SerializeToString())


BOOTSTRAP = """
node: {{id: {node_id}, cluster: {node_cluster}}}
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin_port}}}}}
dynamic_resources:
  ads_config:
    api_type: {api_type}
    transport_api_version: V3
    set_node_on_first_message_only: true
    grpc_services:
    - envoy_grpc:
        cluster_name: xds
        retry_policy:
          retry_back_off: {{base_interval: 0.1s, max_interval: 1s}}
  lds_config: {{ads: {{}}, resource_api_version: V3}}
  cds_config: {{ads: {{}}, resource_api_version: V3}}
static_resources:
  clusters:
  - name: xds
    type: STATIC
    connect_timeout: 1s
{xds_transport}    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {{}}
    load_assignment:
      cluster_name: xds
      endpoints:
      - lb_endpoints:
{xds_endpoints}
overload_manager:
  resource_monitors:
  - name: envoy.resource_monitors.global_downstream_max_connections
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig
      max_active_downstream_connections: 1000
"""


XDS_ENDPOINT = """\
        - endpoint:
            address:
              socket_address: {{address: 127.0.0.1, port_value: {port}}}"""


def bootstrap(
    *,
    node_id: str,
    admin_port: int,
    xds_port: int,
    api_type: str,
    more_xds_ports: tuple[int, ...] = (),
    node_cluster: str = "ripple-test",
    xds_tls: XdsTls | None = None,
) -> str:
    """An Envoy bootstrap doing ADS (`api_type` GRPC or DELTA_GRPC) to the xds server on
    127.0.0.1:`xds_port`, and to `more_xds_ports` (replicas: the stream goes to one of them
    and moves to another when it breaks); with `xds_tls`, over mTLS."""
    endpoints = "\n".join(XDS_ENDPOINT.format(port=p) for p in (xds_port, *more_xds_ports))
    return BOOTSTRAP.format(
        node_id=node_id,
        node_cluster=node_cluster,
        admin_port=admin_port,
        xds_endpoints=endpoints,
        api_type=api_type,
        xds_transport=XDS_TLS.format(tls=xds_tls) if xds_tls is not None else "",
    )


@dataclass(frozen=True, slots=True)
class XdsTls:
    """PEM files of Envoy's side of an mTLS connection to the xds server: its client
    certificate and key, the CA that signed the server's certificate, the server name."""

    cert: Path
    key: Path
    ca: Path
    server_name: str


XDS_TLS = """\
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: {tls.server_name}
        common_tls_context:
          alpn_protocols: [h2]
          tls_certificates:
          - certificate_chain: {{filename: {tls.cert}}}
            private_key: {{filename: {tls.key}}}
          validation_context:
            trusted_ca: {{filename: {tls.ca}}}
            match_typed_subject_alt_names:
            - san_type: DNS
              matcher: {{exact: {tls.server_name}}}
"""
