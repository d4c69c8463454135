"""The entry point: one tenant's Kubernetes objects in, Envoy resources and diagnostics out.

`translate` is pure and deterministic: the same objects (in any order) give byte-identical
resources in the same order. What one object gets wrong is a diagnostic on that object and
never stops the others.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Final, TypeVar

from ripple_common.resources import PUSH_ORDER, Resource
from ripple_translator.translate import envoy, naming, validate
from ripple_translator.translate.annotations import parse_annotations
from ripple_translator.translate.backends import ClusterTarget, Inventory
from ripple_translator.translate.default_backend import (
    DefaultBackendService,
    plan_default_backend,
)
from ripple_translator.translate.diagnostics import Diagnostic, ObjectRef, Reason, error, warning
from ripple_translator.translate.gateway import GatewayPolicy, attach_routes
from ripple_translator.translate.gateway_model import (
    Gateway,
    HTTPRoute,
    parse_gateway,
    parse_http_route,
)
from ripple_translator.translate.httproute import (
    Served,
    check_route,
    plan_http_routes,
    usable_hosts,
)
from ripple_translator.translate.ingress import check_paths, plan_routes
from ripple_translator.translate.ingressclass import ClassPolicy, ClassSelector
from ripple_translator.translate.model import (
    ConfigMap,
    EndpointSlice,
    Ingress,
    JsonObject,
    Meta,
    Service,
    TenantState,
    TlsSecret,
    parse_all,
    parse_config_map,
    parse_endpoint_slice,
    parse_ingress,
    parse_ingress_class,
    parse_secret,
    parse_service,
)
from ripple_translator.translate.plan import Accepted, VirtualHostSpec
from ripple_translator.translate.tls import TlsBinding, TlsPlan, plan_gateway_tls, plan_tls

_O = TypeVar("_O", Ingress, Service, EndpointSlice, TlsSecret, ConfigMap, Gateway, HTTPRoute)


DEFAULT_UPSTREAM_KEEPALIVE_TIMEOUT_S: Final = 60.0  # ingress-nginx's default


def allow_every_host(host: str) -> bool:
    """The default host policy: the tenant may claim any host (arbitration happens elsewhere)."""
    return True


@dataclass(frozen=True, slots=True, kw_only=True)
class TranslateOptions:
    classes: ClassPolicy = field(default_factory=ClassPolicy)
    # Which Gateways (by gatewayClassName) this translator serves HTTPRoutes for.
    gateways: GatewayPolicy = field(default_factory=GatewayPolicy)
    # Whether this tenant may serve a host (exact or "*." wildcard). Cross-tenant ownership is
    # arbitrated outside (Redis); pass its verdict here. Denied hosts get a HostNotAllowed error.
    host_allowed: Callable[[str], bool] = allow_every_host
    # Envoy's re2.max_program_size.error_level: regexes whose RE2 program is larger are
    # reported and left out instead of getting the tenant's RouteConfiguration rejected.
    max_regex_program_size: int = validate.ENVOY_MAX_PROGRAM_SIZE
    # The gateway's default backend (ingress-nginx's --default-backend-service): the tenant
    # owning that Service writes the catch-all scope for hosts nobody serves.
    default_backend: DefaultBackendService | None = None
    # ingress-nginx's `upstream-keepalive-timeout`: an idle upstream connection is closed after
    # this many seconds (0: never by the gateway).
    upstream_keepalive_timeout_s: float = DEFAULT_UPSTREAM_KEEPALIVE_TIMEOUT_S


@dataclass(frozen=True, slots=True, order=True)
class HostClaim:
    """The oldest served Ingress (or attached HTTPRoute, or our Gateway's HTTPS listener) of
    the tenant that asks for a host, for cross-tenant arbitration (`ingress` names that object
    in a lost claim's diagnostic; the claim's time is Redis's, never `created`: see
    hosts.claim_host; what a claim returns is `hosts.ClaimOutcome`)."""

    host: str
    created: datetime | None = field(compare=False)
    ingress: ObjectRef = field(compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Translation:
    tenant: str
    # Sorted by push order (clusters, endpoints, secrets, scopes, routes), then name.
    resources: tuple[Resource, ...]
    diagnostics: tuple[Diagnostic, ...]
    # Hosts with a scope, i.e. served through this tenant's RouteConfiguration.
    hosts: tuple[str, ...]
    # Host -> Secret resource, for the listener's SNI filter chains.
    tls: tuple[TlsBinding, ...]
    # Every valid host a served Ingress or attached HTTPRoute asks for, allowed or not.
    claims: tuple[HostClaim, ...]


def translate(
    state: TenantState,
    *,
    ingress_classes: Sequence[JsonObject] = (),
    options: TranslateOptions | None = None,
) -> Translation:
    """Translate one tenant. Raises `naming.NamingError` only for an unusable tenant name."""
    opts = options or TranslateOptions()
    tenant = naming.check_tenant(state.tenant)
    diags: list[Diagnostic] = []

    ingresses = _parse(state.ingresses, parse_ingress, "Ingress", diags)
    services = _parse(state.services, parse_service, "Service", diags)
    slices = _parse(state.endpoint_slices, parse_endpoint_slice, "EndpointSlice", diags)
    secrets = _parse(state.secrets, parse_secret, "Secret", diags)
    config_maps = _parse(state.config_maps, parse_config_map, "ConfigMap", diags)
    classes, bad_classes = parse_all(ingress_classes, parse_ingress_class, kind="IngressClass")
    diags.extend(error(ref, Reason.INVALID_OBJECT, msg) for ref, msg in bad_classes)
    selector = ClassSelector.build(classes, opts.classes)

    accepted = _accepted(ingresses, selector, opts, diags)
    gateways, served, route_claims = _attached_routes(state, opts, diags)
    accepted, served = _share_hosts(accepted, served, diags)

    secret_map = {(s.meta.namespace, s.meta.name): s for s in secrets}
    tls = plan_gateway_tls(
        tenant=tenant,
        gateways=gateways,
        secrets=secret_map,
        host_allowed=opts.host_allowed,
        plan=plan_tls(
            tenant=tenant, ingresses=accepted, secrets=secret_map, host_allowed=opts.host_allowed
        ),
    )
    diags.extend(tls.diagnostics)
    inventory = Inventory.build(services, slices)
    routes = plan_routes(
        tenant=tenant,
        ingresses=accepted,
        inventory=inventory,
        config_maps={(c.meta.namespace, c.meta.name): c for c in config_maps},
        has_certificate=tls.has_certificate,
        host_allowed=opts.host_allowed,
        max_program_size=opts.max_regex_program_size,
        gateway_default_backend=opts.default_backend is not None,
    )
    diags.extend(routes.diagnostics)
    gateway_routes = plan_http_routes(tenant=tenant, routes=served, inventory=inventory)
    diags.extend(gateway_routes.diagnostics)
    virtual_hosts = sorted(
        (*routes.virtual_hosts, *gateway_routes.virtual_hosts), key=lambda vh: vh.host
    )
    targets = {t.cluster: t for t in (*routes.targets, *gateway_routes.targets)}
    catch_all = plan_default_backend(
        tenant=tenant, wanted=opts.default_backend, inventory=inventory
    )
    diags.extend(catch_all.diagnostics)
    if catch_all.target is not None:
        targets.setdefault(catch_all.target.cluster, catch_all.target)

    resources = _resources(
        tenant,
        targets=[targets[name] for name in sorted(targets)],
        inventory=inventory,
        tls=tls,
        virtual_hosts=virtual_hosts,
        extra=catch_all.resources,
        keepalive_timeout_s=opts.upstream_keepalive_timeout_s,
        diags=diags,
    )

    return Translation(
        tenant=tenant,
        resources=tuple(sorted(resources, key=lambda r: (PUSH_ORDER.index(r.type_url), r.name))),
        diagnostics=tuple(sorted(set(diags))),
        hosts=tuple(vh.host for vh in virtual_hosts),
        tls=tls.bindings,
        claims=_claims(accepted, route_claims),
    )


def _resources(
    tenant: str,
    *,
    targets: Sequence[ClusterTarget],
    inventory: Inventory,
    tls: TlsPlan,
    virtual_hosts: Sequence[VirtualHostSpec],
    extra: Sequence[Resource],
    keepalive_timeout_s: float,
    diags: list[Diagnostic],
) -> list[Resource]:
    """The tenant's Envoy resources from its plans: a cluster per target (and one assignment
    per Service port), its TLS Secrets, its RouteConfiguration and a scope per host, then
    `extra` (the default backend's); endpoint notes go to `diags`."""
    resources: list[Resource] = []
    endpoint_names: set[str] = set()
    for target in targets:
        resources.append(
            envoy.cluster(
                target.cluster,
                endpoints=target.endpoints,
                settings=target.settings,
                keepalive_timeout_s=keepalive_timeout_s,
            )
        )
        if target.endpoints in endpoint_names:
            continue
        endpoint_names.add(target.endpoints)
        groups, notes = inventory.endpoints(target)
        ref = ObjectRef("Service", target.namespace, target.service)
        diags.extend(
            warning(ref, Reason.UNSUPPORTED_ENDPOINTS, f"{note}; left out") for note in notes
        )
        resources.append(envoy.endpoints(target.endpoints, groups))
    for material in tls.secrets:
        resources.append(
            envoy.tls_secret(
                material.name,
                certificate=material.certificate,
                private_key=material.private_key,
            )
        )
    route_config = naming.route_config_name(tenant)
    if virtual_hosts:
        resources.append(
            envoy.route_config(route_config, virtual_hosts, certificate=tls.secret_for)
        )
    for vh in virtual_hosts:
        resources.append(
            envoy.scope(naming.scope_name(tenant, vh.host), route_config=route_config, host=vh.host)
        )
    resources.extend(extra)
    return resources


def _parse(
    objects: Sequence[JsonObject],
    parser: Callable[[JsonObject], _O],
    kind: str,
    diags: list[Diagnostic],
) -> list[_O]:
    """Parse objects of one kind; malformed and duplicated objects become Error diagnostics."""
    parsed, failed = parse_all(objects, parser, kind=kind)
    diags.extend(error(ref, Reason.INVALID_OBJECT, msg) for ref, msg in failed)
    counts = Counter(_key(o.meta) for o in parsed)
    for (namespace, name), n in sorted(counts.items()):
        if n > 1:
            diags.append(
                error(
                    ObjectRef(kind, namespace, name),
                    Reason.DUPLICATE_OBJECT,
                    f"the tenant state lists {kind} {namespace}/{name} {n} times; it is left out",
                )
            )
    return [o for o in parsed if counts[_key(o.meta)] == 1]


def _key(meta: Meta) -> tuple[str, str]:
    return (meta.namespace, meta.name)


def _claims(
    accepted: Iterable[Accepted], route_claims: Iterable[HostClaim]
) -> tuple[HostClaim, ...]:
    claims: dict[str, HostClaim] = {}
    for acc in accepted:  # oldest first
        meta = acc.ingress.meta
        hosts = [r.host for r in acc.ingress.rules if r.host]
        hosts.extend(h for t in acc.ingress.tls for h in t.hosts)
        for host in hosts:
            if validate.check_host(host) is None and host not in claims:
                claims[host] = HostClaim(host, meta.creation_timestamp, meta.ref)
    for claim in route_claims:  # oldest route first; an older Ingress keeps its claim
        known = claims.get(claim.host)
        if known is None or _older(claim, known):
            claims[claim.host] = claim
    return tuple(sorted(claims.values()))


def _accepted(
    ingresses: Sequence[Ingress],
    selector: ClassSelector,
    opts: TranslateOptions,
    diags: list[Diagnostic],
) -> list[Accepted]:
    """The Ingresses this controller serves whose annotations and paths are valid, oldest
    first."""
    accepted: list[Accepted] = []
    for ing in sorted(ingresses, key=lambda i: i.meta.age_key):
        if not selector.serves(ing):
            continue
        parsed = parse_annotations(ing.meta.annotations, ing.meta.ref)
        diags.extend(parsed.diagnostics)
        if not parsed.ok:
            continue
        acc = Accepted(ing, parsed.settings)
        path_errors = check_paths(acc, max_program_size=opts.max_regex_program_size)
        diags.extend(path_errors)
        if not path_errors:
            accepted.append(acc)
    return accepted


def _attached_routes(
    state: TenantState, opts: TranslateOptions, diags: list[Diagnostic]
) -> tuple[list[Gateway], list[Served], list[HostClaim]]:
    """Our Gateways, the valid HTTPRoutes attached to them (oldest first) with their usable
    hosts, and the host claims of both (route hosts, HTTPS listener hostnames)."""
    gateways = [
        g
        for g in _parse(state.gateways, parse_gateway, "Gateway", diags)
        if g.class_name in opts.gateways.class_names
    ]
    http_routes = _parse(state.http_routes, parse_http_route, "HTTPRoute", diags)
    attached, attach_diags = attach_routes(
        sorted(http_routes, key=lambda r: r.meta.age_key), gateways, opts.gateways
    )
    diags.extend(attach_diags)
    served: list[Served] = []
    claims = [
        HostClaim(lis.hostname, g.meta.creation_timestamp, g.meta.ref)
        for g in gateways
        for lis in g.listeners
        if lis.protocol == "HTTPS" and lis.hostname and validate.check_host(lis.hostname) is None
    ]
    for att in attached:
        route_errors = check_route(att.route, max_program_size=opts.max_regex_program_size)
        diags.extend(route_errors)
        if route_errors:
            continue
        meta = att.route.meta
        claims.extend(
            HostClaim(h, meta.creation_timestamp, meta.ref)
            for h in att.hosts
            if h is not None and validate.check_host(h) is None
        )
        served.append(Served(att.route, usable_hosts(att, opts.host_allowed, diags)))
    return gateways, served, claims


def _older(a: HostClaim, b: HostClaim) -> bool:
    never = datetime.max.replace(tzinfo=UTC)
    return (a.created or never) < (b.created or never)


def _share_hosts(
    accepted: list[Accepted], served: list[Served], diags: list[Diagnostic]
) -> tuple[list[Accepted], list[Served]]:
    """Give each host that both Ingresses and HTTPRoutes of the tenant serve to one kind: the
    kind of its oldest object (creationTimestamp, then namespace/name; an Ingress on a tie).
    The other kind's rules for that host are left out with a HostConflict warning."""
    first_ingress: dict[str, Accepted] = {}
    for acc in accepted:  # oldest first
        for rule in acc.ingress.rules:
            if rule.host:
                first_ingress.setdefault(rule.host, acc)
    first_route: dict[str, Served] = {}
    for s in served:  # oldest first
        for host in s.hosts:
            first_route.setdefault(host, s)
    to_routes: dict[str, Served] = {}
    to_ingresses: dict[str, Accepted] = {}
    for host in first_ingress.keys() & first_route.keys():
        acc, s = first_ingress[host], first_route[host]
        if s.route.meta.age_key < acc.ingress.meta.age_key:
            to_routes[host] = s
        else:
            to_ingresses[host] = acc
    if not to_routes and not to_ingresses:
        return accepted, served

    kept_ingresses = []
    for acc in accepted:
        rules = tuple(r for r in acc.ingress.rules if r.host not in to_routes)
        for host in sorted({r.host for r in acc.ingress.rules if r.host in to_routes}):
            owner = to_routes[host].route.meta
            diags.append(
                warning(
                    acc.ingress.meta.ref,
                    Reason.HOST_CONFLICT,
                    f"host {host} is served by the older HTTPRoute {owner.namespace}/"
                    f"{owner.name}; this Ingress's rules for it are left out",
                )
            )
        if len(rules) == len(acc.ingress.rules):
            kept_ingresses.append(acc)
            continue
        default = acc.ingress.default_backend if any(r.host for r in rules) else None
        kept_ingresses.append(
            replace(acc, ingress=replace(acc.ingress, rules=rules, default_backend=default))
        )
    kept_routes = []
    for s in served:
        for host in (h for h in s.hosts if h in to_ingresses):
            owner = to_ingresses[host].ingress.meta
            diags.append(
                warning(
                    s.route.meta.ref,
                    Reason.HOST_CONFLICT,
                    f"host {host} is served by the older Ingress {owner.namespace}/{owner.name}; "
                    "this HTTPRoute is not served there",
                )
            )
        kept_routes.append(Served(s.route, tuple(h for h in s.hosts if h not in to_ingresses)))
    return kept_ingresses, kept_routes
