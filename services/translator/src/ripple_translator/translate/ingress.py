"""Ingresses to a route plan, with ingress-nginx's semantics.

Per host, over every served Ingress of the tenant:

- Paths: Exact -> exact match; Prefix -> Kubernetes element-wise prefix
  (``path_separated_prefix``; a trailing ``/`` is ignored); ImplementationSpecific -> plain
  string prefix, as nginx's ``location /path``. If any Ingress of the host sets use-regex or
  rewrite-target, every path of the host is a case-insensitive regex anchored at the start
  (ingress-nginx enforces ``~*`` host-wide), whatever its pathType.
- Order: Exact first, then longest path first (regex mode: longest first), the Ingress's
  defaultBackend last; within one path: the https redirect, canary header/cookie routes, then
  the path's own route.
- Conflicts: one host+path has one owner, the oldest Ingress (creationTimestamp, then
  namespace/name); the others get a PathConflict warning for that path only.
- A backend whose Service or port does not exist answers 503 (as ingress-nginx does) instead of
  being left out, so the request does not fall through to a shorter path of another backend.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from ripple_common.gateway_contract import ERROR_PAGE_HEADER
from ripple_translator.translate import validate
from ripple_translator.translate.annotations import (
    DEFAULT_RETRY,
    ClusterSettings,
    Cors,
    HashSource,
    IngressAnnotations,
    LbPolicy,
    Redirect,
)
from ripple_translator.translate.backends import ClusterTarget, Inventory, Unresolved
from ripple_translator.translate.catalog import PREFIX
from ripple_translator.translate.diagnostics import Diagnostic, Reason, error, warning
from ripple_translator.translate.model import (
    Backend,
    ConfigMap,
    IngressPath,
    PathType,
    ServiceBackend,
)
from ripple_translator.translate.plan import (
    GATEWAY_ERROR_PAGE,
    Accepted,
    Action,
    Forward,
    HeaderMatch,
    MatchKind,
    PathMatch,
    RedirectTo,
    Respond,
    RouteSpec,
    VirtualHostSpec,
    WeightedTarget,
)

_GROUP_REF = re.compile(r"\\(\d)")
_ROOT = PathMatch(MatchKind.PREFIX, "/")


@dataclass(frozen=True, slots=True)
class RoutePlan:
    virtual_hosts: tuple[VirtualHostSpec, ...]
    targets: tuple[ClusterTarget, ...]
    diagnostics: tuple[Diagnostic, ...]


@dataclass(frozen=True, slots=True)
class _Candidate:
    host: str
    source: Accepted
    path: IngressPath | None  # None: the Ingress's defaultBackend
    backend: Backend

    @property
    def raw_path(self) -> str:
        return "/" if self.path is None else self.path.path


def check_paths(acc: Accepted, *, max_program_size: int) -> list[Diagnostic]:
    """Errors in an Ingress's own paths (judged by its own use-regex/rewrite-target)."""
    problems: list[Diagnostic] = []
    settings = acc.settings
    ref = acc.ingress.meta.ref
    for rule in acc.ingress.rules:
        for p in rule.paths:
            if settings.regex_paths:
                problem = validate.check_re2(p.path) or validate.check_program_size(
                    regex_match(p.path).value, max_program_size
                )
                if problem is None and settings.rewrite_target is not None:
                    problem = _check_group_refs(p.path, settings.rewrite_target)
            else:
                problem = _check_plain_path(p)
            if problem:
                problems.append(
                    error(ref, Reason.INVALID_PATH, f"{problem}; the Ingress is not served")
                )
    return problems


