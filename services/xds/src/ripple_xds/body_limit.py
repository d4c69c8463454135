"""The gateway's request body limit (ingress-nginx's proxy-body-size), per route.

A Lua filter (`gateway_contract.BODY_LIMIT_FILTER`) after the scope-key filter reads the limit
the translator puts on a route, `filter_metadata[BODY_LIMIT_FILTER][MAX_BYTES_KEY]`, and
answers 413 to a request whose Content-Length is larger, before anything reaches the backend.
Routes without the metadata pass untouched; the body is never buffered.

Why not Envoy's buffer filter: it would have to be disabled by default and enabled per route,
and Envoy decides which filters run when the stream starts, from the route the request's
first headers select; here the scope key is a header the scope-key filter writes later, so that
first lookup finds no route and the buffer filter would never run. A body sent without a
Content-Length (chunked) is not counted: a deviation from nginx, documented in
docs/annotations.md.
"""

from __future__ import annotations

from typing import Any, Final

from envoy.extensions.filters.http.lua.v3 import lua_pb2

from ripple_common.gateway_contract import MAX_BYTES_KEY

BODY_LIMIT_SCRIPT: Final = f"""\
-- ripple: proxy-body-size (ripple_xds.body_limit)
function envoy_on_request(handle)
  local limit = handle:metadata():get("{MAX_BYTES_KEY}")
  if limit == nil then
    return
  end
  local length = tonumber(handle:headers():get("content-length") or "")
  if length ~= nil and length > limit then
    handle:respond({{[":status"] = "413", ["content-type"] = "text/plain"}},
      "request body larger than " .. string.format("%d", limit) .. " bytes\\n")
  end
end
"""


def body_limit_filter_config() -> Any:
    config = lua_pb2.Lua(stat_prefix="ripple_body_limit")
    config.default_source_code.inline_string = BODY_LIMIT_SCRIPT
    return config
