"""How the gateway picks a request's scope, exact host first, then a one-label wildcard.

Envoy's scoped routes match scope keys exactly (envoyproxy/envoy#19098), so a `*.foo.com`
scope is never found from the `:authority` header itself. The HTTP connection manager
therefore keys scopes on a header the gateway writes, `SCOPE_KEY_HEADER`, and the first HTTP
filter, a small Lua script (`SCOPE_FILTER`), sets it per request (the names are
`ripple_common.gateway_contract`'s, shared with the translator):

1. the host: `:authority` lowercased, without its port; a client's own value of the header is
   always replaced, so a client cannot pick another tenant's scope;
2. if no scope of that exact host exists, the host with its first label swapped for `*`
   (`a.foo.com` -> `*.foo.com`), and the route cache is cleared again: Envoy re-selects the
   scope from the header (`refreshCachedRoute` snaps the scoped config again).

"Exact scope exists" is read from the virtual host the exact key resolves to: the translator
marks every virtual host it writes with `filter_metadata[SCOPE_FILTER][SERVED_KEY]`. A virtual
host, not a route: an exact host whose path matches nothing stays with its owner (404 there) and
never falls through to another tenant's wildcard.

A wildcard covers exactly one label, as the Ingress spec says (`*.foo.com` serves `a.foo.com`,
not `b.a.foo.com` nor `foo.com`). Checked with Envoy 1.40; Lua's `virtualHost()` and
`metadata()` objects are cached per script run, so one run can check one key only: a deeper
fallback would need another filter. The translator strips the header before the upstream
(`request_headers_to_remove` on its RouteConfigurations).

A second script (`CATCH_ALL_SCRIPT`, the same filter name, right after the first) sends a host
that has neither scope to the catch-all key `CATCH_ALL_KEY` (`_`, nginx's default server
name, never a valid host): the scope of the gateway's default backend when the operator
configured one (RIPPLE_TRANSLATOR_DEFAULT_BACKEND_SERVICE), else no scope and Envoy's 404.

The error-page marker (`ERROR_PAGE_HEADER`, custom-http-errors' internal redirect) is removed
from every client request. The redirect itself passes this filter again (Envoy re-runs the
filter chain of a recreated stream): it is recognised by `REDIRECT_HEADER`, whose value the
redirect policy copies from this stream's dynamic metadata (`REDIRECT_TOKEN`): a random token
drawn once per Lua VM (per worker), which no client sees; such a request keeps the scope
key and marker the redirect set. A client cannot send the token: it never leaves Envoy.
"""

from __future__ import annotations

from typing import Any, Final

from envoy.extensions.filters.http.lua.v3 import lua_pb2

from ripple_common.gateway_contract import (
    CATCH_ALL_KEY,
    ERROR_PAGE_HEADER,
    REDIRECT_HEADER,
    SCOPE_FILTER,
    SCOPE_KEY_HEADER,
    SERVED_KEY,
    TOKEN_KEY,
)

SCOPE_SCRIPT: Final = f"""\
-- ripple: the scope key, exact host first, then its one-label wildcard (ripple_xds.scope_key)
local KEY = "{SCOPE_KEY_HEADER}"
local PAGE = "{ERROR_PAGE_HEADER}"
local PASS = "{REDIRECT_HEADER}"
local function secret()
  local ok, value = pcall(function()
    local f = io.open("/dev/urandom", "rb")
    local bytes = f:read(16)
    f:close()
    return (string.gsub(bytes, ".", function(c) return string.format("%02x", string.byte(c)) end))
  end)
  if ok and value and #value == 32 then
    return value
  end
  local address = tonumber(string.match(tostring({{}}), "(%x+)$") or "0", 16) or 0
  math.randomseed((os.time() + os.clock() * 1000000 + address) % 2147483647)
  local parts = {{}}
  for i = 1, 4 do
    parts[i] = string.format("%08x", math.random(0, 2147483646))
  end
  return table.concat(parts)
end
local TOKEN = secret()
function envoy_on_request(handle)
  local headers = handle:headers()
  local pass = headers:get(PASS)
  if pass ~= nil then
    headers:remove(PASS)
    if pass == TOKEN then
      return -- our own error-page redirect: its scope key and marker stand
    end
  end
  headers:remove(PAGE)
  handle:streamInfo():dynamicMetadata():set("{SCOPE_FILTER}", "{TOKEN_KEY}", TOKEN)
  local host = string.lower(string.match(headers:get(":authority") or "", "^[^:]*"))
  headers:replace(KEY, host)
  handle:clearRouteCache()
  handle:metadata() -- resolves the route, hence the virtual host, for the exact key
  if handle:virtualHost():metadata():get("{SERVED_KEY}") ~= nil then
    return
  end
  local parent = string.match(host, "^[^.]+(%..+)$")
  if parent then
    headers:replace(KEY, "*" .. parent)
    handle:clearRouteCache()
  end
end
"""


CATCH_ALL_SCRIPT: Final = f"""\
-- ripple: a host without a scope (exact or wildcard) gets the catch-all key (ripple_xds.scope_key)
function envoy_on_request(handle)
  handle:metadata() -- resolves the route, hence the virtual host, for the current key
  if handle:virtualHost():metadata():get("{SERVED_KEY}") ~= nil then
    return
  end
  handle:headers():replace("{SCOPE_KEY_HEADER}", "{CATCH_ALL_KEY}")
  handle:clearRouteCache()
end
"""


def scope_filter_config() -> Any:
    """The Lua filter's config: the script; header writes clear the route cache only when the
    script says so."""
    config = lua_pb2.Lua(stat_prefix="ripple_scope")
    config.default_source_code.inline_string = SCOPE_SCRIPT
    config.clear_route_cache.value = False
    return config


def catch_all_filter_config() -> Any:
    """The second script's config (see the module doc)."""
    config = lua_pb2.Lua(stat_prefix="ripple_catch_all")
    config.default_source_code.inline_string = CATCH_ALL_SCRIPT
    config.clear_route_cache.value = False
    return config
