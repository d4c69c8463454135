"""Issue #16 points 4, 5 and 8 on the xds side, without network: the default certificate and
the HTTPS listener's default filter chain, the client-address settings in the gateway's
listeners, and the ExternalName policy. Expected answers from ingress-nginx's e2e tests:
test/e2e/defaultbackend/ssl.go and test/e2e/ssl/secret_update.go (the fake certificate),
test/e2e/settings/{forwarded_headers,proxy_protocol}.go, test/e2e/servicebackend/
service_externalname.go (and endpointslices.go refusing localhost)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.http.header_mutation.v3 import header_mutation_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2, tls_pb2
from pydantic import ValidationError

from ripple_common.resources import Resource, TypeUrl
from ripple_xds.default_certificate import (
    DEFAULT_CERTIFICATE,
    DefaultCertificateError,
    generate_fake,
    load_default_secret,
)
from ripple_xds.external_names import ExternalNameGate, name_problem
from ripple_xds.gateway import ClientAddress, http_listener
from ripple_xds.https import HTTPS_LISTENER, HttpsFeed, HttpsSettings, https_listener
from ripple_xds.identity import Gateway
from ripple_xds.secrets import SecretOpener
from ripple_xds.settings import XdsSettings
from ripple_xds.snapshot import SnapshotCache
from tests.unit.xds import certs

# --- point 4: the default certificate ---------------------------------------------------------


def test_the_generated_certificate_is_named_as_ingress_nginx_fake_certificate() -> None:
    certificate, key = generate_fake()
    leaf = x509.load_pem_x509_certificate(certificate)
    cn = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    org = leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
    issuer = leaf.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert cn == issuer == "Kubernetes Ingress Controller Fake Certificate"
    assert org == "Acme Co"
    assert san.get_values_for_type(x509.DNSName) == ["ingress.local"]
    assert b"PRIVATE KEY" in key


def test_without_files_a_fake_certificate_is_generated_as_a_secret_resource() -> None:
    resource = load_default_secret(None, None)
    assert (resource.type_url, resource.name) == (TypeUrl.SECRET, DEFAULT_CERTIFICATE)
    secret = secret_pb2.Secret.FromString(resource.body)
    assert secret.tls_certificate.private_key.inline_bytes.startswith(b"-----BEGIN")


def test_configured_files_are_the_default_certificate(tmp_path: Path) -> None:
    pem = certs.self_signed("default.example.com")
    (tmp_path / "tls.crt").write_bytes(pem.certificate)
    (tmp_path / "tls.key").write_bytes(pem.private_key)
    resource = load_default_secret(tmp_path / "tls.crt", tmp_path / "tls.key")
    secret = secret_pb2.Secret.FromString(resource.body)
    assert secret.tls_certificate.certificate_chain.inline_bytes == pem.certificate


def test_a_configured_pair_envoy_would_refuse_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "tls.crt").write_bytes(certs.self_signed("a.example").certificate)
    (tmp_path / "tls.key").write_bytes(certs.self_signed("a.example").private_key)
    with pytest.raises(DefaultCertificateError, match="does not match"):
        load_default_secret(tmp_path / "tls.crt", tmp_path / "tls.key")
    with pytest.raises(DefaultCertificateError, match="cannot read"):
        load_default_secret(tmp_path / "missing.crt", tmp_path / "tls.key")


def test_default_certificate_files_go_together() -> None:
    with pytest.raises(ValidationError, match="go together"):
        XdsSettings(default_certificate_file=Path("/x.crt"))


def _listener(resource: Resource | None) -> Any:
    assert resource is not None
    return listener_pb2.Listener.FromString(resource.body)


def _sds_name(chain: Any) -> str:
    context = tls_pb2.DownstreamTlsContext()
    assert chain.transport_socket.typed_config.Unpack(context)
    (sds,) = context.common_tls_context.tls_certificate_sds_secret_configs
    assert sds.sds_config.HasField("ads")
    return str(sds.name)


def test_with_a_default_certificate_the_https_listener_exists_without_any_tls_host() -> None:
    assert https_listener(address="127.0.0.1", port=10443, bound={}) is None  # as before
    listener = _listener(
        https_listener(
            address="127.0.0.1", port=10443, bound={}, default_secret=DEFAULT_CERTIFICATE
        )
    )
    assert not listener.filter_chains
    chain = listener.default_filter_chain
    assert _sds_name(chain) == DEFAULT_CERTIFICATE  # by SDS: never inline in a listener
    assert chain.filters[0].name == "envoy.filters.network.http_connection_manager"


def test_bound_hosts_keep_their_chains_beside_the_default_one() -> None:
    listener = _listener(
        https_listener(
            address="127.0.0.1",
            port=10443,
            bound={"a.example.com": "t1/ns/a"},
            default_secret=DEFAULT_CERTIFICATE,
        )
    )
    assert [(c.name, _sds_name(c)) for c in listener.filter_chains] == [
        ("a.example.com", "t1/ns/a")
    ]
    assert _sds_name(listener.default_filter_chain) == DEFAULT_CERTIFICATE


def test_the_feed_serves_the_default_certificate_and_listener_from_the_start() -> None:
    cache = SnapshotCache()
    secret = load_default_secret(None, None)
    feed = HttpsFeed(
        cache,
        HttpsSettings(address="127.0.0.1", port=10443, default_certificate=secret),
        schedule=lambda callback: callback(),
        gateways=(Gateway(name="blue", tenants=frozenset({"t1"})), Gateway(name="")),
    )
    try:
        entry = cache.get(TypeUrl.SECRET, DEFAULT_CERTIFICATE)
        assert entry is not None
        assert entry.resource == secret
        for name in ("ripple-https.blue", HTTPS_LISTENER):
            entry = cache.get(TypeUrl.LISTENER, name)
            assert entry is not None
            assert _sds_name(_listener(entry.resource).default_filter_chain) == DEFAULT_CERTIFICATE
        # Every gateway may be sent it (no tenant), like the shared listeners.
        assert Gateway(name="blue", tenants=frozenset({"t1"})).allows(DEFAULT_CERTIFICATE)
    finally:
        feed.close()


# --- point 5: the client address ----------------------------------------------------------


def _manager(listener: Any, index: int = 0) -> Any:
    manager = hcm_pb2.HttpConnectionManager()
    assert listener.filter_chains[index].filters[0].typed_config.Unpack(manager)
    return manager


def _http(client: ClientAddress) -> tuple[Any, Any]:
    listener = _listener(http_listener(address="127.0.0.1", port=10080, client=client))
    return listener, _manager(listener)


def _xff_mutation(manager: Any) -> list[tuple[str, str, int]]:
    (mutation,) = [f for f in manager.http_filters if f.name.endswith("header_mutation")]
    config = header_mutation_pb2.HeaderMutation()
    assert mutation.typed_config.Unpack(config)
    return [
        (m.append.header.key, m.append.header.value, m.append.append_action)
        for m in config.mutations.request_mutations
    ]


def test_by_default_the_client_is_the_peer_and_x_forwarded_for_is_replaced() -> None:
    listener, manager = _http(ClientAddress())
    assert manager.use_remote_address.value is True
    assert manager.xff_num_trusted_hops == 0
    assert not manager.original_ip_detection_extensions
    assert manager.skip_xff_append
    assert manager.append_x_forwarded_port
    assert not listener.listener_filters
    overwrite = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
    assert _xff_mutation(manager) == [
        ("x-original-forwarded-for", "%REQ(X-Forwarded-For)%", overwrite),
        ("x-forwarded-for", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", overwrite),
        ("x-original-forwarded-host", "%REQ(x-forwarded-host)%", overwrite),
        ("x-forwarded-host", "%REQ(:authority)%", overwrite),
        ("x-forwarded-scheme", "%REQ(x-forwarded-proto)%", overwrite),
    ]


def test_use_forwarded_headers_trusts_that_many_hops_of_x_forwarded_for() -> None:
    _, manager = _http(ClientAddress(use_forwarded_headers=True, trusted_hops=2))
    assert manager.use_remote_address.value is True
    assert manager.xff_num_trusted_hops == 2
    # Trusted: the proxy's X-Forwarded-Host passes as it is.
    assert [key for key, _, _ in _xff_mutation(manager)] == [
        "x-original-forwarded-for",
        "x-forwarded-for",
        "x-forwarded-scheme",
    ]


def test_a_custom_forwarded_for_header_is_an_original_ip_detection_extension() -> None:
    _, manager = _http(ClientAddress(use_forwarded_headers=True, forwarded_for_header="X-Real-IP"))
    (extension,) = manager.original_ip_detection_extensions
    assert extension.name == "envoy.http.original_ip_detection.custom_header"
    assert b"x-real-ip" in extension.typed_config.value
    assert not manager.HasField("use_remote_address")  # Envoy refuses both together
    assert manager.xff_num_trusted_hops == 0
    assert _xff_mutation(manager)[0][1] == "%REQ(X-Real-IP)%"


def test_compute_full_forwarded_for_appends_the_peer() -> None:
    _, manager = _http(ClientAddress(compute_full_forwarded_for=True))
    assert _xff_mutation(manager)[1] == (
        "x-forwarded-for",
        "%DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%",
        base_pb2.HeaderValueOption.APPEND_IF_EXISTS_OR_ADD,
    )


def test_proxy_protocol_is_the_first_listener_filter_of_both_listeners() -> None:
    client = ClientAddress(proxy_protocol=True)
    listener, _ = _http(client)
    assert [f.name for f in listener.listener_filters] == ["envoy.filters.listener.proxy_protocol"]
    https = _listener(
        https_listener(
            address="127.0.0.1",
            port=10443,
            bound={},
            default_secret=DEFAULT_CERTIFICATE,
            client=client,
        )
    )
    assert [f.name for f in https.listener_filters] == [
        "envoy.filters.listener.proxy_protocol",
        "envoy.filters.listener.tls_inspector",
    ]


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"forwarded_for_header": "X Bad"}, "not an HTTP header name"),
        ({"trusted_hops": 0}, "1..16"),
        ({"trusted_hops": 17}, "1..16"),
    ],
)
def test_bad_client_address_settings_are_refused(settings: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        XdsSettings(**settings)
    with pytest.raises(ValueError, match=match):
        ClientAddress(**settings)


# --- point 8: ExternalName Services --------------------------------------------------------


def _dns_cluster(name: str, target: str, kind: int = cluster_pb2.Cluster.STRICT_DNS) -> Resource:
    cluster = cluster_pb2.Cluster(name=name, type=kind)
    address = cluster.load_assignment.endpoints.add().lb_endpoints.add().endpoint.address
    address.socket_address.address = target
    address.socket_address.port_value = 443
    return Resource(TypeUrl.CLUSTER, name, cluster.SerializeToString())


def test_external_name_clusters_are_off_unless_the_gateway_opts_in() -> None:
    cluster = _dns_cluster("t1/ns/ext:443", "api.example.com")
    eds = Resource(
        TypeUrl.CLUSTER,
        "t1/ns/web:80",
        cluster_pb2.Cluster(name="t1/ns/web:80", type=cluster_pb2.Cluster.EDS).SerializeToString(),
    )
    gate = ExternalNameGate(enabled=False)
    assert gate(cluster) is None
    assert gate(eds) is eds
    assert gate.stats.refused == {"t1": 1}
    assert ExternalNameGate(enabled=True)(cluster) is cluster
    logical = _dns_cluster("t1/ns/ext:443", "api.example.com", cluster_pb2.Cluster.LOGICAL_DNS)
    assert gate(logical) is None


@pytest.mark.parametrize(
    "target",
    [
        "localhost",
        "LOCALHOST.",
        "127.0.0.1",
        "169.254.169.254",
        "::1",
        "0.0.0.0",
        "kubernetes.default.svc",
        "redis.ripple.svc.cluster.local",
        "db.internal",
    ],
)
def test_internal_names_are_refused_even_when_enabled(target: str) -> None:
    denied = XdsSettings().external_name_denied_suffixes
    assert name_problem(target, denied) is not None
    gate = ExternalNameGate(enabled=True, denied_suffixes=denied)
    assert gate(_dns_cluster("t1/ns/ext:443", target)) is None


def test_public_names_pass_and_the_opener_routes_clusters_through_the_gate() -> None:
    denied = XdsSettings().external_name_denied_suffixes
    assert name_problem("api.example.com", denied) is None
    assert name_problem("svc.example.com", denied) is None  # a suffix matches whole labels
    opener = SecretOpener(None, clusters=ExternalNameGate(enabled=False))
    assert opener(_dns_cluster("t1/ns/ext:443", "api.example.com")) is None
