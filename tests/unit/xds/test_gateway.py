from __future__ import annotations

import pytest
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from ripple_common.resources import TypeUrl
from ripple_xds.gateway import HTTP_LISTENER, SCOPED_ROUTES, http_listener


def _decode(address: str = "127.0.0.1", port: int = 10080) -> tuple[object, object]:
    resource = http_listener(address=address, port=port)
    assert resource.type_url is TypeUrl.LISTENER
    assert resource.name == HTTP_LISTENER
    listener = listener_pb2.Listener.FromString(resource.body)
    manager = hcm_pb2.HttpConnectionManager()
    assert listener.filter_chains[0].filters[0].typed_config.Unpack(manager)
    return listener, manager


def test_listener_binds_where_told() -> None:
    listener, _ = _decode("0.0.0.0", 8080)
    assert listener.address.socket_address.address == "0.0.0.0"  # type: ignore[attr-defined]
    assert listener.address.socket_address.port_value == 8080  # type: ignore[attr-defined]


def test_scope_key_is_the_scope_header_and_comes_from_ads() -> None:
    _, manager = _decode()
    scoped = manager.scoped_routes  # type: ignore[attr-defined]
    assert scoped.name == SCOPED_ROUTES
    extractor = scoped.scope_key_builder.fragments[0].header_value_extractor
    assert (extractor.name, extractor.element_separator, extractor.index) == (
        "x-ripple-scope",
        ":",
        0,
    )
    assert scoped.scoped_rds.scoped_rds_config_source.HasField("ads")
    assert scoped.rds_config_source.HasField("ads")


def test_filters_the_translator_configures_per_route_come_before_the_router() -> None:
    _, manager = _decode()
    names = [f.name for f in manager.http_filters]  # type: ignore[attr-defined]
    assert names == [
        "ripple.scope",
        "ripple.scope",  # the catch-all key (scope_key.CATCH_ALL_SCRIPT)
        "envoy.filters.http.custom_response",
        "envoy.filters.http.cors",
        "envoy.filters.http.rbac",
        "envoy.filters.http.local_ratelimit",
        "ripple.body_limit",
        "envoy.filters.http.header_mutation",
        "envoy.filters.http.stateful_session",
        "envoy.filters.http.router",
    ]
    # Envoy picks a stream's filters before the scope key selects a route: none may rely
    # on being enabled per route.
    assert not [f for f in manager.http_filters if f.disabled]  # type: ignore[attr-defined]
    assert manager.use_remote_address.value is True  # type: ignore[attr-defined]


def test_encoding_is_deterministic() -> None:
    assert (
        http_listener(address="127.0.0.1", port=1).body
        == http_listener(address="127.0.0.1", port=1).body
    )


@pytest.mark.parametrize("port", [0, 70000])
def test_bad_port_is_refused(port: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        http_listener(address="127.0.0.1", port=port)
