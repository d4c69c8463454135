"""The gateway contract: the names the translator's resources and the xds server's gateway
listeners must agree on, in one place (services never import each other). Pure data.

The xds server builds the gateway's listeners (`ripple_xds.gateway`, `ripple_xds.https`): an
HTTP connection manager whose HTTP filters carry the names below; the translator's routes
configure those filters per route (``typed_per_filter_config`` keyed by the filter's name) and
leave metadata for the gateway's own Lua filters (``filter_metadata`` keyed by the filter's
name: a Lua filter reads the metadata of its own name).

- Scope selection (`ripple_xds.scope_key`): the connection manager keys scopes on
  `SCOPE_KEY_HEADER`, which the `SCOPE_FILTER` Lua filter writes (the exact host, else its
  one-label wildcard, else `CATCH_ALL_KEY`); it reads the virtual host's
  ``filter_metadata[SCOPE_FILTER][SERVED_KEY]`` marker, which every virtual host the translator
  writes carries. The RouteConfigurations strip the header before the upstream.
- custom-http-errors: the translator's redirect policies set `ERROR_PAGE_HEADER` and prove
  themselves to the scope filter with `REDIRECT_HEADER` = `REDIRECT_TOKEN` (the filter's per-VM
  token in the stream's dynamic metadata under `SCOPE_FILTER`/`TOKEN_KEY`).
- Body limits (`ripple_xds.body_limit`): a route's limit is
  ``filter_metadata[BODY_LIMIT_FILTER][MAX_BYTES_KEY]``.
- HTTPS (`ripple_xds.https`): the translator decides which Secret serves a host over HTTPS and
  writes it on the host's virtual host, ``filter_metadata[TLS_METADATA][TLS_SECRET_KEY]`` (the
  Secret resource's name); the xds server serves exactly that certificate for the host's SNI.
  No filter reads it.
"""

from __future__ import annotations

from typing import Final

# The HTTP filters of the gateway's connection manager that routes configure per route.
CUSTOM_RESPONSE_FILTER: Final = "envoy.filters.http.custom_response"
CORS_FILTER: Final = "envoy.filters.http.cors"
RBAC_FILTER: Final = "envoy.filters.http.rbac"
LOCAL_RATELIMIT_FILTER: Final = "envoy.filters.http.local_ratelimit"
STATEFUL_SESSION_FILTER: Final = "envoy.filters.http.stateful_session"
ROUTER_FILTER: Final = "envoy.filters.http.router"
# The local rate limit's stat prefix (the gateway's empty filter and the routes' configs).
RATE_LIMIT_STAT_PREFIX: Final = "ripple_limit_rps"
# Envoy's TLS transport socket (upstream TLS of a cluster, downstream TLS of the listener).
TLS_TRANSPORT_SOCKET: Final = "envoy.transport_sockets.tls"

# Scope selection: the scope-key Lua filter, the header it writes, the served marker.
SCOPE_FILTER: Final = "ripple.scope"
SCOPE_KEY_HEADER: Final = "x-ripple-scope"
SERVED_KEY: Final = "served"
# The catch-all scope key (nginx's default server name `_`, never a valid host).
CATCH_ALL_KEY: Final = "_"

# custom-http-errors' internal redirect.
ERROR_PAGE_HEADER: Final = "x-ripple-error-page"
REDIRECT_HEADER: Final = "x-ripple-redirect"
TOKEN_KEY: Final = "token"
# The redirect policy's value of REDIRECT_HEADER (an Envoy header formatter).
REDIRECT_TOKEN: Final = f"%DYNAMIC_METADATA({SCOPE_FILTER}:{TOKEN_KEY})%"

# proxy-body-size: the body-limit Lua filter and the route metadata key it reads.
BODY_LIMIT_FILTER: Final = "ripple.body_limit"
MAX_BYTES_KEY: Final = "max_request_bytes"

# HTTPS: the Secret resource a virtual host's host is served with (the translator's choice).
TLS_METADATA: Final = "ripple.tls"
TLS_SECRET_KEY: Final = "secret"
