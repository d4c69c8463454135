"""Attached HTTPRoutes to a route plan, with the Gateway API's semantics.

- Matches: path ``Exact`` -> exact match, ``PathPrefix`` -> element-wise prefix
  (``path_separated_prefix``, trailing ``/`` ignored), ``RegularExpression`` -> RE2
  ``safe_regex`` (whole path, case-sensitive); headers and query parameters ``Exact`` or
  ``RegularExpression``; ``method`` -> a ``:method`` header match. Every match of a rule is one
  Envoy route with the rule's action; a match of several conditions needs all of them.
- Order on a host, over every rule of every route (the Gateway API precedence): Exact path,
  then regex paths (longest first), then the longest prefix; then a method match; then more
  header matches; then more query parameter matches; then the oldest route
  (creationTimestamp, then namespace/name), then rule and match order. A match equal to an
  earlier one in all conditions is left out with a PathConflict warning.
- Actions: ``RequestRedirect`` -> Route ``redirect``; otherwise the ``backendRefs`` (Services
  by port number) as one cluster or ``weighted_clusters``; ``URLRewrite`` -> ``regex_rewrite``
  of the path and ``host_rewrite_literal``; ``RequestHeaderModifier`` and
  ``ResponseHeaderModifier`` -> headers set, appended and removed. A rule whose backends all
  fail to resolve (or weigh 0), or which has none, answers 500, as the API requires; a backend
  that fails to resolve gets no share of the traffic. A filter that cannot be carried out and
  may not be skipped (``ExtensionRef``) makes the rule answer 500.
- An invalid value (regex RE2 rejects or too large for the gateway, header name or value,
  path, redirect, weight) is an Error and the whole route is not served.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from ripple_translator.translate import validate
from ripple_translator.translate.annotations import DEFAULT_IDLE_TIMEOUT_MS, ClusterSettings
from ripple_translator.translate.backends import ClusterTarget, Inventory, Unresolved
from ripple_translator.translate.diagnostics import Diagnostic, Reason, error, warning
from ripple_translator.translate.gateway import Attached
from ripple_translator.translate.gateway_model import (
    BackendRef,
    HeaderModifier,
    HTTPRoute,
    PathModifier,
    PathModifierType,
    PathType,
    RouteMatch,
    RouteRule,
    ValueMatch,
    ValueType,
)
from ripple_translator.translate.model import ServiceBackend
from ripple_translator.translate.plan import (
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

_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
_REDIRECT_CODES: Final = frozenset({301, 302, 303, 307, 308})
_SCHEMES: Final = frozenset({"http", "https"})
_MAX_WEIGHT: Final = 1_000_000
# Filters the translator does not carry out but which may be skipped without harm.
_SKIPPABLE_FILTERS: Final = frozenset({"RequestMirror", "CORS"})
_PATH_RANK: Final = {MatchKind.EXACT: 0, MatchKind.REGEX: 1}


@dataclass(frozen=True, slots=True)
class Served:
    """A valid attached route and the concrete hosts it serves."""

    route: HTTPRoute
    hosts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HttpRoutePlan:
    virtual_hosts: tuple[VirtualHostSpec, ...]
    targets: tuple[ClusterTarget, ...]
    diagnostics: tuple[Diagnostic, ...]


# ---------------------------------------------------------------------------------------------
# Checks


def check_route(route: HTTPRoute, *, max_program_size: int) -> list[Diagnostic]:
    """Errors in a route's rules; any of them keeps the whole route from being served."""
    problems: list[str] = []
    for i, rule in enumerate(route.rules):
        problems.extend(f"rule {i}: {p}" for p in _rule_problems(rule, max_program_size))
    return [
        error(route.meta.ref, Reason.INVALID_RULE, f"{p}; the HTTPRoute is not served")
        for p in problems
    ]


