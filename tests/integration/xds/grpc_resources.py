"""Resources a proxyless grpc client (grpcio's built-in xDS client, `xds:///<name>`) needs:
an API listener named after the target whose HttpConnectionManager takes its routes by RDS,
a RouteConfiguration whose virtual host matches the target, an EDS cluster and its endpoints
in a locality with a weight (grpc ignores endpoints without one)."""

from __future__ import annotations

import json
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from ripple_common.resources import Resource, TypeUrl
from ripple_xds.gateway import ads_config_source


def _address(port: int) -> Any:
    return address_pb2.Address(
        socket_address=address_pb2.SocketAddress(address="127.0.0.1", port_value=port)
    )


def api_listener(target: str, *, route_config: str) -> Resource:
    hcm = hcm_pb2.HttpConnectionManager(
        stat_prefix=target,
        rds=hcm_pb2.Rds(config_source=ads_config_source(), route_config_name=route_config),
        http_filters=[hcm_pb2.HttpFilter(name="envoy.filters.http.router")],
    )
    hcm.http_filters[0].typed_config.Pack(router_pb2.Router())
    message = listener_pb2.Listener(name=target)
    message.api_listener.api_listener.Pack(hcm)
    return Resource(TypeUrl.LISTENER, target, message.SerializeToString())


def route_config(name: str, *, target: str, cluster: str) -> Resource:
    message = route_pb2.RouteConfiguration(
        name=name,
        virtual_hosts=[
            route_components_pb2.VirtualHost(
                name=target,
                domains=[target],
                routes=[
                    route_components_pb2.Route(
                        match=route_components_pb2.RouteMatch(prefix=""),
                        route=route_components_pb2.RouteAction(cluster=cluster),
                    )
                ],
            )
        ],
    )
    return Resource(TypeUrl.ROUTE, name, message.SerializeToString())


def eds_cluster(name: str) -> Resource:
    message = cluster_pb2.Cluster(
        name=name,
        type=cluster_pb2.Cluster.EDS,
        eds_cluster_config=cluster_pb2.Cluster.EdsClusterConfig(eds_config=ads_config_source()),
        lb_policy=cluster_pb2.Cluster.ROUND_ROBIN,
    )
    return Resource(TypeUrl.CLUSTER, name, message.SerializeToString())


def endpoints(cluster: str, *, port: int, zone: str = "loopback") -> Resource:
    locality = endpoint_components_pb2.LocalityLbEndpoints(
        locality=base_pb2.Locality(region="ripple", zone=zone),
        lb_endpoints=[
            endpoint_components_pb2.LbEndpoint(
                endpoint=endpoint_components_pb2.Endpoint(address=_address(port))
            )
        ],
    )
    locality.load_balancing_weight.value = 1
    message = endpoint_pb2.ClusterLoadAssignment(cluster_name=cluster, endpoints=[locality])
    return Resource(TypeUrl.ENDPOINT, cluster, message.SerializeToString())


def resources(target: str, *, port: int) -> list[Resource]:
    """Everything `xds:///<target>` resolves through, to a server on 127.0.0.1:`port`."""
    cluster = f"{target}-cluster"
    return [
        api_listener(target, route_config=f"{target}-routes"),
        route_config(f"{target}-routes", target=target, cluster=cluster),
        eds_cluster(cluster),
        endpoints(cluster, port=port),
    ]


def bootstrap(*, xds_port: int, node_id: str) -> str:
    """GRPC_XDS_BOOTSTRAP_CONFIG for a client of the xds server on 127.0.0.1:`xds_port`."""
    return json.dumps(
        {
            "xds_servers": [
                {
                    "server_uri": f"127.0.0.1:{xds_port}",
                    "channel_creds": [{"type": "insecure"}],
                    "server_features": ["xds_v3"],
                }
            ],
            "node": {"id": node_id, "cluster": "ripple-grpc-test", "locality": {"zone": "z"}},
        }
    )
