from __future__ import annotations

from pathlib import Path

import pytest

from ripple_common.resources import Resource, TypeUrl
from ripple_xds.delta import DeltaRequest, DeltaStream
from ripple_xds.identity import (
    DEFAULT_GATEWAY,
    MAX_NODE_ID,
    Gateway,
    GatewayPolicy,
    IdentityError,
    NodeIdentity,
    NotPermittedError,
    PeerCertificate,
    identify,
    secrets_allowed,
    spiffe_gateway,
)
from ripple_xds.settings import XdsSettings
from ripple_xds.snapshot import SnapshotCache
from ripple_xds.sotw import SotwRequest, SotwStream
from ripple_xds.view import GatewayView, view_for, without_secrets
from tests.unit.xds import certs


def test_a_node_with_an_id_is_identified() -> None:
    assert identify(has_node=True, node_id="gw-1", cluster="edge") == NodeIdentity(
        "gw-1", "edge", gateway="edge"
    )


def test_the_gateway_is_the_metadata_field_else_the_cluster() -> None:
    identity = identify(has_node=True, node_id="gw-1", cluster="edge", metadata_gateway="blue")
    assert identity.gateway == "blue"


@pytest.mark.parametrize(
    ("has_node", "node_id", "message"),
    [
        (False, "", "must carry node.id"),
        (True, "", "node.id is empty"),
        (True, "   ", "node.id is empty"),
        (True, "gw\n1", "printable"),
        (True, "x" * (MAX_NODE_ID + 1), "printable"),
    ],
)
def test_a_node_without_a_usable_id_is_refused_with_a_clear_message(
    has_node: bool, node_id: str, message: str
) -> None:
    with pytest.raises(IdentityError, match=message):
        identify(has_node=has_node, node_id=node_id)


POLICY = GatewayPolicy.of({"blue": ["t1", "t2"], "green": ["*"]})


def _node(gateway: str, node_id: str = "gw-1") -> NodeIdentity:
    return identify(has_node=True, node_id=node_id, cluster=gateway)


def _cert(*names: str, uris: tuple[str, ...] = ()) -> PeerCertificate:
    """A verified client certificate with DNS SANs `names` (the first also the CN)."""
    return PeerCertificate(uris=uris, dns_names=names, common_names=names[:1])


def _spiffe(gateway: str) -> PeerCertificate:
    return _cert(uris=(f"spiffe://ripple.example/gateway/{gateway}",))


def test_without_gateways_every_node_gets_every_tenant() -> None:
    assert GatewayPolicy().gateway_of(_node("anything"), peer=None) is DEFAULT_GATEWAY
    assert GatewayPolicy().gateway_of(_node("anything"), peer=_cert("gw-1")) is DEFAULT_GATEWAY
    assert DEFAULT_GATEWAY.allows("t9/routes")
    assert DEFAULT_GATEWAY.allows("ripple-https")
    assert not DEFAULT_GATEWAY.allows("ripple-https.blue")


def test_a_configured_gateway_gets_its_tenants_and_its_own_listeners() -> None:
    blue = POLICY.gateway_of(_node("blue"), peer=_cert("blue"))
    assert blue == Gateway("blue", frozenset({"t1", "t2"}))
    assert blue.allows("t1/routes")
    assert blue.allows("t2/scope/a.example.com")
    assert not blue.allows("t3/routes")
    assert blue.allows("ripple-http")
    assert blue.allows("ripple-https.blue")
    assert not blue.allows("ripple-https.green")
    assert not blue.allows("ripple-https")
    green = POLICY.gateway_of(_node("green"), peer=_cert("green"))
    assert green.allows("t3/routes")


def test_the_gateway_comes_from_the_certificate_never_from_the_node() -> None:
    # No claim at all: the certificate decides (URI SAN, else DNS SAN or common name).
    assert POLICY.gateway_of(_node(""), peer=_spiffe("green")).name == "green"
    assert POLICY.gateway_of(_node(""), peer=_cert("gw-1.example", "blue")).name == "blue"
    # A URI SAN wins over DNS names that happen to equal another gateway.
    both = _cert("blue", uris=("spiffe://ripple.example/gateway/green",))
    assert POLICY.gateway_of(_node("green"), peer=both).name == "green"
    with pytest.raises(NotPermittedError, match=r"claims gateway 'blue'.*gateway 'green'"):
        POLICY.gateway_of(_node("blue"), peer=both)


@pytest.mark.parametrize(
    ("claim", "peer", "message"),
    [
        ("blue", _cert("green"), "claims gateway 'blue' but its client certificate is gateway"),
        ("blue", _spiffe("green"), "claims gateway 'blue'"),
        ("blue", _cert("gw-1"), "names no configured gateway"),  # a node-id certificate
        ("blue", _cert("blue", "green"), "names several gateways"),
        ("red", _spiffe("red"), "'red', which is not configured"),
        ("blue", None, "presents no client certificate"),
        ("", None, "presents no client certificate"),
    ],
    ids=["dns-other", "uri-other", "node-id-cert", "two-gateways", "unknown", "none", "none-2"],
)
def test_a_node_claiming_another_gateway_than_its_certificate_is_refused(
    claim: str, peer: PeerCertificate | None, message: str
) -> None:
    with pytest.raises(NotPermittedError, match=message):
        POLICY.gateway_of(_node(claim), peer=peer)


def test_a_spiffe_certificate_claims_its_gateway_even_without_configured_gateways() -> None:
    assert GatewayPolicy().gateway_of(_node("edge"), peer=_spiffe("edge")) is DEFAULT_GATEWAY
    with pytest.raises(NotPermittedError, match="claims gateway 'blue'"):
        GatewayPolicy().gateway_of(_node("blue"), peer=_spiffe("edge"))