def _rule_problems(rule: RouteRule, limit: int) -> list[str]:
    out: list[str] = []
    for match in rule.matches:
        out.extend(_match_problems(match, limit))
    for mod, request in ((rule.request_headers, True), (rule.response_headers, False)):
        if mod is not None:
            out.extend(_modifier_problems(mod, request=request))
    if rule.redirect is not None and rule.rewrite is not None:
        out.append("RequestRedirect and URLRewrite cannot be combined")
    if rule.redirect is not None:
        r = rule.redirect
        if r.scheme is not None and r.scheme not in _SCHEMES:
            out.append(f"redirect scheme {r.scheme!r} is not http or https")
        if r.port is not None and not 0 < r.port < 65536:
            out.append(f"redirect port {r.port} is out of range")
        if r.status_code not in _REDIRECT_CODES:
            out.append(f"redirect statusCode {r.status_code} is not 301, 302, 303, 307 or 308")
        out.extend(_exact_host_problems(r.hostname, "redirect"))
        out.extend(_path_modifier_problems(rule, r.path, limit))
    if rule.rewrite is not None:
        out.extend(_exact_host_problems(rule.rewrite.hostname, "URLRewrite"))
        out.extend(_path_modifier_problems(rule, rule.rewrite.path, limit))
    for ref in rule.backend_refs:
        if not 0 <= ref.weight <= _MAX_WEIGHT:
            out.append(f"backendRef {ref.name} weight {ref.weight} is not in 0..{_MAX_WEIGHT}")
    return out


def _match_problems(match: RouteMatch, limit: int) -> list[str]:
    out: list[str] = []
    path = match.path
    if path.type is PathType.REGULAR_EXPRESSION:
        problem = _regex_problem(path.value, limit)
    else:
        problem = validate.check_url_path(path.value)
    if problem:
        out.append(problem)
    for header in match.headers:
        problem = validate.check_header_name(header.name, request=False)
        out.extend([problem] if problem else [])
        out.extend(_value_problems(header, limit))
    for param in match.query_params:
        if not param.name or any(c in param.name for c in "&=#\0\r\n"):
            out.append(f"query parameter name {param.name!r} is not valid")
        out.extend(_value_problems(param, limit))
    if match.method is not None and match.method not in _METHODS:
        out.append(f"method {match.method!r} is not an HTTP method")
    return out


def _value_problems(item: ValueMatch, limit: int) -> list[str]:
    if item.type is ValueType.REGULAR_EXPRESSION:
        problem = _regex_problem(item.value, limit)
    else:
        problem = validate.check_header_value(item.value)
    return [f"{item.name}: {problem}"] if problem else []


def _regex_problem(regex: str, limit: int) -> str | None:
    return validate.check_re2(regex) or validate.check_program_size(regex, limit)


def _modifier_problems(mod: HeaderModifier, *, request: bool) -> list[str]:
    where = "RequestHeaderModifier" if request else "ResponseHeaderModifier"
    out: list[str] = []
    names = [n for n, _ in mod.set] + [n for n, _ in mod.add] + list(mod.remove)
    for name in names:
        problem = validate.check_header_name(name, request=True)
        if problem:
            out.append(f"{where}: {problem}")
    for _, value in (*mod.set, *mod.add):
        problem = validate.check_header_value(value)
        if problem:
            out.append(f"{where}: {problem}")
    return out


def _exact_host_problems(host: str | None, where: str) -> list[str]:
    if host is None:
        return []
    problem = validate.check_host(host)
    if problem is None and validate.is_wildcard(host):
        problem = f"host {host!r} is a wildcard"
    return [f"{where} {problem}"] if problem else []


def _path_modifier_problems(rule: RouteRule, mod: PathModifier | None, limit: int) -> list[str]:
    if mod is None:
        return []
    problem = validate.check_url_path(mod.value)
    if problem:
        return [problem]
    if mod.type is PathModifierType.REPLACE_FULL_PATH:
        return []
    out = []
    for match in rule.matches:
        if match.path.type is not PathType.PATH_PREFIX:
            out.append("ReplacePrefixMatch needs PathPrefix matches only")
            continue
        pattern, _ = _prefix_rewrite(match.path.value, mod.value)
        problem = validate.check_program_size(pattern, limit)
        if problem:
            out.append(problem)
    return out


