"""The ingress-nginx annotations the translator knows, and what becomes of each.

This table is the source for `docs/annotations.md` (a unit test keeps the two in step) and for
the diagnostics on annotations the translator does not carry out: nothing under the
``nginx.ingress.kubernetes.io/`` prefix is ever ignored without a diagnostic.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

PREFIX: Final = "nginx.ingress.kubernetes.io/"


class Support(enum.StrEnum):
    # Translated; see `envoy` for what it becomes.
    SUPPORTED = "supported"
    # Not translated: a Warning, and the Ingress is served without it.
    UNSUPPORTED = "not yet supported"
    # Not translated, and serving without it would be unsafe (authentication, client
    # certificates, WAF, TLS passthrough): an Error, and the Ingress is not served.
    FAIL_CLOSED = "not yet supported, fails closed"


@dataclass(frozen=True, slots=True)
class AnnotationInfo:
    name: str  # without the prefix
    support: Support
    envoy: str  # what it becomes in Envoy, or why it is not supported
    # For FAIL_CLOSED switches: a false value ("false", "off") turns the feature off, so it is
    # only a Warning.
    switch: bool = False
    # Honoured on a canary Ingress (all others come from the primary Ingress there).
    canary: bool = False


_S, _U, _F = Support.SUPPORTED, Support.UNSUPPORTED, Support.FAIL_CLOSED

_AUTH = "authentication is not translated yet; serving the paths unprotected would be unsafe"
_TLS_AUTH = "client-certificate authentication is not translated yet"
_RATE = "rate limits are not translated yet (Envoy: local_ratelimit per route)"
_UPSTREAM_TLS = "upstream TLS options are not translated yet (Envoy: UpstreamTlsContext)"
_SNIPPET = "raw nginx configuration cannot be translated"
_BUFFER = "nginx buffering has no Envoy equivalent; Envoy streams"
_OBSERVE = "per-Ingress observability settings are not translated"

ENTRIES: tuple[AnnotationInfo, ...] = (
    # --- supported ---------------------------------------------------------------------------
    AnnotationInfo(
        "affinity",
        _S,
        "`cookie`: a RouteAction `hash_policy` on the cookie, which Envoy sets (with the "
        "attributes below) when the request has none, and a `ring_hash` cluster variant; wins "
        "over upstream-hash-by, as in ingress-nginx",
    ),
    AnnotationInfo(
        "affinity-mode",
        _S,
        "`balanced` (the default): the ring hash above; `persistent`: no hashing, a "
        "round-robin cluster and the route's `typed_per_filter_config` "
        "`envoy.filters.http.stateful_session` (cookie-based session state with the cookie's "
        "name, path, ttl and attributes): the cookie names the endpoint, which keeps its "
        "clients while it exists, whatever endpoints are added",
    ),
    AnnotationInfo("session-cookie-name", _S, "the cookie hash policy's name (INGRESSCOOKIE)"),
    AnnotationInfo(
        "session-cookie-path",
        _S,
        "the cookie's `path` (default: the Ingress path; `/` for regex paths, as nginx)",
    ),
    AnnotationInfo("session-cookie-domain", _S, "cookie attribute `Domain`"),
    AnnotationInfo(
        "session-cookie-max-age",
        _S,
        "the cookie's `ttl` (Envoy sets Max-Age); absent or 0: a session cookie",
    ),
    AnnotationInfo(
        "session-cookie-expires",
        _S,
        "the cookie's `ttl` (Max-Age) when max-age is not set; no `Expires` attribute",
    ),
    AnnotationInfo("session-cookie-samesite", _S, "cookie attribute `SameSite`"),
    AnnotationInfo("session-cookie-secure", _S, "cookie attribute `Secure`"),
    AnnotationInfo(
        "session-cookie-change-on-failure",
        _S,
        "validated; Envoy's ring hash always moves a request whose endpoint is gone",
    ),
    AnnotationInfo(
        "proxy-next-upstream",
        _S,
        "RouteAction `retry_policy` (without it, every Ingress host has ingress-nginx's default "
        "`error timeout` with 3 tries as its VirtualHost `retry_policy`): error/timeout -> "
        "connect-failure, refused-stream, reset; invalid_header -> reset; http_NNN -> "
        "retriable-status-codes; POST, LOCK and PATCH are not retried unless non_idempotent "
        "(`retriable_request_headers` on :method); the `previous_hosts` predicate picks "
        "another endpoint; off: `num_retries` 0",
    ),
    AnnotationInfo(
        "proxy-next-upstream-tries",
        _S,
        "`num_retries` = tries - 1 (default 3 tries; 0, nginx's unlimited, becomes 10 retries)",
    ),
    AnnotationInfo(
        "limit-rps",
        _S,
        "per-route `local_ratelimit` config: a token bucket per client address "
        "(`remote_address` descriptor, dynamic), refilled limit-rps per second; 503 beyond",
    ),
    AnnotationInfo(
        "limit-burst-multiplier", _S, "the bucket holds limit-rps x this (default 5) tokens"
    ),
    AnnotationInfo(
        "proxy-body-size",
        _S,
        "route metadata `ripple.body_limit.max_request_bytes`, read by the gateway's Lua "
        "filter: a larger Content-Length is answered 413 (nothing is buffered; a body without "
        "Content-Length is not counted); 0: no limit. Without it there is no limit "
        "(ingress-nginx: 1m)",
    ),
    AnnotationInfo(
        "default-backend",
        _S,
        "a last route (prefix /) of each host of the Ingress to that Service's first port, "
        "unless the host has a catch-all already; a path whose Service has no ready endpoint "
        "forwards there instead of answering 503, as ingress-nginx's 503 error page: "
        "rewritten to `/` with `request_headers_to_add` X-Code 503, X-Format (Accept), "
        "X-Original-URI, X-Namespace, X-Ingress-Name, X-Service-Name, X-Service-Port (and "
        "the request's X-Request-ID)",
    ),
    AnnotationInfo(
        "use-regex",
        _S,
        "paths of the whole host become case-insensitive RE2 "
        "`safe_regex` matches `(?i)(?:PATH).*` (as ingress-nginx does host-wide)",
    ),
    AnnotationInfo(
        "rewrite-target",
        _S,
        "RouteAction `regex_rewrite` (pattern `(?i)^(?:PATH)`, "
        "`$N` becomes `\\N`); implies use-regex for the host",
    ),
    AnnotationInfo(
        "ssl-redirect",
        _S,
        "a route before the path's route, matching "
        "`x-forwarded-proto: http`, redirecting with `https_redirect` (308) and a "
        "`regex_rewrite` stripping one trailing slash (`GET /` on the root path: a "
        "`direct_response` 308 with `Location: https://HOST`); on by default when the host "
        "is in a tls section, also when its Secret is missing or bad, as in ingress-nginx",
    ),
    AnnotationInfo(
        "force-ssl-redirect", _S, "as ssl-redirect, also for hosts without a certificate"
    ),
    AnnotationInfo(
        "permanent-redirect",
        _S,
        "Route `direct_response` 301 with `response_headers_to_add` `Location`: the URL "
        "exactly as written (a trailing `$request_uri` becomes `%REQ(:path)%`); a path "
        "(`/new`) is made absolute with the request's scheme and Host unless relative-redirects",
    ),
    AnnotationInfo(
        "permanent-redirect-code",
        _S,
        "the `direct_response` status (300-308; another value: 301, as ingress-nginx)",
    ),
    AnnotationInfo(
        "temporal-redirect",
        _S,
        "as permanent-redirect, 302, an absolute http(s) URL only; wins over "
        "permanent-redirect as in ingress-nginx",
    ),
    AnnotationInfo(
        "temporal-redirect-code",
        _S,
        "the `direct_response` status (300-307; another value: 302, as ingress-nginx)",
    ),
    AnnotationInfo(
        "relative-redirects",
        _S,
        "a permanent-redirect to a path keeps `Location` relative (nginx `absolute_redirect off`)",
    ),
    AnnotationInfo(
        "preserve-trailing-slash",
        _S,
        "the https redirect keeps a trailing slash (no `regex_rewrite`)",
    ),
    AnnotationInfo(
        "app-root",
        _S,
        "an Exact `/` route first in the virtual host, redirecting (302) to the path",
    ),
    AnnotationInfo(
        "proxy-connect-timeout", _S, "Cluster `connect_timeout` (a cluster variant; default 5s)"
    ),
    AnnotationInfo(
        "proxy-read-timeout",
        _S,
        "RouteAction `idle_timeout` = max(read, send) "
        "(default 60s); RouteAction `timeout` is always 0 (nginx has no total limit)",
    ),
    AnnotationInfo("proxy-send-timeout", _S, "RouteAction `idle_timeout` = max(read, send)"),
    AnnotationInfo(
        "backend-protocol",
        _S,
        "Cluster options: HTTPS = TLS transport socket (no certificate verification; SNI = "
        "upstream-vhost's host, else an ExternalName Service's name, else none), "
        "GRPC/HTTP2 = HTTP/2 (h2c), GRPCS = HTTP/2 over TLS with ALPN h2",
    ),
    AnnotationInfo(
        "upstream-vhost",
        _S,
        "RouteAction `host_rewrite_literal`; with backend-protocol HTTPS/GRPCS also the SNI "
        "(a cluster variant `sni=HOST`)",
    ),
    AnnotationInfo(
        "load-balance",
        _S,
        "Cluster `lb_policy`: round_robin = ROUND_ROBIN, ewma = LEAST_REQUEST",
        canary=True,
    ),
    AnnotationInfo(
        "upstream-hash-by",
        _S,
        "Cluster `lb_policy` RING_HASH + RouteAction "
        "`hash_policy` ($request_uri/$uri = :path header, $host, $remote_addr = "
        "source IP, $http_NAME, $cookie_NAME, $arg_NAME; one variable only)",
    ),
    AnnotationInfo(
        "canary",
        _S,
        "the canary Ingress's backend is added to the primary's "
        "routes (header/cookie routes first, then weighted_clusters)",
        canary=True,
    ),
    AnnotationInfo(
        "canary-by-header",
        _S,
        "route with header match `always` -> canary, `never` -> primary",
        canary=True,
    ),
    AnnotationInfo(
        "canary-by-header-value", _S, "route with exact header match -> canary", canary=True
    ),
    AnnotationInfo(
        "canary-by-header-pattern", _S, "route with RE2 header match -> canary", canary=True
    ),
    AnnotationInfo(
        "canary-by-cookie",
        _S,
        "routes matching the `cookie` header (RE2) for "
        "`NAME=always` -> canary, `NAME=never` -> primary",
        canary=True,
    ),
    AnnotationInfo("canary-weight", _S, "RouteAction `weighted_clusters`", canary=True),
    AnnotationInfo("canary-weight-total", _S, "the weights' total (default 100)", canary=True),
    AnnotationInfo(
        "affinity-canary-behavior",
        _S,
        "`sticky` (the default), when the primary Ingress has affinity: every answer from the "
        "canary (its header/cookie routes, its `weighted_clusters` entry) appends "
        "`Set-Cookie: <affinity cookie>-canary=1` (the affinity cookie's path and lifetime), "
        "and a route first among the canary's sends requests carrying it to the canary; "
        "`legacy`: no marker, the canary is chosen again on every request",
        canary=True,
    ),
    AnnotationInfo(
        "enable-cors",
        _S,
        "as ingress-nginx's template (not Envoy's CORS filter): `response_headers_to_add` "
        "Access-Control-Allow-Origin/-Credentials/-Methods/-Headers/-Expose-Headers/-Max-Age on "
        "the path's routes, and a route before them answering OPTIONS with a 204 "
        "`direct_response` carrying them",
    ),
    AnnotationInfo(
        "cors-allow-origin",
        _S,
        "`*` (the default, also for an empty value): every answer carries "
        "`Access-Control-Allow-Origin: *`, every OPTIONS is answered; a list (any scheme, a "
        "port, a `*.` label, `null`; a bad item is left out with a Warning): twin routes "
        "matching the `origin` header (RE2, case-insensitive) echo it with `%REQ(origin)%`",
    ),
    AnnotationInfo(
        "cors-allow-methods", _S, "Access-Control-Allow-Methods, verbatim (GET, PUT, POST, ...)"
    ),
    AnnotationInfo(
        "cors-allow-headers", _S, "Access-Control-Allow-Headers, verbatim (DNT,Keep-Alive,...)"
    ),
    AnnotationInfo(
        "cors-expose-headers", _S, "Access-Control-Expose-Headers, verbatim (none by default)"
    ),
    AnnotationInfo(
        "cors-allow-credentials",
        _S,
        "`Access-Control-Allow-Credentials: true` unless false",
    ),
    AnnotationInfo("cors-max-age", _S, "Access-Control-Max-Age (1728000)"),
    AnnotationInfo(
        "whitelist-source-range",
        _S,
        "`typed_per_filter_config` `envoy.filters.http.rbac`: RBACPerRoute ALLOW on `remote_ip`",
    ),
    AnnotationInfo("allowlist-source-range", _S, "same as whitelist-source-range"),
    AnnotationInfo(
        "denylist-source-range",
        _S,
        "RBACPerRoute: DENY on `remote_ip` (with an "
        "allowlist: ALLOW if in the allowlist and not in the denylist)",
    ),
    AnnotationInfo("x-forwarded-prefix", _S, "Route `request_headers_to_add` X-Forwarded-Prefix"),
    AnnotationInfo(
        "custom-headers",
        _S,
        "Route `response_headers_to_add` from the named "
        "ConfigMap (`namespace/name` or `name`) of the same tenant",
    ),
    # --- fail closed -------------------------------------------------------------------------
    *(
        AnnotationInfo(name, _F, _AUTH)
        for name in (
            "auth-type",
            "auth-secret",
            "auth-secret-type",
            "auth-realm",
            "auth-url",
            "auth-method",
            "auth-signin",
            "auth-signin-redirect-param",
            "auth-response-headers",
            "auth-proxy-set-headers",
            "auth-request-redirect",
            "auth-cache-key",
            "auth-cache-duration",
            "auth-snippet",
            "auth-always-set-cookie",
            "auth-keepalive",
            "auth-keepalive-share-vars",
            "auth-keepalive-requests",
            "auth-keepalive-timeout",
            "satisfy",
        )
    ),
    *(
        AnnotationInfo(name, _F, _TLS_AUTH)
        for name in (
            "auth-tls-secret",
            "auth-tls-verify-depth",
            "auth-tls-verify-client",
            "auth-tls-error-page",
            "auth-tls-pass-certificate-to-upstream",
            "auth-tls-match-cn",
        )
    ),
    AnnotationInfo(
        "ssl-passthrough",
        _F,
        "TLS passthrough needs an SNI/TCP listener, not an HTTP route",
        switch=True,
    ),
    AnnotationInfo("enable-modsecurity", _F, "no WAF in the gateway yet", switch=True),
    AnnotationInfo("enable-owasp-core-rules", _F, "no WAF in the gateway yet", switch=True),
    AnnotationInfo("modsecurity-snippet", _F, "no WAF in the gateway yet"),
    # --- unsupported -------------------------------------------------------------------------
    AnnotationInfo("enable-global-auth", _U, "there is no global external authentication"),
    AnnotationInfo("modsecurity-transaction-id", _U, "no WAF in the gateway yet"),
    AnnotationInfo(
        "session-cookie-conditional-samesite-none",
        _U,
        "a SameSite attribute that depends on the user agent is not translated",
    ),
    AnnotationInfo("upstream-hash-by-subset", _U, "subset hashing has no Envoy equivalent"),
    AnnotationInfo("upstream-hash-by-subset-size", _U, "subset hashing has no Envoy equivalent"),
    AnnotationInfo(
        "limit-connections",
        _U,
        "Envoy has no per-client limit of concurrent connections on a route "
        "(connection_limit counts a whole listener)",
    ),
    *(
        AnnotationInfo(name, _U, _RATE)
        for name in (
            "limit-rpm",
            "limit-rate",
            "limit-rate-after",
            "limit-whitelist",
            "limit-allowlist",
            "global-rate-limit",
            "global-rate-limit-window",
            "global-rate-limit-key",
            "global-rate-limit-ignored-cidrs",
        )
    ),
    AnnotationInfo(
        "proxy-next-upstream-timeout",
        _U,
        "Envoy has no time budget across retries; proxy-next-upstream-tries bounds them",
    ),
    AnnotationInfo("client-body-buffer-size", _U, _BUFFER),
    AnnotationInfo("proxy-buffering", _U, _BUFFER),
    AnnotationInfo("proxy-buffers-number", _U, _BUFFER),
    AnnotationInfo("proxy-buffer-size", _U, _BUFFER),
    AnnotationInfo("proxy-max-temp-file-size", _U, _BUFFER),
    AnnotationInfo("proxy-request-buffering", _U, _BUFFER),
    AnnotationInfo(
        "proxy-http-version", _U, "Envoy picks the upstream HTTP version from backend-protocol"
    ),
    AnnotationInfo("proxy-cookie-domain", _U, "Set-Cookie rewriting is not translated"),
    AnnotationInfo("proxy-cookie-path", _U, "Set-Cookie rewriting is not translated"),
    AnnotationInfo("proxy-redirect-from", _U, "Location rewriting is not translated"),
    AnnotationInfo("proxy-redirect-to", _U, "Location rewriting is not translated"),
    *(
        AnnotationInfo(name, _U, _UPSTREAM_TLS)
        for name in (
            "proxy-ssl-secret",
            "proxy-ssl-ciphers",
            "proxy-ssl-name",
            "proxy-ssl-protocols",
            "proxy-ssl-verify",
            "proxy-ssl-verify-depth",
            "proxy-ssl-server-name",
        )
    ),
    AnnotationInfo("ssl-ciphers", _U, "downstream TLS settings belong to the listener"),
    AnnotationInfo(
        "ssl-prefer-server-ciphers", _U, "downstream TLS settings belong to the listener"
    ),
    AnnotationInfo("configuration-snippet", _U, _SNIPPET),
    AnnotationInfo("server-snippet", _U, _SNIPPET),
    AnnotationInfo("stream-snippet", _U, _SNIPPET),
    AnnotationInfo(
        "custom-http-errors",
        _S,
        "with default-backend (else a Warning, ignored): the path's routes get "
        "`typed_per_filter_config` `envoy.filters.http.custom_response`, whose matcher on the "
        "upstream status sends those codes by internal redirect (`redirect_policy`, path `/`, "
        "X-Code and a marker header) to a first route of the path: the default backend with "
        "the error-page headers (X-Original-URI from the request)",
    ),
    AnnotationInfo(
        "disable-proxy-intercept-errors", _S, "`true`: custom-http-errors is not applied"
    ),
    AnnotationInfo(
        "from-to-www-redirect", _U, "needs a second host, whose ownership is arbitrated separately"
    ),
    AnnotationInfo("server-alias", _U, "aliases are extra hosts; list them as Ingress rules"),
    AnnotationInfo("service-upstream", _U, "the gateway always balances over the endpoints"),
    AnnotationInfo("connection-proxy-header", _U, "Envoy manages upstream connections"),
    AnnotationInfo("http2-push-preload", _U, "HTTP/2 push is obsolete and not in Envoy"),
    AnnotationInfo("mirror-target", _U, "request mirroring is not translated yet"),
    AnnotationInfo("mirror-request-body", _U, "request mirroring is not translated yet"),
    AnnotationInfo("mirror-host", _U, "request mirroring is not translated yet"),
    AnnotationInfo("enable-access-log", _U, _OBSERVE),
    AnnotationInfo("enable-rewrite-log", _U, _OBSERVE),
    AnnotationInfo("enable-opentracing", _U, _OBSERVE),
    AnnotationInfo("opentracing-trust-incoming-span", _U, _OBSERVE),
    AnnotationInfo("enable-opentelemetry", _U, _OBSERVE),
    AnnotationInfo("opentelemetry-trust-incoming-span", _U, _OBSERVE),
    AnnotationInfo("opentelemetry-operation-name", _U, _OBSERVE),
    AnnotationInfo("enable-influxdb", _U, _OBSERVE),
    AnnotationInfo("influxdb-measurement", _U, _OBSERVE),
    AnnotationInfo("influxdb-port", _U, _OBSERVE),
    AnnotationInfo("influxdb-host", _U, _OBSERVE),
    AnnotationInfo("influxdb-server-name", _U, _OBSERVE),
)

CATALOG: Final[Mapping[str, AnnotationInfo]] = MappingProxyType({a.name: a for a in ENTRIES})


def lookup(name: str) -> AnnotationInfo | None:
    """The entry for a short annotation name (without the prefix)."""
    return CATALOG.get(name)
