"""Which HTTPRoutes attach to which Gateways, and for which hostnames (Gateway API rules).

An HTTPRoute attaches through each of its ``parentRefs`` that names a Gateway of this tenant
whose ``gatewayClassName`` is one of ours (`GatewayPolicy.class_names`); parentRefs to other
controllers' Gateways are not ours and are skipped silently, as Ingresses of other classes are.
Of that Gateway, the listeners that may take the route are those

- named by ``sectionName`` and on ``port``, when the parentRef gives them;
- of protocol HTTP or HTTPS (TLS, TCP and UDP listeners take other route kinds);
- whose ``allowedRoutes.kinds`` is empty or lists HTTPRoute;
- whose ``allowedRoutes.namespaces.from`` admits the route's namespace: ``Same`` (the default)
  or ``All``. ``Selector`` needs Namespace labels, which the translator does not hold: such a
  listener admits only routes of its own namespace.

The route's hostnames are intersected with each listener's hostname (a listener without one
takes the route's hostnames as they are; a route without hostnames takes the listener's; a
``*.`` wildcard matches one or more labels, and of two matching names the more specific one is
kept). Hosts come out sorted; ``None`` stands for "every host" (neither gives a hostname).

The Gateway's ports and addresses are not honoured: the gateway Envoy listens where it is
deployed to listen. One Gateway selects which routes are served; it is not a separate proxy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from ripple_translator.translate.diagnostics import Diagnostic, Reason, warning
from ripple_translator.translate.gateway_model import (
    GATEWAY_GROUP,
    Gateway,
    HTTPRoute,
    Listener,
    ParentRef,
)

DEFAULT_GATEWAY_CLASS: Final = "ripple"
_ROUTE_PROTOCOLS: Final = frozenset({"HTTP", "HTTPS"})
_HTTP_ROUTE: Final = (GATEWAY_GROUP, "HTTPRoute")


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayPolicy:
    """Gateways whose ``spec.gatewayClassName`` is in `class_names` are served."""

    class_names: frozenset[str] = frozenset({DEFAULT_GATEWAY_CLASS})


@dataclass(frozen=True, slots=True)
class Attached:
    """A route attached to at least one of our Gateways, and the hosts it asks for there."""

    route: HTTPRoute
    hosts: tuple[str | None, ...]


@dataclass(slots=True)
class _Index:
    gateways: Mapping[tuple[str, str], Gateway]
    policy: GatewayPolicy
    diags: list[Diagnostic] = field(default_factory=list)


def attach_routes(
    routes: Iterable[HTTPRoute],
    gateways: Sequence[Gateway],
    policy: GatewayPolicy,
) -> tuple[list[Attached], list[Diagnostic]]:
    """The attached routes (in the order given) and diagnostics on the routes left out."""
    ours = [g for g in gateways if g.class_name in policy.class_names]
    diags = [d for g in ours for d in _listener_notes(g)]
    index = _Index({(g.meta.namespace, g.meta.name): g for g in ours}, policy, diags)
    attached = []
    for route in routes:
        hosts = _attach(route, index)
        if hosts is not None:
            attached.append(Attached(route, tuple(sorted(hosts, key=lambda h: (h is None, h)))))
    return attached, index.diags


def _listener_notes(gateway: Gateway) -> list[Diagnostic]:
    notes = []
    for lis in gateway.listeners:
        if lis.protocol not in _ROUTE_PROTOCOLS:
            notes.append(
                warning(
                    gateway.meta.ref,
                    Reason.UNSUPPORTED_LISTENER,
                    f"listener {lis.name}: protocol {lis.protocol} is not supported (HTTP and "
                    "HTTPS only); no route attaches to it",
                )
            )
    return notes


def _attach(route: HTTPRoute, index: _Index) -> set[str | None] | None:
    """The hosts of `route` over all its parents; None if no parent of ours takes it."""
    ref = route.meta.ref
    hosts: set[str | None] = set()
    ours = False
    others: list[ParentRef] = []
    for parent in route.parent_refs:
        if parent.group != GATEWAY_GROUP or parent.kind != "Gateway":
            others.append(parent)
            continue
        namespace = parent.namespace or route.meta.namespace
        gateway = index.gateways.get((namespace, parent.name))
        if gateway is None:
            # Another controller's Gateway, or one this tenant does not hold: not ours.
            continue
        ours = True
        listeners = _listeners(route, parent, gateway)
        if not listeners:
            index.diags.append(
                warning(
                    ref,
                    Reason.NOT_ALLOWED_BY_LISTENERS,
                    f"no listener of Gateway {namespace}/{parent.name}{_section(parent)} "
                    "accepts this route (protocol HTTP/HTTPS, allowedRoutes kinds and "
                    "namespaces: Same, or All)",
                )
            )
            continue
        found = {h for lis in listeners for h in _intersect(lis.hostname, route.hostnames)}
        if not found:
            index.diags.append(
                warning(
                    ref,
                    Reason.NO_MATCHING_LISTENER_HOSTNAME,
                    f"none of the hostnames {', '.join(route.hostnames)} matches a listener "
                    f"hostname of Gateway {namespace}/{parent.name}{_section(parent)}",
                )
            )
        hosts |= found
    if not ours:
        return None
    # Reported only on routes that are ours: other parents may be another controller's.
    index.diags.extend(
        warning(
            ref,
            Reason.NO_MATCHING_PARENT,
            f"parentRef {p.group or 'core'}/{p.kind} {p.name} is not a Gateway; only Gateway "
            "parents are supported",
        )
        for p in others
    )
    return hosts


def _listeners(route: HTTPRoute, parent: ParentRef, gateway: Gateway) -> list[Listener]:
    same_namespace = gateway.meta.namespace == route.meta.namespace
    return [
        lis
        for lis in gateway.listeners
        if (parent.section_name is None or lis.name == parent.section_name)
        and (parent.port is None or lis.port == parent.port)
        and lis.protocol in _ROUTE_PROTOCOLS
        and (not lis.allowed_kinds or _HTTP_ROUTE in lis.allowed_kinds)
        and (lis.allowed_from == "All" or same_namespace)
    ]


def _intersect(listener: str | None, hostnames: Sequence[str]) -> set[str | None]:
    if not hostnames:
        return {listener}
    if listener is None:
        return set(hostnames)
    found: set[str | None] = set()
    for name in hostnames:
        if name == listener or (_is_wild(listener) and _covers(listener, name)):
            found.add(name)
        elif _is_wild(name) and _covers(name, listener):
            found.add(listener)
    return found


def _is_wild(host: str) -> bool:
    return host.startswith("*.")


def _covers(wildcard: str, host: str) -> bool:
    """Whether ``*.suffix`` matches `host` (one or more labels before the suffix)."""
    suffix = wildcard[1:]  # ".suffix"
    return host.endswith(suffix) and len(host) > len(suffix)


def _section(parent: ParentRef) -> str:
    return f" section {parent.section_name}" if parent.section_name else ""
