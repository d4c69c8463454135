"""The route plan: what the tenant's routes are, in plain typed values, before any proto.

`ingress` builds it from Ingresses; `envoy` turns it into Envoy messages. Keeping the two apart
keeps the ingress-nginx semantics testable without protos and the proto code free of them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ripple_common.gateway_contract import CATCH_ALL_KEY
from ripple_translator.translate.annotations import (
    HashPolicy,
    IngressAnnotations,
    RateLimit,
    Retry,
    SourceRanges,
)
from ripple_translator.translate.model import Ingress


@dataclass(frozen=True, slots=True)
class Accepted:
    """An Ingress this controller serves, with its parsed annotations (no errors in them)."""

    ingress: Ingress
    settings: IngressAnnotations

    @property
    def is_canary(self) -> bool:
        return self.settings.canary is not None

    @property
    def label(self) -> str:
        return f"{self.ingress.meta.namespace}/{self.ingress.meta.name}"


# error_page: the gateway's default backend (RIPPLE_TRANSLATOR_DEFAULT_BACKEND_SERVICE), reached
# through the catch-all scope key, which is this value (`default_backend`). A request re-routed
# to its path's error page is marked with `gateway_contract.ERROR_PAGE_HEADER`.
GATEWAY_ERROR_PAGE = CATCH_ALL_KEY


class MatchKind(enum.StrEnum):
    EXACT = "exact"  # RouteMatch.path
    PATH_PREFIX = "path_prefix"  # RouteMatch.path_separated_prefix (Kubernetes Prefix)
    PREFIX = "prefix"  # RouteMatch.prefix (plain string prefix, as nginx)
    REGEX = "regex"  # RouteMatch.safe_regex (full match)


@dataclass(frozen=True, slots=True, order=True)
class PathMatch:
    kind: MatchKind
    value: str


@dataclass(frozen=True, slots=True)
class HeaderMatch:
    name: str
    value: str
    regex: bool = False


@dataclass(frozen=True, slots=True)
class WeightedTarget:
    cluster: str
    weight: int
    # Response headers appended when this target answers (the sticky canary's cookie).
    response_headers_append: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Forward:
    targets: tuple[WeightedTarget, ...]  # one target: a plain cluster
    idle_timeout_ms: int
    rewrite: tuple[str, str] | None = None  # (RE2 pattern, substitution)
    host_rewrite: str | None = None
    hash_policy: HashPolicy | None = None
    retry: Retry | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RedirectTo:
    code: int
    https: bool = False
    scheme: str | None = None
    host: str | None = None
    port: int | None = None
    path: str | None = None  # None: keep the request path and query
    # Keep the request's query string when `path` replaces the path (Gateway API).
    keep_query: bool = False
    # (RE2 pattern, substitution) applied to the request path (Gateway API ReplacePrefixMatch).
    rewrite: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Respond:
    status: int


Action = Forward | RedirectTo | Respond


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteSpec:
    name: str
    match: PathMatch
    action: Action
    headers: tuple[HeaderMatch, ...] = ()
    query_params: tuple[HeaderMatch, ...] = ()
    source_ranges: SourceRanges | None = None
    rate_limit: RateLimit | None = None
    body_limit_bytes: int | None = None
    # custom-http-errors: an upstream answer of one of these codes is replaced by the answer
    # of the same request, marked with `error_page_header` = `error_page`, re-routed.
    error_codes: tuple[int, ...] = ()
    error_page: str = ""
    # Set on the re-routed request (GATEWAY_ERROR_PAGE: the CUSTOM_ERRORS headers).
    error_page_headers: tuple[tuple[str, str], ...] = ()
    # Headers set (overwritten), appended, and removed, on the request and on the response.
    request_headers: tuple[tuple[str, str], ...] = ()
    response_headers: tuple[tuple[str, str], ...] = ()
    request_headers_append: tuple[tuple[str, str], ...] = ()
    response_headers_append: tuple[tuple[str, str], ...] = ()
    request_headers_remove: tuple[str, ...] = ()
    response_headers_remove: tuple[str, ...] = ()
    # Headers set from Envoy's substitution format (``%REQ(origin)%``), not escaped.
    request_headers_format: tuple[tuple[str, str], ...] = ()
    response_headers_format: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class VirtualHostSpec:
    host: str
    routes: tuple[RouteSpec, ...]
    # The host's retry policy (a route's own replaces it); None: no retries.
    retry: Retry | None = None
