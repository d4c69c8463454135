"""The gateway's scope key filter (wildcard hosts): first in the chain, and in agreement with
the names the translator writes (the header it strips, the virtual host marker)."""

from __future__ import annotations

from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.http.lua.v3 import lua_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from ripple_common import gateway_contract as contract
from ripple_xds import scope_key
from ripple_xds.gateway import http_listener
from tests.unit.translator import decode, k8s


def _manager() -> object:
    listener = listener_pb2.Listener.FromString(http_listener(address="127.0.0.1", port=1).body)
    manager = hcm_pb2.HttpConnectionManager()
    assert listener.filter_chains[0].filters[0].typed_config.Unpack(manager)
    return manager


def test_scope_filter_runs_first_and_keys_the_scopes() -> None:
    manager = _manager()
    first = manager.http_filters[0]  # type: ignore[attr-defined]
    assert first.name == contract.SCOPE_FILTER
    config = lua_pb2.Lua()
    assert first.typed_config.Unpack(config)
    assert config.default_source_code.inline_string == scope_key.SCOPE_SCRIPT
    # Header writes do not clear the route cache by themselves: the script clears it.
    assert config.clear_route_cache.value is False
    extractor = manager.scoped_routes.scope_key_builder.fragments[0].header_value_extractor  # type: ignore[attr-defined]
    assert extractor.name == contract.SCOPE_KEY_HEADER


def test_script_replaces_the_clients_header_and_checks_the_marker() -> None:
    script = scope_key.SCOPE_SCRIPT
    assert f'local KEY = "{contract.SCOPE_KEY_HEADER}"' in script
    assert "headers:replace(KEY, host)" in script  # never trusts a client's value
    assert f'metadata():get("{contract.SERVED_KEY}")' in script
    assert 'headers:replace(KEY, "*" .. parent)' in script


def test_the_translators_routes_strip_the_key_header_and_carry_the_served_marker() -> None:
    extractor = _manager().scoped_routes.scope_key_builder.fragments[0].header_value_extractor  # type: ignore[attr-defined]
    config = decode.route_config(k8s.run(k8s.ingress()))
    assert list(config.request_headers_to_remove) == [extractor.name]
    [vhost] = config.virtual_hosts
    marker = vhost.metadata.filter_metadata[contract.SCOPE_FILTER].fields[contract.SERVED_KEY]
    assert marker.bool_value
