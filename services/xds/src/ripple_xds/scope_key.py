"""How the gateway picks a request's scope, exact host first, then a one-label wildcard.

Envoy's scoped routes match scope keys exactly (envoyproxy/envoy#19098), so a `*.foo.com`
scope is never found from the `:authority` header itself. The HTTP connection manager
therefore keys scopes on a header the gateway writes, `SCOPE_KEY_HEADER`, and the first HTTP
filter, a small Lua script (`SCOPE_FILTER`), sets it per request:

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
"""

from __future__ import annotations

from typing import Any, Final

from envoy.extensions.filters.http.lua.v3 import lua_pb2

SCOPE_KEY_HEADER: Final = "x-ripple-scope"
SCOPE_FILTER: Final = "ripple.scope"
SERVED_KEY: Final = "served"

SCOPE_SCRIPT: Final = f"""\
-- ripple: the scope key, exact host first, then its one-label wildcard (ripple_xds.scope_key)
local KEY = "{SCOPE_KEY_HEADER}"
function envoy_on_request(handle)
  local headers = handle:headers()
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


def scope_filter_config() -> Any:
    """The Lua filter's config: the script; header writes clear the route cache only when the
    script says so."""
    config = lua_pb2.Lua(stat_prefix="ripple_scope")
    config.default_source_code.inline_string = SCOPE_SCRIPT
    config.clear_route_cache.value = False
    return config