def plan_routes(
    *,
    tenant: str,
    ingresses: Sequence[Accepted],
    inventory: Inventory,
    config_maps: Mapping[tuple[str, str], ConfigMap],
    has_certificate: Callable[[str], bool],
    host_allowed: Callable[[str], bool],
    max_program_size: int,
    gateway_default_backend: bool = False,
) -> RoutePlan:
    """Plan the routes of the served Ingresses (sorted oldest first, paths already checked);
    `gateway_default_backend`: the gateway has one (custom-http-errors' page by default)."""
    diags: list[Diagnostic] = []
    primaries: dict[str, list[_Candidate]] = defaultdict(list)
    canaries: dict[str, list[_Candidate]] = defaultdict(list)
    for acc in ingresses:
        for cand in _candidates(acc, host_allowed, diags, inventory):
            (canaries if acc.is_canary else primaries)[cand.host].append(cand)

    builder = _HostBuilder(
        tenant=tenant,
        inventory=inventory,
        config_maps=config_maps,
        has_certificate=has_certificate,
        max_program_size=max_program_size,
        diags=diags,
        gateway_default_backend=gateway_default_backend,
    )
    vhosts = []
    for host in sorted(primaries):
        routes = builder.host(host, primaries[host], canaries.pop(host, []))
        if routes:
            vhosts.append(VirtualHostSpec(host, tuple(routes), retry=DEFAULT_RETRY))
    for _, orphans in sorted(canaries.items()):
        for cand in orphans:
            diags.append(_no_primary(cand))
    return RoutePlan(
        virtual_hosts=tuple(vhosts),
        targets=tuple(builder.targets[k] for k in sorted(builder.targets)),
        diagnostics=tuple(diags),
    )


def _candidates(
    acc: Accepted,
    host_allowed: Callable[[str], bool],
    diags: list[Diagnostic],
    inventory: Inventory,
) -> Iterator[_Candidate]:
    ref = acc.ingress.meta.ref
    hosts: list[str] = []
    for rule in acc.ingress.rules:
        host = usable_host(rule.host, acc, host_allowed, diags)
        if host is None:
            continue
        if host not in hosts:
            hosts.append(host)
        for p in rule.paths:
            yield _Candidate(host, acc, p, p.backend)
    default = acc.ingress.default_backend or annotated_default(acc, inventory)
    if default is not None:
        if not hosts:
            diags.append(
                warning(
                    ref,
                    Reason.CATCH_ALL_UNSUPPORTED,
                    "spec.defaultBackend on an Ingress without hosts would catch every host "
                    "of the gateway; it is left out",
                )
            )
        for host in hosts:
            yield _Candidate(host, acc, None, default)


def annotated_default(acc: Accepted, inventory: Inventory) -> ServiceBackend | None:
    """The default-backend annotation's Service at its first port (as ingress-nginx)."""
    name = acc.settings.default_backend
    if name is None:
        return None
    service = inventory.services.get((acc.ingress.meta.namespace, name))
    ports = service.ports if service is not None else ()
    return ServiceBackend(name, ports[0].port if ports else 80)


def usable_host(
    host: str | None,
    acc: Accepted,
    host_allowed: Callable[[str], bool],
    diags: list[Diagnostic],
) -> str | None:
    """The rule's host if this tenant may serve it with scoped routes; else a diagnostic."""
    ref = acc.ingress.meta.ref
    if host is None:
        diags.append(
            warning(
                ref,
                Reason.CATCH_ALL_UNSUPPORTED,
                "a rule without a host would catch every host of the gateway; it is left out",
            )
        )
        return None
    problem = validate.check_host(host)
    if problem:
        diags.append(error(ref, Reason.INVALID_HOST, f"{problem}; its rule is left out"))
        return None
    if not host_allowed(host):
        diags.append(
            error(
                ref,
                Reason.HOST_NOT_ALLOWED,
                f"host {host} belongs to another tenant or is outside this tenant's domains; "
                "its rules are left out",
            )
        )
        return None
    return host


