"""The gateway's default backend: ingress-nginx's ``--default-backend-service=<ns>/<svc>``.

A request for a host no Ingress or HTTPRoute serves (no exact scope, no wildcard scope) is
sent by the gateway's scope filter to the catch-all scope key ``_``
(`gateway_contract.CATCH_ALL_KEY`, nginx's default server name, never a valid host). When the
operator names a Service (`RIPPLE_TRANSLATOR_DEFAULT_BACKEND_SERVICE`), the translator of the
tenant owning that Service's namespace writes, beside the tenant's own resources:

- the Service port's Cluster and ClusterLoadAssignment (the usual names, shared with the
  tenant's own routes to it);
- a RouteConfiguration and the catch-all ScopedRouteConfiguration, both named
  ``<tenant>/default-backend`` (`naming.default_backend_name`): every path to that cluster.

Only the operator's setting makes this: a tenant cannot name the catch-all (hosts are
validated DNS names, ``_`` is not one), so no tenant's object turns into every tenant's
default backend. Without the setting, or while the Service does not exist, there is no
catch-all scope and an unknown host stays Envoy's 404.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ripple_common.gateway_contract import CATCH_ALL_KEY
from ripple_common.resources import Resource
from ripple_translator.translate import envoy, naming
from ripple_translator.translate.annotations import ClusterSettings
from ripple_translator.translate.backends import ClusterTarget, Inventory, Unresolved
from ripple_translator.translate.diagnostics import Diagnostic, ObjectRef, Reason, warning
from ripple_translator.translate.model import ServiceBackend

_NAME = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_REF = re.compile(
    rf"^(?P<ns>{_NAME})/(?P<svc>{_NAME})(:(?P<port>[0-9]{{1,5}}|[a-z0-9-]{{1,15}}))?$"
)


@dataclass(frozen=True, slots=True)
class DefaultBackendService:
    """The operator's default backend: a Service, and its port (number or name; None: the
    Service's first port, as ingress-nginx)."""

    namespace: str
    service: str
    port: int | str | None = None

    def __str__(self) -> str:
        return f"{self.namespace}/{self.service}" + ("" if self.port is None else f":{self.port}")


def parse_default_backend(value: str) -> DefaultBackendService:
    """``<namespace>/<service>[:<port number or name>]``; a ValueError says what is wrong."""
    match = _REF.match(value.strip())
    if match is None:
        raise ValueError(
            f"default backend service {value!r} must be <namespace>/<service>[:<port>] "
            "(Kubernetes names; the port a number or a port name)"
        )
    port: int | str | None = match["port"]
    if isinstance(port, str) and port.isdigit():
        port = int(port)
        if not 0 < port < 65536:
            raise ValueError(f"default backend service {value!r}: port {port} out of range")
    return DefaultBackendService(match["ns"], match["svc"], port)


@dataclass(frozen=True, slots=True, kw_only=True)
class DefaultBackendPlan:
    target: ClusterTarget | None
    resources: tuple[Resource, ...]
    diagnostics: tuple[Diagnostic, ...]


NOTHING = DefaultBackendPlan(target=None, resources=(), diagnostics=())


def plan_default_backend(
    *, tenant: str, wanted: DefaultBackendService | None, inventory: Inventory
) -> DefaultBackendPlan:
    """The catch-all routes and scope when `wanted` is a Service of this tenant (its cluster
    target is the caller's to write with the others); nothing otherwise."""
    if wanted is None:
        return NOTHING
    service = inventory.services.get((wanted.namespace, wanted.service))
    if service is None:
        return NOTHING  # another tenant's namespace, or not created yet
    ref = ObjectRef("Service", wanted.namespace, wanted.service)
    port = wanted.port
    if port is None:
        if not service.ports:
            return _problem(ref, f"the default backend Service {wanted} has no port")
        port = service.ports[0].port
    resolved = inventory.resolve(
        tenant=tenant,
        namespace=wanted.namespace,
        backend=ServiceBackend(wanted.service, port),
        settings=ClusterSettings(),
    )
    if isinstance(resolved, Unresolved):
        return _problem(ref, f"the gateway's default backend: {resolved.message}")
    name = naming.default_backend_name(tenant)
    return DefaultBackendPlan(
        target=resolved,
        resources=(
            envoy.catch_all_route_config(name, cluster=resolved.cluster),
            envoy.scope(name, route_config=name, host=CATCH_ALL_KEY),
        ),
        diagnostics=(),
    )


def _problem(ref: ObjectRef, message: str) -> DefaultBackendPlan:
    return DefaultBackendPlan(
        target=None,
        resources=(),
        diagnostics=(warning(ref, Reason.SERVICE_PORT_NOT_FOUND, f"{message}; not served"),),
    )
