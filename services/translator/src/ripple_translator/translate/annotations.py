"""ingress-nginx annotations (``nginx.ingress.kubernetes.io/*``) parsed into typed settings.

`parse_annotations` reads every annotation under the prefix: supported ones into
`IngressAnnotations`, the rest into diagnostics (see `catalog`). As ingress-nginx, an invalid
value of a supported annotation is dropped (a bad item of a list: that item; an empty value
counts as unset) with a Warning, and the rest is served; only where dropping it could widen
access or remove a protection (`FAIL_CLOSED_VALUES`: source ranges, rate and body limits,
force-ssl-redirect, canary) is an invalid value an Error and the Ingress left out.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, TypeVar
from urllib.parse import urlsplit

from ripple_translator.translate import validate
from ripple_translator.translate.catalog import PREFIX, Support, lookup
from ripple_translator.translate.diagnostics import (
    Diagnostic,
    ObjectRef,
    Reason,
    Severity,
    error,
    warning,
)

_T = TypeVar("_T")
_E = TypeVar("_E", bound=enum.StrEnum)
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_CONNECT_TIMEOUT_MS: Final = 5_000
DEFAULT_IDLE_TIMEOUT_MS: Final = 60_000
DEFAULT_CORS_METHODS: Final = "GET, PUT, POST, DELETE, PATCH, OPTIONS"
DEFAULT_CORS_HEADERS: Final = (
    "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,"
    "Range,Authorization"
)
DEFAULT_CORS_MAX_AGE: Final = 1_728_000
_TRUE: Final = frozenset({"1", "t", "true"})
_FALSE: Final = frozenset({"0", "f", "false"})
# ingress-nginx's cors parser: any scheme, a `*.` wildcard label, a port; or "null".
_ORIGIN = re.compile(r"^([a-z]+://(\*\.)?[A-Za-z0-9\-.]*(:\d+)?|null)$")
# ingress-nginx's validators of the verbatim cors-allow-methods/-headers/-expose-headers.
_CORS_METHODS = re.compile(r"^([A-Za-z]+,?\s?)+$")
_CORS_HEADERS = re.compile(r"^[A-Za-z0-9\-_, ]*$")
_CORS_EXPOSE = re.compile(r"^(([A-Za-z0-9\-_]+|\*),?\s?)+$")
_VHOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?$")
_HASH_VAR = re.compile(r"^\$\{?([a-z_][a-z0-9_]*)\}?$")
_REWRITE_GROUP = re.compile(r"\$(\d)|\$\{(\d)\}")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_REQUEST_URI: Final = "$request_uri"
DEFAULT_AFFINITY_COOKIE: Final = "INGRESSCOOKIE"
DEFAULT_NEXT_UPSTREAM: Final = "error timeout"
DEFAULT_NEXT_UPSTREAM_TRIES: Final = 3
# proxy-next-upstream-tries 0 means "every upstream" in nginx; Envoy needs a number.
UNLIMITED_RETRIES: Final = 10
DEFAULT_BURST_MULTIPLIER: Final = 5
MAX_BODY_BYTES: Final = 2**32 - 1  # Envoy's buffer limit is a uint32
_SIZE = re.compile(r"^(\d+)([kKmMgG]?)$")
_SIZE_UNITS: Final = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_NEXT_UPSTREAM_STATUS: Final = frozenset({500, 502, 503, 504, 403, 404, 429})
_NEXT_UPSTREAM_WORDS: Final = frozenset(
    {"error", "timeout", "invalid_header", "non_idempotent", "off"}
    | {f"http_{code}" for code in _NEXT_UPSTREAM_STATUS}
)
_SAMESITE: Final = {"none": "None", "lax": "Lax", "strict": "Strict"}
# Annotations whose invalid value leaves the Ingress out (an Error): serving without them
# could let in clients they keep out, lift a limit, or turn a canary into the primary.
FAIL_CLOSED_VALUES: Final = frozenset(
    {
        "whitelist-source-range",
        "allowlist-source-range",
        "denylist-source-range",
        "limit-rps",
        "limit-burst-multiplier",
        "proxy-body-size",
        "force-ssl-redirect",
        "canary",
    }
)


class BackendProtocol(enum.StrEnum):
    HTTP = "HTTP"
    HTTPS = "HTTPS"
    GRPC = "GRPC"
    GRPCS = "GRPCS"
    HTTP2 = "HTTP2"

    @property
    def tls(self) -> bool:
        return self in (BackendProtocol.HTTPS, BackendProtocol.GRPCS)

    @property
    def http2(self) -> bool:
        return self in (BackendProtocol.GRPC, BackendProtocol.GRPCS, BackendProtocol.HTTP2)


class LbPolicy(enum.StrEnum):
    ROUND_ROBIN = "round_robin"
    LEAST_REQUEST = "least_request"
    RING_HASH = "ring_hash"


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterSettings:
    """Upstream settings that live on the Envoy Cluster; a non-default one makes a variant."""

    tls: bool = False
    http2: bool = False
    lb_policy: LbPolicy = LbPolicy.ROUND_ROBIN
    connect_timeout_ms: int = DEFAULT_CONNECT_TIMEOUT_MS
    # TLS backends: the server name (SNI) sent upstream: upstream-vhost, else an ExternalName
    # Service's name; None: no SNI (nginx's proxy_ssl_server_name off).
    sni: str | None = None
    # A Service of type ExternalName: the DNS name the cluster resolves (not a variant: one
    # Service has one type), and the port it is reached on.
    external_name: str | None = None
    external_port: int = 0

    @property
    def variant(self) -> tuple[str, ...]:
        parts = []
        if self.http2:
            parts.append("h2")
        if self.tls:
            parts.append("tls")
        if self.lb_policy is not LbPolicy.ROUND_ROBIN:
            parts.append(self.lb_policy.value)
        if self.connect_timeout_ms != DEFAULT_CONNECT_TIMEOUT_MS:
            parts.append(f"connect={self.connect_timeout_ms}ms")
        if self.sni is not None:
            parts.append(f"sni={self.sni}")
        return tuple(parts)


class HashSource(enum.StrEnum):
    HEADER = "header"
    COOKIE = "cookie"
    SOURCE_IP = "source_ip"
    QUERY_PARAMETER = "query_parameter"


@dataclass(frozen=True, slots=True)
class HashPolicy:
    source: HashSource
    name: str = ""
    # A cookie Envoy makes when the request has none (affinity=cookie): its lifetime
    # (0: a session cookie), Path and other attributes. None: only hash an existing cookie.
    cookie_ttl_s: int | None = None
    cookie_path: str | None = None
    cookie_attributes: tuple[tuple[str, str], ...] = ()
    # affinity-mode persistent: the cookie names the endpoint itself (Envoy's stateful
    # session), so new endpoints never move it; no hashing.
    persistent: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Retry:
    """proxy-next-upstream: Envoy's retry conditions, status codes and retry count."""

    on: tuple[str, ...]
    status_codes: tuple[int, ...] = ()
    num_retries: int = DEFAULT_NEXT_UPSTREAM_TRIES - 1
    # nginx never passes a non-idempotent request (POST, LOCK, PATCH) to the next upstream
    # unless non_idempotent is listed.
    idempotent_only: bool = True