class _HostBuilder:
    """Builds the routes of one host at a time; collects cluster targets and diagnostics."""

    __slots__ = (
        "config_maps",
        "diags",
        "gateway_default_backend",
        "has_certificate",
        "inventory",
        "max_program_size",
        "targets",
        "tenant",
    )

    def __init__(
        self,
        *,
        tenant: str,
        inventory: Inventory,
        config_maps: Mapping[tuple[str, str], ConfigMap],
        has_certificate: Callable[[str], bool],
        max_program_size: int,
        diags: list[Diagnostic],
        gateway_default_backend: bool = False,
    ) -> None:
        self.tenant = tenant
        self.gateway_default_backend = gateway_default_backend
        self.max_program_size = max_program_size
        self.inventory = inventory
        self.config_maps = config_maps
        self.has_certificate = has_certificate
        self.diags = diags
        self.targets: dict[str, ClusterTarget] = {}

    def host(
        self, host: str, primaries: list[_Candidate], canaries: list[_Candidate]
    ) -> list[RouteSpec]:
        regex_mode = next((c.source for c in primaries if c.source.settings.regex_paths), None)
        winners: dict[tuple[bool, PathMatch], _Candidate] = {}
        for cand in primaries:
            match = self._match(cand, regex_mode)
            if match is None:
                continue
            key = (cand.path is None, match)
            owner = winners.get(key)
            if owner is None:
                winners[key] = cand
            else:
                self.diags.append(_conflict(cand, owner))
        chosen: dict[tuple[bool, PathMatch], _Candidate] = {}
        for cand in canaries:
            match = self._match(cand, regex_mode)
            if match is None:
                continue
            key = (cand.path is None, match)
            if key not in winners:
                self.diags.append(_no_primary(cand))
            elif key in chosen:
                self.diags.append(
                    warning(
                        cand.source.ingress.meta.ref,
                        Reason.CANARY_CONFLICT,
                        f"host {host} path {cand.raw_path} already has the canary "
                        f"{chosen[key].source.label}; only one canary per path is supported",
                    )
                )
            else:
                chosen[key] = cand

        routes = self._app_root(host, winners.values())
        ordered = sorted(winners.items(), key=lambda kv: _order(kv[0], kv[1], regex_mode))
        # ingress-nginx redirects to https a host in a tls section even when its Secret is
        # missing or bad (it serves its default certificate then).
        tls = self.has_certificate(host) or any(
            host in t.hosts for c in primaries for t in c.source.ingress.tls
        )
        for key, cand in ordered:
            path_routes = self._path_routes(host, key[1], cand, chosen.get(key), tls=tls)
            routes.extend(_with_cors(path_routes, cand.source.settings.cors))
        return routes

    def _match(self, cand: _Candidate, regex_mode: Accepted | None) -> PathMatch | None:
        if cand.path is None:
            return _ROOT
        if regex_mode is None:
            return plain_match(cand.path)
        match = regex_match(cand.path.path)
        if not cand.source.settings.regex_paths:
            problem = validate.check_re2(cand.path.path) or validate.check_program_size(
                match.value, self.max_program_size
            )
            if problem:
                self.diags.append(
                    error(
                        cand.source.ingress.meta.ref,
                        Reason.INVALID_PATH,
                        f"host {cand.host} matches paths as regexes (use-regex or "
                        f"rewrite-target on Ingress {regex_mode.label}), and {problem}; "
                        "this path is left out",
                    )
                )
                return None
        return match

    def _app_root(self, host: str, winners: Iterable[_Candidate]) -> list[RouteSpec]:
        sources = {c.source.label: c.source for c in winners}.values()
        owner: Accepted | None = None
        for source in sorted(sources, key=lambda a: a.ingress.meta.age_key):
            if source.settings.app_root is None:
                continue
            if owner is None:
                owner = source
            elif source.settings.app_root != owner.settings.app_root:
                self.diags.append(
                    warning(
                        source.ingress.meta.ref,
                        Reason.SETTING_CONFLICT,
                        f"{PREFIX}app-root of host {host} is already set by the older Ingress "
                        f"{owner.label}; this one is ignored",
                    )
                )
        if owner is None or owner.settings.app_root is None:
            return []
        return [
            RouteSpec(
                name=owner.label,
                match=PathMatch(MatchKind.EXACT, "/"),
                action=RedirectTo(code=302, path=owner.settings.app_root),
                source_ranges=owner.settings.source_ranges,
            )
        ]

    def _path_routes(
        self, host: str, match: PathMatch, cand: _Candidate, canary: _Candidate | None, *, tls: bool
    ) -> list[RouteSpec]:
        acc = cand.source
        s = acc.settings
        common = _Common(
            match=match,
            settings=s,
            response_headers=self._custom_headers(acc),
        )
        routes: list[RouteSpec] = []
        if s.force_ssl_redirect or (s.ssl_redirect and tls):
            routes.extend(
                _https_redirects(
                    common,
                    acc.label,
                    preserve_trailing_slash=s.preserve_trailing_slash,
                    root=cand.raw_path == "/",
                )
            )
        if s.redirect is not None:
            if canary is not None:
                self.diags.append(
                    warning(
                        canary.source.ingress.meta.ref,
                        Reason.ANNOTATION_IGNORED,
                        f"the primary Ingress {acc.label} redirects host {host} path "
                        f"{cand.raw_path}; the canary gets no traffic",
                    )
                )
            location = _location(s.redirect)
            routes.append(common.route(acc.label, Respond(s.redirect.code), location=location))
            return routes

        fallback = annotated_default(acc, self.inventory)
        primary = self._resolve(cand, s.cluster, fallback=fallback is not None)
        error_page = False
        if fallback is not None and (primary is None or not self._has_endpoints(primary)):
            # ingress-nginx: the default-backend serves a path whose Service has no endpoint
            # (its 503 error page, with the X-Code headers).
            backup = self._resolve(replace(cand, backend=fallback), s.cluster)
            if backup is not None:
                primary, error_page = backup, True
        to_primary = self._forward(cand, primary)
        if canary is not None:
            to_primary = self._canary_routes(
                common, cand, canary, primary=primary, to_primary=to_primary, routes=routes
            )
        route = common.route(acc.label, to_primary)
        routes.append(_error_page(route, cand, code=503) if error_page else route)
        return self._custom_errors(common, cand, fallback, routes)

    def _custom_errors(
        self,
        common: _Common,
        cand: _Candidate,
        fallback: ServiceBackend | None,
        routes: list[RouteSpec],
    ) -> list[RouteSpec]:
        """custom-http-errors: the path's routes hand an upstream answer of those codes to the
        gateway's custom_response filter, which re-routes the request (at ``/``, marked with
        `ERROR_PAGE_HEADER`) to a first route of the path: the default backend, as
        ingress-nginx's ``error_page CODE = @custom_...`` location."""
        acc = cand.source
        codes = acc.settings.custom_http_errors
        if not codes:
            return routes
        target = None
        if fallback is None and self.gateway_default_backend:
            return _gateway_error_page(cand, codes, routes)
        if fallback is None:
            self.diags.append(
                warning(
                    acc.ingress.meta.ref,
                    Reason.ANNOTATION_IGNORED,
                    f"{PREFIX}custom-http-errors needs {PREFIX}default-backend (the gateway "
                    "has no default backend configured); ignored",
                )
            )
        else:
            target = self._resolve(replace(cand, backend=fallback), acc.settings.cluster)
        if target is None:
            return routes
        forward = self._forward(cand, target)
        if isinstance(forward, Forward):
            forward = replace(forward, hash_policy=None)
        page = common.route(acc.label, forward, HeaderMatch(ERROR_PAGE_HEADER, acc.label))
        page = replace(
            _error_page(page, cand, code=None), request_headers_remove=(ERROR_PAGE_HEADER,)
        )
        # The re-routed request is a copy of this one (at /): X-Original-URI rides along.
        original = ("X-Original-URI", "%REQ(:path)%")
        marked = [
            replace(
                r,
                error_codes=codes,
                error_page=acc.label,
                request_headers_format=(*r.request_headers_format, original),
            )
            if isinstance(r.action, Forward)
            else r
            for r in routes
        ]
        return [page, *marked]

    def _canary_routes(
        self,
        common: _Common,
        cand: _Candidate,
        canary: _Candidate,
        *,
        primary: ClusterTarget | None,
        to_primary: Action,
        routes: list[RouteSpec],
    ) -> Action:
        """Append the canary's header/cookie routes (first, with affinity-canary-behavior
        sticky, the route keeping the canary's clients); return the path's own action, split
        by the canary's weight."""
        acc, s = cand.source, cand.source.settings
        rules = canary.source.settings.canary
        if rules is None:
            return to_primary
        lb = canary.source.settings.cluster.lb_policy
        if s.cluster.lb_policy is LbPolicy.RING_HASH:
            lb = LbPolicy.RING_HASH  # the primary's affinity/hash holds in the canary too
        canary_target = self._resolve(canary, replace(s.cluster, lb_policy=lb))
        if canary_target is not None:
            to_canary = self._forward(cand, canary_target)
            name = canary.source.label
            sticky = _sticky_canary(s, cand) if rules.sticky else None
            marks = (("Set-Cookie", sticky[1]),) if sticky else ()

            def canary_route(*headers: HeaderMatch) -> RouteSpec:
                route = common.route(name, to_canary, *headers)
                return replace(
                    route, response_headers_append=(*route.response_headers_append, *marks)
                )

            if sticky is not None:  # a client the canary answered stays there
                routes.append(canary_route(_cookie_match(sticky[0], "1")))
            if rules.header is not None:
                if rules.header_value is not None:
                    header = HeaderMatch(rules.header, rules.header_value)
                    routes.append(canary_route(header))
                elif rules.header_pattern is not None:
                    pattern = f".*(?:{rules.header_pattern}).*"
                    if self._regex_fits(canary, "canary-by-header-pattern", pattern):
                        header = HeaderMatch(rules.header, pattern, regex=True)
                        routes.append(canary_route(header))
                else:
                    routes.append(canary_route(HeaderMatch(rules.header, "always")))
                    routes.append(
                        common.route(acc.label, to_primary, HeaderMatch(rules.header, "never"))
                    )
            if rules.cookie is not None and self._regex_fits(
                canary, "canary-by-cookie", _cookie_match(rules.cookie, "always").value
            ):
                routes.append(canary_route(_cookie_match(rules.cookie, "always")))
                routes.append(
                    common.route(acc.label, to_primary, _cookie_match(rules.cookie, "never"))
                )
            if rules.weight >= rules.weight_total:
                to_primary = to_canary
            elif rules.weight > 0 and primary is not None:
                to_primary = self._forward(
                    cand,
                    primary,
                    canary=(canary_target, rules.weight, rules.weight_total),
                    canary_headers=marks,
                )
        return to_primary

    def _regex_fits(self, cand: _Candidate, annotation: str, regex: str) -> bool:
        problem = validate.check_program_size(regex, self.max_program_size)
        if problem:
            self.diags.append(
                warning(
                    cand.source.ingress.meta.ref,
                    Reason.INVALID_ANNOTATION,
                    f"{PREFIX}{annotation}: {problem}; that canary rule is left out",
                )
            )
        return problem is None

    def _has_endpoints(self, target: ClusterTarget) -> bool:
        localities, _ = self.inventory.endpoints(target)
        return any(loc.addresses for loc in localities)

    def _resolve(
        self, cand: _Candidate, settings: ClusterSettings, *, fallback: bool = False
    ) -> ClusterTarget | None:
        result = self.inventory.resolve(
            tenant=self.tenant,
            namespace=cand.source.ingress.meta.namespace,
            backend=cand.backend,
            settings=settings,
        )
        if isinstance(result, Unresolved):
            what = "the canary gets no traffic" if cand.source.is_canary else "it answers 503"
            if fallback:
                what = f"{PREFIX}default-backend serves it"
            self.diags.append(
                warning(
                    cand.source.ingress.meta.ref,
                    result.reason,
                    f"host {cand.host} path {cand.raw_path}: {result.message}; {what}",
                )
            )
            return None
        self.targets[result.cluster] = result
        return result

    def _forward(
        self,
        cand: _Candidate,
        target: ClusterTarget | None,
        *,
        canary: tuple[ClusterTarget, int, int] | None = None,
        canary_headers: tuple[tuple[str, str], ...] = (),
    ) -> Action:
        """Forward to `target` with the primary Ingress's route settings (or 503 without one)."""
        if target is None:
            return Respond(503)
        s = cand.source.settings
        if canary is None:
            targets: tuple[WeightedTarget, ...] = (WeightedTarget(target.cluster, 1),)
        else:
            other, weight, total = canary
            targets = (
                WeightedTarget(target.cluster, total - weight),
                WeightedTarget(other.cluster, weight, response_headers_append=canary_headers),
            )
        rewrite = None
        if s.rewrite_target is not None:
            rewrite = (f"(?i)^(?:{cand.raw_path})", s.rewrite_target)
        hash_policy = s.hash_policy
        makes_cookie = hash_policy is not None and hash_policy.cookie_ttl_s is not None
        if hash_policy is not None and makes_cookie and hash_policy.cookie_path is None:
            # nginx: the location's path
            path = "/" if s.regex_paths else cand.raw_path
            hash_policy = replace(hash_policy, cookie_path=path)
        return Forward(
            targets=targets,
            idle_timeout_ms=s.idle_timeout_ms,
            rewrite=rewrite,
            host_rewrite=s.upstream_vhost,
            hash_policy=hash_policy,
            retry=s.retry,
        )

    def _custom_headers(self, acc: Accepted) -> tuple[tuple[str, str], ...]:
        ref = acc.settings.custom_headers
        if ref is None:
            return ()
        cm = self.config_maps.get(ref)
        meta = acc.ingress.meta.ref
        if cm is None:
            self.diags.append(
                warning(
                    meta,
                    Reason.CONFIG_MAP_NOT_FOUND,
                    f"{PREFIX}custom-headers: ConfigMap {ref[0]}/{ref[1]} is not in this "
                    "tenant; no headers are added",
                )
            )
            return ()
        headers = []
        for name, value in sorted(cm.data.items()):
            problem = validate.check_header_name(name, request=True)
            problem = problem or validate.check_header_value(value)
            if problem is None and name.startswith(":"):
                problem = f"{name!r} is a pseudo-header"
            if problem:
                self.diags.append(
                    warning(
                        meta,
                        Reason.INVALID_ANNOTATION,
                        f"{PREFIX}custom-headers ConfigMap {ref[0]}/{ref[1]}: {problem}; "
                        "that header is not added",
                    )
                )
                continue
            headers.append((name, value))
        return tuple(headers)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Common:
    """What every route of one path shares: its match and per-route filter settings."""

    match: PathMatch
    settings: IngressAnnotations
    response_headers: tuple[tuple[str, str], ...]

    def route(
        self, name: str, action: Action, *headers: HeaderMatch, location: str | None = None
    ) -> RouteSpec:
        """A route of the path; `location`: a Location header in Envoy's substitution format."""
        prefix = self.settings.x_forwarded_prefix
        return RouteSpec(
            name=name,
            match=self.match,
            action=action,
            headers=headers,
            response_headers_format=(("Location", location),) if location else (),
            source_ranges=self.settings.source_ranges,
            rate_limit=self.settings.rate_limit,
            body_limit_bytes=self.settings.body_limit_bytes,
            request_headers=(("X-Forwarded-Prefix", prefix),) if prefix else (),
            response_headers=self.response_headers,
        )