@pytest.mark.parametrize(
    ("uri", "gateway"),
    [
        ("spiffe://cluster.local/gateway/edge", "edge"),
        ("spiffe://td/gateway/", None),
        ("spiffe://td/gateway/a/b", None),
        ("spiffe://td/ns/ripple/sa/ripple-gateway", None),
        ("https://td/gateway/edge", None),
        ("spiffe:///gateway/edge", None),
    ],
)
def test_spiffe_gateway_uris(uri: str, gateway: str | None) -> None:
    assert spiffe_gateway(uri) == gateway


def test_peer_certificate_names_from_pem() -> None:
    ca = certs.authority()
    peer = PeerCertificate.from_pem(certs.issued(ca, "blue", "gw-1").certificate)
    assert peer == PeerCertificate(dns_names=("blue", "gw-1"), common_names=("blue",))
    assert POLICY.gateway_of(_node("blue"), peer=peer).name == "blue"


def test_secrets_only_with_a_verified_certificate_or_the_dev_flag() -> None:
    assert secrets_allowed(_cert("blue"), insecure_dev_secrets=False)
    assert not secrets_allowed(None, insecure_dev_secrets=False)
    assert secrets_allowed(None, insecure_dev_secrets=True)


def test_the_no_secrets_view_hides_every_secret() -> None:
    cache = SnapshotCache()
    cache.apply(
        upserts=[
            Resource(TypeUrl.SECRET, "t1/ns/tls", b"key"),
            Resource(TypeUrl.CLUSTER, "t1/ns/web:80", b"c"),
        ]
    )
    view = without_secrets(cache)
    assert list(view.names(TypeUrl.SECRET)) == []
    assert view.get(TypeUrl.SECRET, "t1/ns/tls") is None
    assert view.get(TypeUrl.CLUSTER, "t1/ns/web:80") is not None
    stream = SotwStream(view)
    step = stream.on_request(
        SotwRequest(type_url=TypeUrl.SECRET.value, resource_names=("t1/ns/tls",))
    )
    assert all(not r.resources for r in step.responses)


def test_bad_gateway_names_are_refused() -> None:
    with pytest.raises(ValueError, match="without '/'"):
        GatewayPolicy.of({"a/b": ["*"]})


def test_the_view_hides_other_tenants() -> None:
    cache = SnapshotCache()
    cache.apply(
        upserts=[
            Resource(TypeUrl.ROUTE, "t1/routes", b"1"),
            Resource(TypeUrl.ROUTE, "t3/routes", b"3"),
            Resource(TypeUrl.LISTENER, "ripple-http", b"h"),
            Resource(TypeUrl.LISTENER, "ripple-https.blue", b"b"),
            Resource(TypeUrl.LISTENER, "ripple-https.green", b"g"),
        ]
    )
    view = view_for(cache, POLICY.gateway_of(_node("blue"), peer=_cert("blue")))
    assert isinstance(view, GatewayView)
    assert sorted(view.names(TypeUrl.ROUTE)) == ["t1/routes"]
    assert view.get(TypeUrl.ROUTE, "t3/routes") is None
    assert view.get(TypeUrl.ROUTE, "t1/routes") is not None
    assert sorted(view.names(TypeUrl.LISTENER)) == ["ripple-http", "ripple-https.blue"]
    assert view_for(cache, DEFAULT_GATEWAY) is cache


def test_settings_tls_files_go_together(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="go together"):
        XdsSettings(tls_cert_file=tmp_path / "c")
    with pytest.raises(ValueError, match="needs tls_cert_file"):
        XdsSettings(tls_client_ca_file=tmp_path / "ca")
    with pytest.raises(ValueError, match="need mTLS"):
        XdsSettings(gateways={"blue": ["t1"]})
    for name in ("c", "k", "ca"):
        (tmp_path / name).write_text("")
    settings = XdsSettings(
        gateways={"blue": ["t1"]},
        tls_cert_file=tmp_path / "c",
        tls_key_file=tmp_path / "k",
        tls_client_ca_file=tmp_path / "ca",
    )
    assert settings.mtls
    assert GatewayPolicy.of(settings.gateways).all() == (Gateway("blue", frozenset({"t1"})),)
    with pytest.raises(ValueError, match="need require_node_id"):
        XdsSettings(
            gateways={"blue": ["t1"]},
            tls_cert_file=tmp_path / "c",
            tls_key_file=tmp_path / "k",
            tls_client_ca_file=tmp_path / "ca",
            require_node_id=False,
        )
    assert not XdsSettings().insecure_dev_secrets


def test_a_stream_over_the_view_sends_only_its_gateways_tenants() -> None:
    cache = SnapshotCache()
    cache.apply(
        upserts=[
            Resource(TypeUrl.CLUSTER, "t1/ns/web:80", b"\x0a\x01a"),
            Resource(TypeUrl.CLUSTER, "t3/ns/web:80", b"\x0a\x01b"),
        ]
    )
    stream = DeltaStream(view_for(cache, POLICY.gateway_of(_node("blue"), peer=_cert("blue"))))
    step = stream.on_request(DeltaRequest(type_url=TypeUrl.CLUSTER.value))
    (response,) = step.responses
    assert [e.name for e in response.resources] == ["t1/ns/web:80"]
    change = cache.apply(upserts=[Resource(TypeUrl.CLUSTER, "t3/ns/web:80", b"\x0a\x01c")])
    assert change is not None
    stream.on_request(DeltaRequest(type_url=TypeUrl.CLUSTER.value, response_nonce=response.nonce))
    assert stream.on_change(change.names).responses == ()
