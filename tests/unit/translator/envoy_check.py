"""Ask a real Envoy whether it accepts translated resources (`envoy --mode validate`).

The resources are put into a static bootstrap: the RouteConfiguration inline in one listener,
the scopes in a second (scoped routes fed by ADS), each ClusterLoadAssignment as a static
cluster's load_assignment, the EDS clusters as they are (ADS), and the Secrets as static secrets
used by a TLS filter chain. Envoy's validate mode builds all of it without binding or
connecting, so this runs in about a second and needs no network.
"""

from __future__ import annotations

import glob
import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2, scoped_route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2, tls_pb2
from google.protobuf import json_format

from ripple_common.resources import Resource, TypeUrl
from ripple_xds.gateway import http_filters


def find_envoy() -> str | None:
    explicit = os.environ.get("RIPPLE_ENVOY_BIN")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    cache = os.environ.get("RIPPLE_CACHE", os.path.expanduser("~/.cache/ripple"))
    found = sorted(glob.glob(f"{cache}/envoy-*-venv/lib/python3*/site-packages/envoy/_bin/envoy"))
    return found[-1] if found and os.access(found[-1], os.X_OK) else None


def self_signed(directory: Path, host: str) -> tuple[str, str] | None:
    """A throwaway certificate and key made with the openssl CLI, or None without it."""
    key, cert = directory / "key.pem", directory / "cert.pem"
    try:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-days", "1", "-subj", f"/CN={host}", "-keyout", str(key),
             "-out", str(cert)],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return cert.read_text(), key.read_text()


def _hcm(name: str, **kwargs: Any) -> Any:
    """The gateway's HTTP filters (as `ripple_xds.gateway` builds them) around `kwargs`."""
    manager = hcm_pb2.HttpConnectionManager(stat_prefix=name, **kwargs)
    for filter_name, config, disabled in http_filters():
        http_filter = manager.http_filters.add(name=filter_name, disabled=disabled)
        http_filter.typed_config.Pack(config)
    return manager


def _listener(name: str, port: int, manager: Any) -> Any:
    listener = listener_pb2.Listener(name=name)
    listener.address.socket_address.address = "127.0.0.1"
    listener.address.socket_address.port_value = port
    chain = listener.filter_chains.add()
    network_filter = chain.filters.add(name="envoy.filters.network.http_connection_manager")
    network_filter.typed_config.Pack(manager)
    return listener


def _base() -> Any:
    """A bootstrap with ADS configured (to an address validate mode never dials)."""
    boot = bootstrap_pb2.Bootstrap()
    boot.node.id = "validate"
    boot.node.cluster = "validate"
    ads = boot.dynamic_resources.ads_config
    ads.api_type = ads.GRPC
    ads.transport_api_version = 2  # V3
    ads.grpc_services.add().envoy_grpc.cluster_name = "xds"
    xds = boot.static_resources.clusters.add(name="xds", type=cluster_pb2.Cluster.STATIC)
    xds.connect_timeout.seconds = 1
    xds.typed_extension_protocol_options[
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    ].Pack(_h2_options())
    lbe = xds.load_assignment.endpoints.add().lb_endpoints.add()
    lbe.endpoint.address.socket_address.address = "127.0.0.1"
    lbe.endpoint.address.socket_address.port_value = 1
    xds.load_assignment.cluster_name = "xds"
    return boot


def bootstrap(resources: Sequence[Resource]) -> Any:
    boot = _base()

    by_type: dict[TypeUrl, list[Resource]] = {}
    for r in resources:
        by_type.setdefault(r.type_url, []).append(r)
    for r in by_type.get(TypeUrl.CLUSTER, []):
        boot.static_resources.clusters.append(cluster_pb2.Cluster.FromString(r.body))
    for i, r in enumerate(by_type.get(TypeUrl.ENDPOINT, [])):
        static = boot.static_resources.clusters.add(
            name=f"static-eds-{i}", type=cluster_pb2.Cluster.STATIC
        )
        static.connect_timeout.seconds = 1
        static.load_assignment.CopyFrom(endpoint_pb2.ClusterLoadAssignment.FromString(r.body))
        static.load_assignment.cluster_name = static.name
    port = 20000
    for r in by_type.get(TypeUrl.ROUTE, []):
        manager = _hcm("routes", route_config=route_pb2.RouteConfiguration.FromString(r.body))
        boot.static_resources.listeners.append(_listener(f"routes-{port}", port, manager))
        port += 1
    route_configs = {
        rc.name: rc
        for rc in (
            route_pb2.RouteConfiguration.FromString(r.body) for r in by_type.get(TypeUrl.ROUTE, [])
        )
    }
    scopes = []
    for r in by_type.get(TypeUrl.SCOPED_ROUTE, []):
        # Inline scopes cannot fetch their RouteConfiguration by name: inline it instead.
        scope = scoped_route_pb2.ScopedRouteConfiguration.FromString(r.body)
        target = route_configs.get(scope.route_configuration_name)
        if target is not None:
            scope.ClearField("route_configuration_name")
            scope.route_configuration.CopyFrom(target)
        scopes.append(scope)
    if scopes:
        manager = _hcm("scopes")
        sr = manager.scoped_routes
        sr.name = "scopes"
        fragment = sr.scope_key_builder.fragments.add()
        fragment.header_value_extractor.name = ":authority"
        fragment.header_value_extractor.element_separator = ":"
        fragment.header_value_extractor.index = 0
        sr.scoped_route_configurations_list.scoped_route_configurations.extend(scopes)
        boot.static_resources.listeners.append(_listener("scopes", port, manager))
        port += 1
    for r in by_type.get(TypeUrl.SECRET, []):
        secret = secret_pb2.Secret.FromString(r.body)
        boot.static_resources.secrets.append(secret)
        context = tls_pb2.DownstreamTlsContext()
        context.common_tls_context.tls_certificate_sds_secret_configs.add(name=secret.name)
        listener = _listener(f"tls-{port}", port, _hcm("tls", route_config={"name": "x"}))
        listener.filter_chains[0].transport_socket.name = "envoy.transport_sockets.tls"
        listener.filter_chains[0].transport_socket.typed_config.Pack(context)
        boot.static_resources.listeners.append(listener)
        port += 1
    return boot


def _h2_options() -> Any:
    from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

    options = http_protocol_options_pb2.HttpProtocolOptions()
    options.explicit_http_config.http2_protocol_options.SetInParent()
    return options


def validate(
    envoy: str, resources: Sequence[Resource], *, runtime: Mapping[str, Any] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `envoy --mode validate` on a bootstrap holding `resources`, with the static runtime
    keys `runtime` (e.g. ``re2.max_program_size.error_level``)."""
    boot = bootstrap(resources)
    if runtime:
        boot.layered_runtime.layers.add(name="static").static_layer.update(dict(runtime))
    config = json_format.MessageToJson(boot)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bootstrap.json"
        path.write_text(config)
        return subprocess.run(
            [envoy, "--mode", "validate", "-c", str(path), "--use-dynamic-base-id",
             "-l", "error", "--concurrency", "1"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