def _sticky_canary(s: IngressAnnotations, cand: _Candidate) -> tuple[str, str] | None:
    """affinity-canary-behavior sticky: (the marker cookie's name, its Set-Cookie value) when
    the primary has an affinity cookie (ingress-nginx keeps a client whose affinity cookie
    points into the canary there)."""
    policy = s.hash_policy
    if policy is None or policy.source is not HashSource.COOKIE or policy.cookie_ttl_s is None:
        return None
    name = f"{policy.name}-canary"
    path = policy.cookie_path or ("/" if s.regex_paths else cand.raw_path)
    value = f"{name}=1; Path={path}"
    if policy.cookie_ttl_s:
        value += f"; Max-Age={policy.cookie_ttl_s}"
    return name, value


def _gateway_error_page(
    cand: _Candidate, codes: tuple[int, ...], routes: list[RouteSpec]
) -> list[RouteSpec]:
    """custom-http-errors without default-backend: the gateway's default backend is the error
    page (ingress-nginx's ``@custom_upstream-default-backend_CODE``), reached through the
    catch-all scope with the CUSTOM_ERRORS headers (`_error_page`'s)."""
    meta = cand.source.ingress.meta
    backend = cand.backend
    service, port = (
        (backend.service, str(backend.port)) if isinstance(backend, ServiceBackend) else ("", "")
    )
    headers = (
        ("X-Namespace", meta.namespace),
        ("X-Ingress-Name", meta.name),
        ("X-Service-Name", service),
        ("X-Service-Port", port),
    )
    original = ("X-Original-URI", "%REQ(:path)%")
    return [
        replace(
            r,
            error_codes=codes,
            error_page=GATEWAY_ERROR_PAGE,
            error_page_headers=headers,
            request_headers_format=(*r.request_headers_format, original),
        )
        if isinstance(r.action, Forward)
        else r
        for r in routes
    ]


