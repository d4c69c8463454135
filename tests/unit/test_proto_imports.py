"""Guard: xds-protos overwrites opentelemetry/proto and google/rpc with old copies. `./dev sync`
reinstalls the real ones; if that step is lost, these imports fail."""

from __future__ import annotations


def test_otlp_exporter_and_envoy_api_import_side_by_side() -> None:
    from envoy.config.route.v3 import scoped_route_pb2
    from envoy.service.discovery.v3 import discovery_pb2
    from google.rpc import status_pb2
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope

    assert OTLPSpanExporter is not None
    assert InstrumentationScope().DESCRIPTOR.name == "InstrumentationScope"
    req = discovery_pb2.DeltaDiscoveryRequest(error_detail=status_pb2.Status(code=3))
    assert req.error_detail.code == 3
    assert scoped_route_pb2.ScopedRouteConfiguration(name="s").name == "s"