# ingress-nginx's default (proxy-next-upstream "error timeout", 3 tries): every host of an
# Ingress gets it; a route's own annotations replace it, NO_RETRY turns it off.
DEFAULT_RETRY: Final = Retry(on=("connect-failure", "refused-stream", "reset"))
NO_RETRY: Final = Retry(on=(), num_retries=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimit:
    """limit-rps: requests per second per client address, with a burst."""

    rps: int
    burst: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Redirect:
    """permanent-/temporal-redirect, as nginx's ``return CODE URL``: `location` is sent exactly
    as configured, followed by the request's path and query when it ended in ``$request_uri``.
    A path (permanent-redirect only) is made absolute with the request's scheme and host,
    unless `relative` (relative-redirects)."""

    location: str
    code: int
    keep_request_uri: bool = False
    relative: bool = False

    @property
    def is_path(self) -> bool:
        return self.location.startswith("/")


@dataclass(frozen=True, slots=True, kw_only=True)
class Canary:
    header: str | None = None
    header_value: str | None = None
    header_pattern: str | None = None
    cookie: str | None = None
    weight: int = 0
    weight_total: int = 100
    # affinity-canary-behavior sticky (the default): with the primary's affinity cookie, a
    # client once sent to the canary stays there; legacy: chosen again on every request.
    sticky: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Cors:
    """enable-cors as ingress-nginx's template: `allow_origins` ``("*",)`` gives every answer
    ``Access-Control-Allow-Origin: *``; else a request whose Origin matches one (``*.`` is one
    label) gets it echoed; none left (all invalid): no CORS header. Header values verbatim."""

    allow_origins: tuple[str, ...] = ("*",)
    allow_methods: str = DEFAULT_CORS_METHODS
    allow_headers: str = DEFAULT_CORS_HEADERS
    expose_headers: str = ""
    allow_credentials: bool = True
    max_age_s: int = DEFAULT_CORS_MAX_AGE


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceRanges:
    allow: tuple[IPNetwork, ...] = ()
    deny: tuple[IPNetwork, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class IngressAnnotations:
    use_regex: bool = False
    # RE2 substitution (``\1`` groups) for the matched part of the path.
    rewrite_target: str | None = None
    ssl_redirect: bool = True
    force_ssl_redirect: bool = False
    # The https redirect keeps a trailing slash of the path (ingress-nginx strips it).
    preserve_trailing_slash: bool = False
    redirect: Redirect | None = None
    app_root: str | None = None
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    idle_timeout_ms: int = DEFAULT_IDLE_TIMEOUT_MS
    upstream_vhost: str | None = None
    hash_policy: HashPolicy | None = None
    canary: Canary | None = None
    cors: Cors | None = None
    source_ranges: SourceRanges | None = None
    x_forwarded_prefix: str | None = None
    # The ConfigMap (namespace, name) whose entries become response headers.
    custom_headers: tuple[str, str] | None = None
    retry: Retry | None = None
    rate_limit: RateLimit | None = None
    # proxy-body-size: the largest request body, in bytes (None: no limit).
    body_limit_bytes: int | None = None
    # default-backend: a Service of the Ingress's namespace for what its rules do not match.
    default_backend: str | None = None
    # custom-http-errors: upstream answers of these codes go to the default backend.
    custom_http_errors: tuple[int, ...] = ()

    @property
    def regex_paths(self) -> bool:
        """ingress-nginx treats paths as regexes with use-regex, and also with rewrite-target."""
        return self.use_regex or self.rewrite_target is not None


@dataclass(frozen=True, slots=True)
class ParsedAnnotations:
    settings: IngressAnnotations
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return not any(d.severity is Severity.ERROR for d in self.diagnostics)


def parse_annotations(annotations: Mapping[str, str], ref: ObjectRef) -> ParsedAnnotations:
    """Parse the ingress-nginx annotations of the Ingress `ref`."""
    ours = {k[len(PREFIX) :]: v for k, v in annotations.items() if k.startswith(PREFIX)}
    reader = _Reader(ours, ref)
    is_canary = reader.boolean("canary", default=False)
    for name in sorted(ours):
        info = lookup(name)
        if info is None:
            reader.diag.append(
                warning(ref, Reason.UNKNOWN_ANNOTATION, f"unknown annotation {PREFIX}{name}")
            )
        elif is_canary and not info.canary:
            reader.diag.append(
                warning(
                    ref,
                    Reason.ANNOTATION_IGNORED,
                    f"{PREFIX}{name} is ignored on a canary Ingress: the primary Ingress's "
                    "setting applies",
                )
            )
        elif info.support is not Support.SUPPORTED:
            off = info.switch and ours[name].strip().lower() in (_FALSE | {"off"})
            make = error if info.support is Support.FAIL_CLOSED and not off else warning
            verdict = (
                "the Ingress is not served" if make is error else "the Ingress is served without it"
            )
            reader.diag.append(
                make(
                    ref,
                    Reason.UNSUPPORTED_ANNOTATION,
                    f"{PREFIX}{name} is not supported ({info.envoy}); {verdict}",
                )
            )
    if is_canary:
        settings = IngressAnnotations(
            canary=_canary(reader),
            cluster=ClusterSettings(lb_policy=_lb_policy(reader)),
        )
    else:
        settings = _primary(reader)
    return ParsedAnnotations(settings, tuple(reader.diag))


def _primary(r: _Reader) -> IngressAnnotations:
    canary_keys = sorted(k for k in r.values if k.startswith("canary-"))
    if canary_keys:
        r.diag.append(
            warning(
                r.ref,
                Reason.ANNOTATION_IGNORED,
                f"{', '.join(PREFIX + k for k in canary_keys)} ignored: the Ingress is not a "
                f'canary ({PREFIX}canary is not "true")',
            )
        )
    hash_policy = _hash_policy(r)
    affinity = _affinity(r)
    if affinity is not None and hash_policy is not None:
        r.diag.append(
            warning(
                r.ref,
                Reason.SETTING_CONFLICT,
                f"both {PREFIX}affinity and {PREFIX}upstream-hash-by are set; the affinity "
                "cookie wins, as in ingress-nginx",
            )
        )
    hash_policy = affinity or hash_policy
    balance = _lb_policy(r)  # parsed even when upstream-hash-by wins, to report bad values
    lb = LbPolicy.RING_HASH if hash_policy and not hash_policy.persistent else balance
    protocol = r.choice("backend-protocol", BackendProtocol, BackendProtocol.HTTP, upper=True)
    upstream_vhost = _upstream_vhost(r)
    read_ms = r.duration("proxy-read-timeout", DEFAULT_IDLE_TIMEOUT_MS)
    send_ms = r.duration("proxy-send-timeout", DEFAULT_IDLE_TIMEOUT_MS)
    return IngressAnnotations(
        use_regex=r.boolean("use-regex", default=False),
        rewrite_target=_rewrite_target(r),
        ssl_redirect=r.boolean("ssl-redirect", default=True),
        force_ssl_redirect=r.boolean("force-ssl-redirect", default=False),
        preserve_trailing_slash=r.boolean("preserve-trailing-slash", default=False),
        redirect=_redirect(r),
        app_root=_app_root(r),
        cluster=ClusterSettings(
            tls=protocol.tls,
            http2=protocol.http2,
            lb_policy=lb,
            connect_timeout_ms=r.duration("proxy-connect-timeout", DEFAULT_CONNECT_TIMEOUT_MS),
            sni=_sni(upstream_vhost) if protocol.tls else None,
        ),
        idle_timeout_ms=max(read_ms, send_ms),
        upstream_vhost=upstream_vhost,
        hash_policy=hash_policy,
        cors=_cors(r),
        source_ranges=_source_ranges(r),
        x_forwarded_prefix=_x_forwarded_prefix(r),
        custom_headers=_custom_headers(r),
        retry=_retry(r),
        rate_limit=_rate_limit(r),
        body_limit_bytes=r.convert("proxy-body-size", _body_size, None),
        default_backend=_default_backend(r),
        custom_http_errors=()
        if r.boolean("disable-proxy-intercept-errors", default=False)
        else _custom_http_errors(r),
    )


class _Reader:
    """Reads typed annotation values, recording an Error diagnostic for each invalid one."""

    __slots__ = ("diag", "empty", "ref", "values")

    def __init__(self, values: Mapping[str, str], ref: ObjectRef) -> None:
        self.values = values
        self.ref = ref
        self.diag: list[Diagnostic] = []
        self.empty: set[str] = set()  # empty values already reported

    def invalid(self, name: str, message: str) -> None:
        """An invalid value: an Error for `FAIL_CLOSED_VALUES`, else a Warning (dropped)."""
        if name in FAIL_CLOSED_VALUES:
            self.diag.append(
                error(
                    self.ref,
                    Reason.INVALID_ANNOTATION,
                    f"{PREFIX}{name}: {message}; the Ingress is not served",
                )
            )
        else:
            self.ignored(name, message)

    def ignored(self, name: str, message: str, *, what: str = "it is ignored") -> None:
        self.diag.append(
            warning(
                self.ref,
                Reason.INVALID_ANNOTATION,
                f"{PREFIX}{name}: {message}; {what}, the rest of the Ingress is served",
            )
        )

    def string(self, name: str) -> str | None:
        """The value, stripped; an empty value counts as unset (a Warning), as in
        ingress-nginx, except for `FAIL_CLOSED_VALUES`, where it stays invalid."""
        value = self.values.get(name)
        if value is None:
            return None
        value = value.strip()
        if not value and name not in FAIL_CLOSED_VALUES:
            if name not in self.empty:
                self.empty.add(name)
                self.ignored(name, "the value is empty", what="it counts as unset")
            return None
        return value

    def boolean(self, name: str, *, default: bool) -> bool:
        value = self.string(name)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        self.invalid(name, f'{value!r} is not "true" or "false"')
        return default

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        value = self.string(name)
        if value is None:
            return default
        try:
            number = int(value, 10)
        except ValueError:
            self.invalid(name, f"{value!r} is not an integer")
            return default
        if not low <= number <= high:
            self.invalid(name, f"{number} is not between {low} and {high}")
            return default
        return number

    def duration(self, name: str, default_ms: int) -> int:
        return self.convert(name, validate.parse_duration_ms, default_ms)

    def convert(self, name: str, parse: Callable[[str], _T], default: _T) -> _T:
        value = self.string(name)
        if value is None:
            return default
        try:
            return parse(value)
        except ValueError as exc:
            self.invalid(name, str(exc))
            return default

    def choice(self, name: str, kind: type[_E], default: _E, *, upper: bool = False) -> _E:
        value = self.string(name)
        if value is None:
            return default
        try:
            return kind(value.upper() if upper else value.lower())
        except ValueError:
            allowed = ", ".join(m.value for m in kind)
            self.invalid(name, f"{value!r} is not one of {allowed}")
            return default


def _lb_policy(r: _Reader) -> LbPolicy:
    value = r.string("load-balance")
    if value is None or value.lower() == "round_robin":
        return LbPolicy.ROUND_ROBIN
    if value.lower() == "ewma":
        return LbPolicy.LEAST_REQUEST
    r.invalid("load-balance", f"{value!r} is not round_robin or ewma")
    return LbPolicy.ROUND_ROBIN


def _hash_policy(r: _Reader) -> HashPolicy | None:
    value = r.string("upstream-hash-by")
    if value is None:
        return None
    m = _HASH_VAR.match(value)
    var = m.group(1) if m else ""
    policy: HashPolicy | None = None
    if var in ("request_uri", "uri"):
        policy = HashPolicy(HashSource.HEADER, ":path")
    elif var in ("host", "http_host"):
        policy = HashPolicy(HashSource.HEADER, ":authority")
    elif var in ("remote_addr", "binary_remote_addr"):
        policy = HashPolicy(HashSource.SOURCE_IP)
    elif var.startswith("http_") and len(var) > 5:
        policy = HashPolicy(HashSource.HEADER, var[5:].replace("_", "-"))
    elif var.startswith("cookie_") and len(var) > 7:
        policy = HashPolicy(HashSource.COOKIE, var[7:])
    elif var.startswith("arg_") and len(var) > 4:
        policy = HashPolicy(HashSource.QUERY_PARAMETER, var[4:])
    if policy is None:
        r.invalid(
            "upstream-hash-by",
            f"{value!r} is not one supported nginx variable ($request_uri, $uri, $host, "
            "$remote_addr, $http_NAME, $cookie_NAME or $arg_NAME)",
        )
    return policy


def _rewrite_target(r: _Reader) -> str | None:
    value = r.string("rewrite-target")
    if value is None:
        return None
    if not value.startswith("/"):
        r.invalid("rewrite-target", f"{value!r} must be a path starting with '/'")
        return None
    escaped = value.replace("\\", "\\\\")
    substituted = _REWRITE_GROUP.sub(lambda m: "\\" + (m.group(1) or m.group(2)), escaped)
    if "$" in substituted:
        r.invalid(
            "rewrite-target",
            f"{value!r} uses an nginx variable; only capture groups $1-$9 are supported",
        )
        return None
    if validate.check_header_value(value):
        r.invalid("rewrite-target", f"{value!r} holds a line break")
        return None
    return substituted


def _redirect(r: _Reader) -> Redirect | None:
    relative = r.boolean("relative-redirects", default=False)
    temporal, permanent = r.string("temporal-redirect"), r.string("permanent-redirect")
    if temporal and permanent:
        r.diag.append(
            warning(
                r.ref,
                Reason.SETTING_CONFLICT,
                f"both {PREFIX}temporal-redirect and {PREFIX}permanent-redirect are set; "
                "temporal-redirect wins, as in ingress-nginx",
            )
        )
    # ingress-nginx: a code out of range is its default (302 / 301).
    if temporal:
        code = r.integer("temporal-redirect-code", 302, low=300, high=307)
        return _redirect_to(r, "temporal-redirect", temporal, code=code, relative=relative)
    if permanent:
        code = r.integer("permanent-redirect-code", 301, low=300, high=308)
        return _redirect_to(r, "permanent-redirect", permanent, code=code, relative=relative)
    return None


def _redirect_to(r: _Reader, name: str, url: str, *, code: int, relative: bool) -> Redirect | None:
    keep_request_uri = url.endswith(_REQUEST_URI)
    base = url[: -len(_REQUEST_URI)] if keep_request_uri else url
    if "$" in base or validate.check_header_value(url) or any(c.isspace() for c in url):
        r.invalid(name, f"{url!r} uses an nginx variable other than a final $request_uri")
        return None
    try:
        parts = urlsplit(base)
        _ = parts.port
    except ValueError as exc:
        r.invalid(name, f"{url!r} is not a URL: {exc}")
        return None
    if parts.scheme:
        if parts.scheme not in ("http", "https") or not parts.hostname:
            r.invalid(name, f"{url!r} must be an http or https URL")
            return None
    elif name == "temporal-redirect":  # ingress-nginx: its scheme must be http(s)
        r.invalid(name, f"{url!r} must be an absolute http or https URL")
        return None
    elif not base.startswith("/") or base.startswith("//"):
        r.invalid(name, f"{url!r} must be an http or https URL or a path")
        return None
    return Redirect(location=base, code=code, keep_request_uri=keep_request_uri, relative=relative)


def _app_root(r: _Reader) -> str | None:
    value = r.string("app-root")
    if value is None:
        return None
    if not value.startswith("/") or value == "/" or validate.check_header_value(value):
        r.invalid("app-root", f"{value!r} must be a path other than '/'")
        return None
    return value


def _sni(vhost: str | None) -> str | None:
    """The server name of an upstream-vhost (without a port), for a TLS backend's SNI."""
    return None if vhost is None else vhost.partition(":")[0]  # _VHOST: host[:port]


def _upstream_vhost(r: _Reader) -> str | None:
    value = r.string("upstream-vhost")
    if value is None:
        return None
    if not _VHOST.match(value):
        r.invalid(
            "upstream-vhost", f"{value!r} is not a host name (nginx variables are not supported)"
        )
        return None
    return value


def _canary(r: _Reader) -> Canary:
    header = r.string("canary-by-header")
    if header is not None and validate.check_header_name(header, request=True):
        r.invalid("canary-by-header", f"{header!r} is not a header name")
        header = None
    header_value = r.string("canary-by-header-value")
    header_pattern = r.string("canary-by-header-pattern")
    if header_pattern is not None:
        problem = validate.check_re2(header_pattern)
        if problem:
            r.invalid("canary-by-header-pattern", problem)
            header_pattern = None
    if header is None and (header_value is not None or header_pattern is not None):
        r.diag.append(
            warning(
                r.ref,
                Reason.ANNOTATION_IGNORED,
                f"{PREFIX}canary-by-header-value/-pattern have no effect without "
                f"{PREFIX}canary-by-header",
            )
        )
    cookie = r.string("canary-by-cookie")
    if cookie is not None and validate.check_header_name(cookie, request=False):
        r.invalid("canary-by-cookie", f"{cookie!r} is not a cookie name")
        cookie = None
    total = r.integer("canary-weight-total", 100, low=1, high=1_000_000)
    weight = r.integer("canary-weight", 0, low=0, high=total)
    behavior = r.string("affinity-canary-behavior")
    if behavior is not None and behavior.lower() not in ("sticky", "legacy"):
        r.invalid("affinity-canary-behavior", f"{behavior!r} is not sticky or legacy")
        behavior = None
    return Canary(
        header=header,
        header_value=header_value if header else None,
        header_pattern=header_pattern if header and header_value is None else None,
        cookie=cookie,
        weight=weight,
        weight_total=total,
        sticky=behavior is None or behavior.lower() == "sticky",
    )


def _cors(r: _Reader) -> Cors | None:
    enabled = r.boolean("enable-cors", default=False)
    names = sorted(k for k in r.values if k.startswith("cors-"))
    if not enabled:
        if names:
            r.diag.append(
                warning(
                    r.ref,
                    Reason.ANNOTATION_IGNORED,
                    f"{', '.join(PREFIX + n for n in names)} ignored: {PREFIX}enable-cors is "
                    'not "true"',
                )
            )
        return None
    origins: tuple[str, ...] = ("*",)
    if r.string("cors-allow-origin") is not None:
        origins = _list(r, "cors-allow-origin", lambda o: o == "*" or _ORIGIN.match(o))
        if "*" in origins:
            origins = ("*",)
    return Cors(
        allow_origins=origins,
        allow_methods=_verbatim(r, "cors-allow-methods", _CORS_METHODS, DEFAULT_CORS_METHODS),
        allow_headers=_verbatim(r, "cors-allow-headers", _CORS_HEADERS, DEFAULT_CORS_HEADERS),
        expose_headers=_verbatim(r, "cors-expose-headers", _CORS_EXPOSE, ""),
        allow_credentials=r.boolean("cors-allow-credentials", default=True),
        max_age_s=r.integer("cors-max-age", DEFAULT_CORS_MAX_AGE, low=0, high=2**31 - 1),
    )


def _verbatim(r: _Reader, name: str, valid: re.Pattern[str], default: str) -> str:
    value = r.string(name)
    if value is None:
        return default
    if not valid.match(value):
        r.ignored(name, f"{value!r} is not a valid list", what="the default applies")
        return default
    return value


def _list(r: _Reader, name: str, valid: Callable[[str], object]) -> tuple[str, ...]:
    """A comma-separated list; bad items are dropped (a Warning), the rest kept."""
    value = r.string(name)
    if value is None:
        return ()
    items = tuple(item.strip() for item in value.split(",") if item.strip())
    bad = [item for item in items if not valid(item)]
    if bad:
        r.ignored(
            name,
            f"invalid item(s) {', '.join(repr(b) for b in bad)}",
            what="they are left out" if len(bad) > 1 else "it is left out",
        )
    return tuple(item for item in items if valid(item))


def _source_ranges(r: _Reader) -> SourceRanges | None:
    allow_name = "allowlist-source-range" if "allowlist-source-range" in r.values else None
    if "whitelist-source-range" in r.values:
        if allow_name and r.values[allow_name] != r.values["whitelist-source-range"]:
            r.diag.append(
                warning(
                    r.ref,
                    Reason.SETTING_CONFLICT,
                    f"{PREFIX}allowlist-source-range and {PREFIX}whitelist-source-range "
                    "differ; allowlist-source-range wins",
                )
            )
        allow_name = allow_name or "whitelist-source-range"
    none: tuple[IPNetwork, ...] = ()
    allow = r.convert(allow_name, validate.parse_cidrs, none) if allow_name else none
    deny = r.convert("denylist-source-range", validate.parse_cidrs, none)
    if not allow and not deny:
        return None
    return SourceRanges(allow=allow, deny=deny)


def _x_forwarded_prefix(r: _Reader) -> str | None:
    value = r.string("x-forwarded-prefix")
    if value is None:
        return None
    if not value or validate.check_header_value(value):
        r.invalid("x-forwarded-prefix", f"{value!r} is not a header value")
        return None
    return value


def _custom_headers(r: _Reader) -> tuple[str, str] | None:
    value = r.string("custom-headers")
    if value is None:
        return None
    namespace, _, name = value.rpartition("/")
    namespace = namespace or r.ref.namespace
    if not _K8S_NAME.match(namespace) or not _K8S_NAME.match(name):
        r.invalid("custom-headers", f"{value!r} is not a ConfigMap name or namespace/name")
        return None
    return (namespace, name)


def _affinity(r: _Reader) -> HashPolicy | None:
    """affinity: cookie, with the session-cookie-* settings: a cookie hash policy whose
    cookie Envoy makes when the request has none (ring hash over the endpoints)."""
    value = r.string("affinity")
    if value is not None and value.lower() != "cookie":
        r.invalid("affinity", f'{value!r} is not "cookie"')
        value = None
    if value is None:
        names = sorted(k for k in r.values if k.startswith(("session-cookie-", "affinity-")))
        if names:
            r.diag.append(
                warning(
                    r.ref,
                    Reason.ANNOTATION_IGNORED,
                    f"{', '.join(PREFIX + n for n in names)} ignored: {PREFIX}affinity is not "
                    'set to "cookie"',
                )
            )
        return None
    # An invalid setting is dropped (its default applies), the others kept.
    name = r.string("session-cookie-name") or DEFAULT_AFFINITY_COOKIE
    if validate.check_header_name(name, request=False):
        r.invalid("session-cookie-name", f"{name!r} is not a cookie name")
        name = DEFAULT_AFFINITY_COOKIE
    path = r.string("session-cookie-path")
    if path is not None and (not path.startswith("/") or _bad_attribute(path)):
        r.invalid("session-cookie-path", f"{path!r} is not a path")
        path = None
    ages = (
        r.integer("session-cookie-max-age", 0, low=0, high=2**31 - 1),
        r.integer("session-cookie-expires", 0, low=0, high=2**31 - 1),
    )
    attributes: list[tuple[str, str]] = []
    domain = r.string("session-cookie-domain")
    if domain is not None:
        if not _VHOST.match(domain.lstrip(".")) or ":" in domain:
            r.invalid("session-cookie-domain", f"{domain!r} is not a domain")
        else:
            attributes.append(("Domain", domain))
    samesite = r.string("session-cookie-samesite")
    if samesite is not None:
        if samesite.lower() not in _SAMESITE:
            r.invalid("session-cookie-samesite", f"{samesite!r} is not None, Lax or Strict")
        else:
            attributes.append(("SameSite", _SAMESITE[samesite.lower()]))
    if r.boolean("session-cookie-secure", default=False):
        attributes.append(("Secure", ""))
    r.boolean("session-cookie-change-on-failure", default=False)  # validated; see the docs
    mode = r.string("affinity-mode")
    if mode is not None and mode.lower() not in ("balanced", "persistent"):
        r.invalid("affinity-mode", f"{mode!r} is not balanced or persistent")
    persistent = mode is not None and mode.lower() == "persistent"
    return HashPolicy(
        HashSource.COOKIE,
        name,
        cookie_ttl_s=ages[0] or ages[1],
        cookie_path=path,
        cookie_attributes=tuple(attributes),
        persistent=persistent,
    )


def _bad_attribute(value: str) -> bool:
    return ";" in value or validate.check_header_value(value) is not None


def _retry(r: _Reader) -> Retry | None:
    """proxy-next-upstream(-tries, -timeout): the route's retry policy; None without them
    (the host's DEFAULT_RETRY applies)."""
    names = ("proxy-next-upstream", "proxy-next-upstream-tries", "proxy-next-upstream-timeout")
    if not any(n in r.values for n in names):
        return None
    tries = r.integer("proxy-next-upstream-tries", DEFAULT_NEXT_UPSTREAM_TRIES, low=0, high=100)
    words = (r.string("proxy-next-upstream") or DEFAULT_NEXT_UPSTREAM).split()
    bad = [w for w in words if w not in _NEXT_UPSTREAM_WORDS]
    if bad or not words:
        r.invalid(
            "proxy-next-upstream",
            f"{' '.join(bad) or 'nothing'} is not among {', '.join(sorted(_NEXT_UPSTREAM_WORDS))}",
        )
        return None
    if "off" in words or tries == 1:
        return NO_RETRY
    on: set[str] = set()
    if "error" in words or "timeout" in words:
        on |= {"connect-failure", "refused-stream", "reset"}
    if "invalid_header" in words:
        on.add("reset")
    codes = sorted(int(w[5:]) for w in words if w.startswith("http_"))
    if codes:
        on.add("retriable-status-codes")
    if not on:
        return NO_RETRY  # only non_idempotent: nothing to retry on
    return Retry(
        on=tuple(sorted(on)),
        status_codes=tuple(codes),
        num_retries=UNLIMITED_RETRIES if tries == 0 else tries - 1,
        idempotent_only="non_idempotent" not in words,
    )


def _rate_limit(r: _Reader) -> RateLimit | None:
    rps = r.integer("limit-rps", 0, low=0, high=1_000_000)
    multiplier = r.integer("limit-burst-multiplier", DEFAULT_BURST_MULTIPLIER, low=1, high=1_000)
    if rps == 0:
        if "limit-burst-multiplier" in r.values:
            r.diag.append(
                warning(
                    r.ref,
                    Reason.ANNOTATION_IGNORED,
                    f"{PREFIX}limit-burst-multiplier ignored: {PREFIX}limit-rps is not set",
                )
            )
        return None
    return RateLimit(rps=rps, burst=rps * multiplier)


def _body_size(value: str) -> int | None:
    """nginx's client_max_body_size: bytes, k, m or g (0: no limit -> None)."""
    m = _SIZE.match(value)
    if m is None:
        raise ValueError(f"{value!r} is not a size (a number with k, m or g)")
    size = int(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]
    if size > MAX_BODY_BYTES:
        raise ValueError(f"{value!r} is larger than Envoy's limit of 4 GiB - 1")
    return size or None


def _custom_http_errors(r: _Reader) -> tuple[int, ...]:
    """custom-http-errors: HTTP error codes (400-599), bad items dropped, duplicates once."""
    codes = _list(r, "custom-http-errors", lambda c: c.isdigit() and 400 <= int(c) <= 599)
    return tuple(sorted({int(c) for c in codes}))


def _default_backend(r: _Reader) -> str | None:
    value = r.string("default-backend")
    if value is None:
        return None
    if not _K8S_NAME.match(value) or "/" in value:
        r.invalid("default-backend", f"{value!r} is not a Service name (of this namespace)")
        return None
    return value