def _error_page(route: RouteSpec, cand: _Candidate, *, code: int | None) -> RouteSpec:
    """ingress-nginx's custom error location (nginx.tmpl, define "CUSTOM_ERRORS"): the default
    backend gets the request at ``/`` with X-Code, X-Format (the Accept header),
    X-Original-URI, X-Namespace, X-Ingress-Name, X-Service-Name and X-Service-Port (X-Request-ID
    is the request's, as every upstream gets it). `code` None: X-Code and X-Original-URI come
    with the re-routed request (custom-http-errors)."""
    if not isinstance(route.action, Forward):
        return route
    meta = cand.source.ingress.meta
    backend = cand.backend
    service, port = ("", "")
    if isinstance(backend, ServiceBackend):
        service, port = backend.service, str(backend.port)
    return replace(
        route,
        action=replace(route.action, rewrite=("^.*$", "/")),
        request_headers=(
            *route.request_headers,
            *((("X-Code", str(code)),) if code is not None else ()),
            ("X-Namespace", meta.namespace),
            ("X-Ingress-Name", meta.name),
            ("X-Service-Name", service),
            ("X-Service-Port", port),
        ),
        request_headers_format=(
            *route.request_headers_format,
            ("X-Format", "%REQ(accept)%"),
            *((("X-Original-URI", "%REQ(:path)%"),) if code is not None else ()),
        ),
    )


