"""The scope filter's catch-all script and error-page marker handling (issue #16 point 6): the
gateway's side of the contract the translator writes to (traffic: tests/integration/
xds_service/test_nginx_parity_default_backend.py)."""

from __future__ import annotations

from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.http.lua.v3 import lua_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from ripple_common import gateway_contract as contract
from ripple_translator.translate import plan
from ripple_translator.translate.default_backend import parse_default_backend
from ripple_translator.translate.validate import check_host
from ripple_xds import scope_key
from ripple_xds.gateway import http_listener


def _scripts() -> list[tuple[str, str]]:
    listener = listener_pb2.Listener.FromString(http_listener(address="127.0.0.1", port=10080).body)
    manager = hcm_pb2.HttpConnectionManager()
    assert listener.filter_chains[0].filters[0].typed_config.Unpack(manager)
    scripts = []
    for f in manager.http_filters:
        if f.name == contract.SCOPE_FILTER:
            config = lua_pb2.Lua()
            assert f.typed_config.Unpack(config)
            scripts.append((f.name, config.default_source_code.inline_string))
    return scripts


def test_the_scripts_embed_the_contracts_names() -> None:
    """One definition of each name the translator and the gateway share (gateway_contract)."""
    assert plan.GATEWAY_ERROR_PAGE == contract.CATCH_ALL_KEY
    assert f'local PAGE = "{contract.ERROR_PAGE_HEADER}"' in scope_key.SCOPE_SCRIPT
    assert f'local PASS = "{contract.REDIRECT_HEADER}"' in scope_key.SCOPE_SCRIPT
    token = f"%DYNAMIC_METADATA({contract.SCOPE_FILTER}:{contract.TOKEN_KEY})%"
    assert token == contract.REDIRECT_TOKEN


def test_the_catch_all_key_is_no_host() -> None:
    """A tenant's host can never be the catch-all key (hosts are DNS names)."""
    assert check_host(contract.CATCH_ALL_KEY) is not None


def test_two_scripts_exact_or_wildcard_then_the_catch_all() -> None:
    [(_, first), (_, second)] = _scripts()
    assert first == scope_key.SCOPE_SCRIPT
    assert second == scope_key.CATCH_ALL_SCRIPT
    # The catch-all script only moves a request whose key resolved to no served virtual host.
    assert 'get("served") ~= nil then\n    return' in second
    assert f'replace("{contract.SCOPE_KEY_HEADER}", "_")' in second


def test_the_first_script_drops_a_clients_marker_unless_the_redirect_proves_itself() -> None:
    script = scope_key.SCOPE_SCRIPT
    check = script.index("if pass == TOKEN then")
    drop = script.index("headers:remove(PAGE)")
    publish = script.index('dynamicMetadata():set("ripple.scope", "token", TOKEN)')
    key = script.index("headers:replace(KEY, host)")
    assert check < drop < publish < key  # a proven redirect returns before any of them
    assert script.index("headers:remove(PASS)") < check  # the proof never goes upstream
    assert 'io.open("/dev/urandom", "rb")' in script  # the token: 128 random bits per VM


def test_the_default_backend_setting_round_trips() -> None:
    assert str(parse_default_backend("ns/svc:8080")) == "ns/svc:8080"
    assert str(parse_default_backend("ns/svc")) == "ns/svc"
