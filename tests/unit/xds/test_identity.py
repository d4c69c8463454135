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
    identify,
)
from ripple_xds.settings import XdsSettings
from ripple_xds.snapshot import SnapshotCache
from ripple_xds.view import GatewayView, view_for


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


def test_without_gateways_every_node_gets_every_tenant() -> None:
    assert GatewayPolicy().gateway_of(_node("anything")) is DEFAULT_GATEWAY
    assert DEFAULT_GATEWAY.allows("t9/routes")
    assert DEFAULT_GATEWAY.allows("ripple-https")
    assert not DEFAULT_GATEWAY.allows("ripple-https.blue")


def test_a_configured_gateway_gets_its_tenants_and_its_own_listeners() -> None:
    blue = POLICY.gateway_of(_node("blue"))
    assert blue == Gateway("blue", frozenset({"t1", "t2"}))
    assert blue.allows("t1/routes")
    assert blue.allows("t2/scope/a.example.com")
    assert not blue.allows("t3/routes")
    assert blue.allows("ripple-http")
    assert blue.allows("ripple-https.blue")
    assert not blue.allows("ripple-https.green")
    assert not blue.allows("ripple-https")
    green = POLICY.gateway_of(_node("green"))
    assert green.allows("t3/routes")


def test_an_unknown_gateway_is_not_permitted() -> None:
    with pytest.raises(NotPermittedError, match="'red', which is not configured"):
        POLICY.gateway_of(_node("red"))
    with pytest.raises(NotPermittedError):
        POLICY.gateway_of(_node(""))


def test_a_client_certificate_must_name_the_gateway_or_the_node() -> None:
    assert POLICY.gateway_of(_node("blue"), peer_names=["blue"]).name == "blue"
    assert POLICY.gateway_of(_node("blue", "gw-1"), peer_names=["gw-1"]).name == "blue"
    with pytest.raises(NotPermittedError, match="client certificate names neither"):
        POLICY.gateway_of(_node("blue"), peer_names=["green"])
    with pytest.raises(NotPermittedError, match="client certificate"):
        GatewayPolicy().gateway_of(_node("blue"), peer_names=["green"])


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
    view = view_for(cache, POLICY.gateway_of(_node("blue")))
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
    settings = XdsSettings(gateways={"blue": ["t1"]})
    assert GatewayPolicy.of(settings.gateways).all() == (Gateway("blue", frozenset({"t1"})),)


def test_a_stream_over_the_view_sends_only_its_gateways_tenants() -> None:
    cache = SnapshotCache()
    cache.apply(
        upserts=[
            Resource(TypeUrl.CLUSTER, "t1/ns/web:80", b"\x0a\x01a"),
            Resource(TypeUrl.CLUSTER, "t3/ns/web:80", b"\x0a\x01b"),
        ]
    )
    stream = DeltaStream(view_for(cache, POLICY.gateway_of(_node("blue"))))
    step = stream.on_request(DeltaRequest(type_url=TypeUrl.CLUSTER.value))
    (response,) = step.responses
    assert [e.name for e in response.resources] == ["t1/ns/web:80"]
    change = cache.apply(upserts=[Resource(TypeUrl.CLUSTER, "t3/ns/web:80", b"\x0a\x01c")])
    assert change is not None
    stream.on_request(DeltaRequest(type_url=TypeUrl.CLUSTER.value, response_nonce=response.nonce))
    assert stream.on_change(change.names).responses == ()