def _https_redirects(
    common: _Common, name: str, *, preserve_trailing_slash: bool, root: bool
) -> list[RouteSpec]:
    """ingress-nginx's https redirect (308) to the request's host and URI, one trailing slash
    of the path stripped unless preserve-trailing-slash: ``GET /docs/`` -> ``https://host/docs``
    and, on the root path (`root`), ``GET /`` -> ``https://host``, which Envoy's redirect cannot
    write (its path is never empty): a direct answer with that Location, for a Host without
    port (with one, Envoy's redirect keeps it, and the slash)."""
    proto = HeaderMatch("x-forwarded-proto", "http")
    if preserve_trailing_slash:
        return [common.route(name, RedirectTo(code=308, https=True), proto)]
    routes = []
    if root:
        routes.append(
            common.route(
                name,
                Respond(308),
                proto,
                HeaderMatch(":path", "/"),
                HeaderMatch(":authority", "[^:]+", regex=True),
                location="https://%REQ(:authority)%",
            )
        )
    strip = RedirectTo(code=308, https=True, rewrite=("^(.*)/$", "\\1"))
    routes.append(common.route(name, strip, proto))
    return routes


def _location(redirect: Redirect) -> str:
    """The Location of a permanent/temporal redirect, in Envoy's substitution format: exactly
    as configured; a path made absolute with the request's scheme and host unless relative;
    ``$request_uri`` is the request's path and query."""
    location = validate.envoy_literal(redirect.location)
    if redirect.is_path and not redirect.relative:
        location = "%REQ(:scheme)%://%REQ(:authority)%" + location
    if redirect.keep_request_uri:
        location += "%REQ(:path)%"
    return location


