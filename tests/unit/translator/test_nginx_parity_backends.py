"""Issue #16 point 8, the translation: Services of type ExternalName become STRICT_DNS
clusters resolving the external name (ingress-nginx: test/e2e/servicebackend/
service_externalname.go, internal/ingress/controller/endpointslices.go: the Service port's
numeric targetPort, else its port), and TLS backends (backend-protocol HTTPS/GRPCS,
test/e2e/annotations/backendprotocol.go) send SNI: upstream-vhost's host, else the external
name; a ClusterIP Service's TLS backend sends none (nginx's proxy_ssl_server_name off)."""

from __future__ import annotations

from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

from ripple_common.resources import TypeUrl
from ripple_translator.translate import Reason
from ripple_translator.translate.model import parse_service
from tests.unit.translator import decode, k8s

EXTERNAL = "httpbin.example.org"


def external(
    name: str = "web", *, external_name: str = EXTERNAL, ports: list[k8s.JsonDict] | None = None
) -> k8s.JsonDict:
    service = k8s.service(
        name,
        ports=ports if ports is not None else [{"name": "http", "port": 80, "targetPort": 8080}],
        type_="ExternalName",
    )
    service["spec"]["externalName"] = external_name
    return service


def one_cluster(translation: Any) -> Any:
    (resource,) = decode.of_type(translation, TypeUrl.CLUSTER)
    return decode.decode(resource)


def tls_context(cluster: Any) -> Any:
    assert cluster.transport_socket.name == "envoy.transport_sockets.tls"
    context = tls_pb2.UpstreamTlsContext()
    assert cluster.transport_socket.typed_config.Unpack(context)
    return context


def dns_target(cluster: Any) -> tuple[str, int]:
    (group,) = cluster.load_assignment.endpoints
    (lb,) = group.lb_endpoints
    address = lb.endpoint.address.socket_address
    return address.address, address.port_value


def test_external_name_service_is_a_strict_dns_cluster_on_its_target_port() -> None:
    t = k8s.run(k8s.ingress(), services=[external()])

    assert not t.diagnostics, t.diagnostics
    cluster = one_cluster(t)
    assert cluster.type == cluster_pb2.Cluster.STRICT_DNS
    assert not cluster.HasField("eds_cluster_config")
    assert dns_target(cluster) == (EXTERNAL, 8080)
    assert cluster.respect_dns_ttl
    assert cluster.load_assignment.cluster_name == cluster.name
    assert decode.main_route(t).route.cluster == cluster.name
    assert not cluster.HasField("transport_socket")


def test_external_name_without_ports_uses_the_backend_port() -> None:
    t = k8s.run(k8s.ingress(), services=[external(ports=[], external_name="Api.Example.com.")])

    assert not t.diagnostics, t.diagnostics
    assert dns_target(one_cluster(t)) == ("api.example.com", 80)


def test_external_name_without_a_named_port_is_unresolved() -> None:
    ingress = k8s.ingress(rules=[k8s.rule("shop.example.com", k8s.path(port="https"))])
    t = k8s.run(ingress, services=[external(ports=[])])

    assert [d.reason for d in t.diagnostics] == [Reason.SERVICE_PORT_NOT_FOUND]
    assert not decode.of_type(t, TypeUrl.CLUSTER)


def test_an_external_name_that_is_not_a_dns_name_is_unresolved() -> None:
    t = k8s.run(k8s.ingress(), services=[external(external_name="bad name!")])

    (diagnostic,) = t.diagnostics
    assert diagnostic.reason is Reason.UNSUPPORTED_BACKEND
    assert "not a DNS name" in diagnostic.message
    assert not decode.of_type(t, TypeUrl.CLUSTER)


def test_https_to_an_external_name_sends_the_name_as_sni() -> None:
    ingress = k8s.ingress(annotations=k8s.nginx(backend_protocol="HTTPS"))
    t = k8s.run(ingress, services=[external()])

    assert not t.diagnostics, t.diagnostics
    cluster = one_cluster(t)
    assert tls_context(cluster).sni == EXTERNAL
    assert cluster.name.endswith(f"~tls,sni={EXTERNAL}")


def test_upstream_vhost_is_the_sni_of_a_tls_backend_without_its_port() -> None:
    ingress = k8s.ingress(
        annotations=k8s.nginx(backend_protocol="GRPCS", upstream_vhost="api.internal.example:8443")
    )
    t = k8s.run(ingress, services=[k8s.service()])

    assert not t.diagnostics, t.diagnostics
    context = tls_context(one_cluster(t))
    assert context.sni == "api.internal.example"
    assert list(context.common_tls_context.alpn_protocols) == ["h2"]
    assert decode.main_route(t).route.host_rewrite_literal == "api.internal.example:8443"


def test_https_to_a_cluster_ip_service_sends_no_sni_as_nginx() -> None:
    t = k8s.run(
        k8s.ingress(annotations=k8s.nginx(backend_protocol="HTTPS")), services=[k8s.service()]
    )

    cluster = one_cluster(t)
    assert cluster.type == cluster_pb2.Cluster.EDS
    assert tls_context(cluster).sni == ""


def test_upstream_vhost_without_tls_makes_no_cluster_variant() -> None:
    ingress = k8s.ingress(annotations=k8s.nginx(upstream_vhost="api.example"))
    t = k8s.run(ingress, services=[k8s.service()])

    assert "~" not in one_cluster(t).name


def test_a_service_keeps_its_external_name_and_numeric_target_ports() -> None:
    service = parse_service(
        external(
            ports=[
                {"name": "a", "port": 80, "targetPort": 8080},
                {"name": "b", "port": 81, "targetPort": "web"},
                {"name": "c", "port": 82},
            ]
        )
    )
    assert service.type == "ExternalName"
    assert service.external_name == EXTERNAL
    assert [p.target_port for p in service.ports] == [8080, None, None]