# ---------------------------------------------------------------------------------------------
# Hosts


def usable_hosts(
    attached: Attached, host_allowed: Callable[[str], bool], diags: list[Diagnostic]
) -> tuple[str, ...]:
    """The hosts an attached route may serve with scoped routes; diagnostics for the rest."""
    ref = attached.route.meta.ref
    hosts = []
    for host in attached.hosts:
        if host is None:
            diags.append(
                warning(
                    ref,
                    Reason.CATCH_ALL_UNSUPPORTED,
                    "neither the route nor its listener gives a hostname: it would catch every "
                    "host of the gateway; it is left out",
                )
            )
            continue
        problem = validate.check_host(host)
        if problem:
            diags.append(error(ref, Reason.INVALID_HOST, f"{problem}; it is left out"))
        elif not host_allowed(host):
            diags.append(
                error(
                    ref,
                    Reason.HOST_NOT_ALLOWED,
                    f"host {host} belongs to another tenant or is outside this tenant's "
                    "domains; it is left out",
                )
            )
        else:
            hosts.append(host)
    return tuple(hosts)


# ---------------------------------------------------------------------------------------------
# Plan


@dataclass(frozen=True, slots=True)
class _Entry:
    route: HTTPRoute
    rule_index: int
    match_index: int
    rule: RouteRule
    match: RouteMatch
    path: PathMatch
    headers: tuple[HeaderMatch, ...]  # the method first, as a :method match
    query: tuple[HeaderMatch, ...]

    def order(self) -> tuple[object, ...]:
        m = self.route.meta
        return (
            _PATH_RANK.get(self.path.kind, 2),
            -len(self.path.value),
            0 if self.match.method else 1,
            -len(self.match.headers),
            -len(self.match.query_params),
            m.age_key,
            self.rule_index,
            self.match_index,
        )

    def key(self) -> tuple[object, ...]:
        return (self.path, frozenset(self.headers), frozenset(self.query))


def plan_http_routes(
    *,
    tenant: str,
    routes: Sequence[Served],
    inventory: Inventory,
) -> HttpRoutePlan:
    """Plan the routes of valid attached HTTPRoutes (sorted oldest first)."""
    diags: list[Diagnostic] = []
    by_host: dict[str, list[_Entry]] = defaultdict(list)
    for served in routes:
        entries = list(_entries(served.route))
        for host in served.hosts:
            by_host[host].extend(entries)
    builder = _Builder(tenant, inventory, diags)
    vhosts = []
    for host in sorted(by_host):
        specs = builder.host(host, by_host[host])
        if specs:
            vhosts.append(VirtualHostSpec(host, tuple(specs)))
    return HttpRoutePlan(
        virtual_hosts=tuple(vhosts),
        targets=tuple(builder.targets[k] for k in sorted(builder.targets)),
        diagnostics=tuple(diags),
    )


def _entries(route: HTTPRoute) -> list[_Entry]:
    out = []
    for i, rule in enumerate(route.rules):
        for j, match in enumerate(rule.matches):
            headers = [HeaderMatch(":method", match.method)] if match.method else []
            seen = {":method"} if match.method else set()
            for h in match.headers:
                # Envoy holds the Host header as :authority (HTTP/1 too).
                name = ":authority" if h.name.lower() == "host" else h.name.lower()
                if name not in seen:  # the API: the first of equivalent names counts
                    seen.add(name)
                    headers.append(_value_match(name, h))
            query = []
            seen_params: set[str] = set()
            for q in match.query_params:
                if q.name not in seen_params:
                    seen_params.add(q.name)
                    query.append(_value_match(q.name, q))
            out.append(
                _Entry(route, i, j, rule, match, _path_match(match), tuple(headers), tuple(query))
            )
    return out


def _value_match(name: str, item: ValueMatch) -> HeaderMatch:
    return HeaderMatch(name, item.value, regex=item.type is ValueType.REGULAR_EXPRESSION)