_CORS_PREFLIGHT = HeaderMatch(":method", "OPTIONS")
_CORS_CONTENT_TYPE = ("Content-Type", "text/plain charset=UTF-8")


def _with_cors(routes: list[RouteSpec], cors: Cors | None) -> list[RouteSpec]:
    """enable-cors as ingress-nginx's template: with origin ``*`` every answer of the path
    carries the CORS headers (``Access-Control-Allow-Origin: *``) and every OPTIONS request is
    answered 204 by the gateway; with a list of origins, only requests whose Origin matches one
    (case-insensitive, ``*.`` one label), the Origin echoed; no valid origin: no CORS at all."""
    if cors is None or not cors.allow_origins or not routes:
        return routes
    fixed = _cors_headers(cors)
    dynamic: tuple[tuple[str, str], ...] = ()
    origin: tuple[HeaderMatch, ...] = ()
    if cors.allow_origins == ("*",):
        fixed = (("Access-Control-Allow-Origin", "*"), *fixed)
    else:
        dynamic = (("Access-Control-Allow-Origin", "%REQ(origin)%"),)
        origin = (HeaderMatch("origin", _origin_regex(cors.allow_origins), regex=True),)

    def with_headers(route: RouteSpec, *extra: tuple[str, str]) -> RouteSpec:
        return replace(
            route,
            headers=(*route.headers, *origin),
            response_headers=(*route.response_headers, *fixed, *extra),
            response_headers_format=(*route.response_headers_format, *dynamic),
        )

    base = routes[-1]  # the path's own route: no header match
    answer = replace(base, action=Respond(204), headers=(_CORS_PREFLIGHT,), error_codes=())
    preflight = with_headers(answer, _CORS_CONTENT_TYPE)
    if not origin:
        return [preflight, *(with_headers(r) for r in routes)]
    out = [preflight]
    for route in routes:
        out += [with_headers(route), route]
    return out


