"""The gateway's scope key filter (wildcard hosts): first in the chain, and in agreement with
the names the translator writes (the header it strips, the virtual host marker)."""

from __future__ import annotations

from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.http.lua.v3 import lua_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from ripple_translator.translate import envoy as translator_envoy
from ripple_xds import scope_key
from ripple_xds.gateway import http_listener


def _manager() -> object:
    listener = listener_pb2.Listener.FromString(http_listener(address="127.0.0.1", port=1).body)
    manager = hcm_pb2.HttpConnectionManager()
    assert listener.filter_chains[0].filters[0].typed_config.Unpack(manager)
    return manager


def test_scope_filter_runs_first_and_keys_the_scopes() -> None:
    manager = _manager()
    first = manager.http_filters[0]  # type: ignore[attr-defined]
    assert first.name == scope_key.SCOPE_FILTER
    config = lua_pb2.Lua()
    assert first.typed_config.Unpack(config)
    assert config.default_source_code.inline_string == scope_key.SCOPE_SCRIPT
    # Header writes do not clear the route cache by themselves: the script clears it.
    assert config.clear_route_cache.value is False
    extractor = manager.scoped_routes.scope_key_builder.fragments[0].header_value_extractor  # type: ignore[attr-defined]
    assert extractor.name == scope_key.SCOPE_KEY_HEADER


def test_script_replaces_the_clients_header_and_checks_the_marker() -> None:
    script = scope_key.SCOPE_SCRIPT
    assert f'local KEY = "{scope_key.SCOPE_KEY_HEADER}"' in script
    assert "headers:replace(KEY, host)" in script  # never trusts a client's value
    assert f'metadata():get("{scope_key.SERVED_KEY}")' in script
    assert 'headers:replace(KEY, "*" .. parent)' in script


def test_names_agree_with_the_translator() -> None:
    assert translator_envoy.SCOPE_KEY_HEADER == scope_key.SCOPE_KEY_HEADER
    assert translator_envoy.SCOPE_FILTER == scope_key.SCOPE_FILTER
    assert translator_envoy.SERVED_KEY == scope_key.SERVED_KEY