def _path_match(match: RouteMatch) -> PathMatch:
    path = match.path
    if path.type is PathType.EXACT:
        return PathMatch(MatchKind.EXACT, path.value)
    if path.type is PathType.REGULAR_EXPRESSION:
        return PathMatch(MatchKind.REGEX, path.value)
    trimmed = path.value.rstrip("/")
    return (
        PathMatch(MatchKind.PATH_PREFIX, trimmed) if trimmed else PathMatch(MatchKind.PREFIX, "/")
    )


class _Builder:
    __slots__ = ("diags", "inventory", "targets", "tenant")

    def __init__(self, tenant: str, inventory: Inventory, diags: list[Diagnostic]) -> None:
        self.tenant = tenant
        self.inventory = inventory
        self.diags = diags
        self.targets: dict[str, ClusterTarget] = {}

    def host(self, host: str, entries: list[_Entry]) -> list[RouteSpec]:
        specs = []
        owners: dict[tuple[object, ...], _Entry] = {}
        for entry in sorted(entries, key=_Entry.order):
            key = entry.key()
            owner = owners.get(key)
            if owner is not None:
                self.diags.append(_conflict(host, entry, owner))
                continue
            owners[key] = entry
            specs.append(self._spec(host, entry))
        return specs

    def _spec(self, host: str, entry: _Entry) -> RouteSpec:
        rule = entry.rule
        req = rule.request_headers or HeaderModifier()
        resp = rule.response_headers or HeaderModifier()
        return RouteSpec(
            name=f"{entry.route.meta.namespace}/{entry.route.meta.name}/rules/{entry.rule_index}",
            match=entry.path,
            action=self._action(host, entry),
            headers=entry.headers,
            query_params=entry.query,
            request_headers=req.set,
            request_headers_append=req.add,
            request_headers_remove=tuple(n.lower() for n in req.remove),
            response_headers=resp.set,
            response_headers_append=resp.add,
            response_headers_remove=tuple(n.lower() for n in resp.remove),
        )

    def _action(self, host: str, entry: _Entry) -> Action:
        rule = entry.rule
        where = f"host {host} rule {entry.rule_index}"
        blocking = [f for f in rule.other_filters if f not in _SKIPPABLE_FILTERS]
        if entry.match_index == 0:
            self._notes(entry, where)
        if blocking:
            return Respond(500)
        if rule.redirect is not None:
            r = rule.redirect
            path, rewrite = None, None
            if r.path is not None and r.path.type is PathModifierType.REPLACE_FULL_PATH:
                path = r.path.value
            elif r.path is not None:
                rewrite = _prefix_rewrite(entry.match.path.value, r.path.value)
            return RedirectTo(
                code=r.status_code,
                scheme=r.scheme,
                host=r.hostname,
                port=r.port,
                path=path,
                keep_query=True,
                rewrite=rewrite,
            )
        weights: dict[str, int] = {}
        for backend in rule.backend_refs:
            if backend.weight == 0:  # no traffic: no cluster either
                continue
            target = self._resolve(entry, backend, where)
            if target is not None:
                weights[target.cluster] = weights.get(target.cluster, 0) + backend.weight
        if not weights:
            return Respond(500)
        rewrite, host_rewrite = None, None
        if rule.rewrite is not None:
            host_rewrite = rule.rewrite.hostname
            mod = rule.rewrite.path
            if mod is not None and mod.type is PathModifierType.REPLACE_FULL_PATH:
                rewrite = ("^/.*$", _substitution(mod.value))
            elif mod is not None:
                rewrite = _prefix_rewrite(entry.match.path.value, mod.value)
        return Forward(
            targets=tuple(WeightedTarget(c, w) for c, w in sorted(weights.items())),
            idle_timeout_ms=DEFAULT_IDLE_TIMEOUT_MS,
            rewrite=rewrite,
            host_rewrite=host_rewrite,
        )

    def _notes(self, entry: _Entry, where: str) -> None:
        """Warnings on what a rule gives but the gateway does not carry out (once per host)."""
        ref = entry.route.meta.ref
        for name in entry.rule.other_filters:
            outcome = "it is ignored" if name in _SKIPPABLE_FILTERS else "the rule answers 500"
            self.diags.append(
                warning(
                    ref,
                    Reason.UNSUPPORTED_FILTER,
                    f"rule {entry.rule_index}: filter {name} is not supported; {outcome}",
                )
            )
        if any(b.has_filters for b in entry.rule.backend_refs):
            self.diags.append(
                warning(
                    ref,
                    Reason.UNSUPPORTED_FILTER,
                    f"rule {entry.rule_index}: backendRef filters are not supported; ignored",
                )
            )
        if entry.rule.has_timeouts:
            self.diags.append(
                warning(
                    ref,
                    Reason.UNSUPPORTED_FILTER,
                    f"rule {entry.rule_index}: timeouts are not supported; no request timeout, "
                    f"idle timeout {DEFAULT_IDLE_TIMEOUT_MS // 1000}s",
                )
            )
        if not entry.rule.backend_refs and entry.rule.redirect is None:
            self.diags.append(
                warning(
                    ref,
                    Reason.SERVICE_NOT_FOUND,
                    f"{where}: the rule has no backendRefs and no redirect; it answers 500",
                )
            )

    def _resolve(self, entry: _Entry, backend: BackendRef, where: str) -> ClusterTarget | None:
        route = entry.route
        ref = route.meta.ref
        namespace = backend.namespace or route.meta.namespace
        problem: tuple[Reason, str] | None = None
        if backend.group != "" or backend.kind != "Service":
            problem = (
                Reason.UNSUPPORTED_BACKEND,
                f"backendRef {backend.group or 'core'}/{backend.kind} {backend.name} is not a "
                "Service",
            )
        elif namespace != route.meta.namespace:
            problem = (
                Reason.REF_NOT_PERMITTED,
                f"backendRef to Service {namespace}/{backend.name} in another namespace needs a "
                "ReferenceGrant, which is not supported",
            )
        elif backend.port is None:
            problem = (
                Reason.SERVICE_PORT_NOT_FOUND,
                f"backendRef to Service {namespace}/{backend.name} has no port",
            )
        if problem is None:
            assert backend.port is not None
            result = self.inventory.resolve(
                tenant=self.tenant,
                namespace=namespace,
                backend=ServiceBackend(backend.name, backend.port),
                settings=ClusterSettings(),
            )
            if not isinstance(result, Unresolved):
                self.targets[result.cluster] = result
                return result
            problem = (result.reason, result.message)
        if entry.match_index == 0:
            reason, message = problem
            self.diags.append(
                warning(ref, reason, f"{where}: {message}; it gets no traffic (500 instead)")
            )
        return None


def _conflict(host: str, loser: _Entry, owner: _Entry) -> Diagnostic:
    o = owner.route.meta
    return warning(
        loser.route.meta.ref,
        Reason.PATH_CONFLICT,
        f"host {host} rule {loser.rule_index}: match {loser.match_index} equals one of "
        f"HTTPRoute {o.namespace}/{o.name} rule {owner.rule_index}, which takes precedence; "
        "it is left out",
    )


def _prefix_rewrite(prefix: str, replacement: str) -> tuple[str, str]:
    """(RE2 pattern, substitution) replacing the matched path prefix (Gateway API semantics:
    ``/foo`` -> ``/bar`` turns ``/foo/x`` into ``/bar/x``; -> ``/`` turns it into ``/x``)."""
    trimmed, target = prefix.rstrip("/"), replacement.rstrip("/")
    if not trimmed:
        return ("^/", _substitution(target) + "/")
    if not target:
        return (f"^{re.escape(trimmed)}/*", "/")
    return (f"^{re.escape(trimmed)}", _substitution(target))


def _substitution(text: str) -> str:
    """Literal text as an RE2 substitution (backslash starts a group reference there)."""
    return text.replace("\\", "\\\\")