def _cors_headers(cors: Cors) -> tuple[tuple[str, str], ...]:
    headers = []
    if cors.allow_credentials:
        headers.append(("Access-Control-Allow-Credentials", "true"))
    headers.append(("Access-Control-Allow-Methods", cors.allow_methods))
    headers.append(("Access-Control-Allow-Headers", cors.allow_headers))
    if cors.expose_headers:
        headers.append(("Access-Control-Expose-Headers", cors.expose_headers))
    headers.append(("Access-Control-Max-Age", str(cors.max_age_s)))
    return tuple(headers)


def _origin_regex(origins: Sequence[str]) -> str:
    """ingress-nginx's ``$http_origin ~* (^(o1)|(o2)$)``: each origin quoted, its first ``*``
    one label; RE2, case-insensitive, matching the whole header."""
    parts = [re.escape(o).replace("\\*", "[A-Za-z0-9\\-]+", 1) for o in origins]
    return "(?i)" + "|".join(f"(?:{p})" for p in parts)


def plain_match(path: IngressPath) -> PathMatch:
    if path.path_type is PathType.EXACT:
        return PathMatch(MatchKind.EXACT, path.path)
    if path.path_type is PathType.PREFIX:
        trimmed = path.path.rstrip("/")
        return PathMatch(MatchKind.PATH_PREFIX, trimmed) if trimmed else _ROOT
    return PathMatch(MatchKind.PREFIX, path.path)


def regex_match(path: str) -> PathMatch:
    """nginx ``location ~* "^PATH"``; Envoy's regex must match the whole path, hence ``.*``."""
    return PathMatch(MatchKind.REGEX, f"(?i)(?:{path}).*")


def _order(
    key: tuple[bool, PathMatch], cand: _Candidate, regex_mode: Accepted | None
) -> tuple[int, int, int, str]:
    is_default, match = key
    if is_default:
        return (3, 0, 0, "")
    if regex_mode is not None:
        return (1, -len(cand.raw_path), 0, cand.raw_path)
    rank = 0 if match.kind is MatchKind.EXACT else 1
    kind = 0 if match.kind is MatchKind.PATH_PREFIX else 1
    return (rank, -len(match.value), kind, match.value)


def _cookie_match(cookie: str, value: str) -> HeaderMatch:
    return HeaderMatch("cookie", f"(?:.*;\\s*)?{re.escape(cookie)}={value}(?:;.*)?", regex=True)


def _conflict(loser: _Candidate, owner: _Candidate) -> Diagnostic:
    if owner.source is loser.source:
        message = f"host {loser.host} path {loser.raw_path} is listed twice; the first one is used"
    else:
        message = (
            f"host {loser.host} path {loser.raw_path} is already served by the older Ingress "
            f"{owner.source.label}; this path is left out"
        )
    return warning(loser.source.ingress.meta.ref, Reason.PATH_CONFLICT, message)


def _no_primary(cand: _Candidate) -> Diagnostic:
    return warning(
        cand.source.ingress.meta.ref,
        Reason.CANARY_WITHOUT_PRIMARY,
        f"canary for host {cand.host} path {cand.raw_path} has no primary Ingress with the same "
        "host and path; it gets no traffic",
    )


def _check_plain_path(p: IngressPath) -> str | None:
    return validate.check_url_path(p.path)


def _check_group_refs(path: str, substitution: str) -> str | None:
    used = [int(m.group(1)) for m in _GROUP_REF.finditer(substitution.replace("\\\\", ""))]
    if not used:
        return None
    groups = validate.capture_groups(path)
    if max(used) > groups:
        return (
            f"rewrite-target refers to group {max(used)} but path {path!r} has only {groups} "
            "capture group(s)"
        )
    return None
