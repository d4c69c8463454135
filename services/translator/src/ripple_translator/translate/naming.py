"""Deterministic, tenant-prefixed xDS resource names.

Every name starts with ``<tenant>/``. Kubernetes names, namespaces and label values never hold a
``/``, so two tenants can never produce the same name, and the owning tenant is the text before
the first ``/``.

=========================  ===============================================  ====================
resource                   name                                             example
=========================  ===============================================  ====================
RouteConfiguration         ``<tenant>/routes``                              ``t1/routes``
ScopedRouteConfiguration   ``<tenant>/scope/<host>``                        ``t1/scope/a.example``
ClusterLoadAssignment      ``<tenant>/<namespace>/<service>:<port>``        ``t1/ns/web:80``
Cluster                    the CLA name, plus ``~<variant>`` if not default ``t1/ns/web:80~h2``
Secret                     ``<tenant>/<namespace>/<secret>``                ``t1/ns/web-tls``
default backend routes     ``<tenant>/default-backend`` (RDS and SRDS)      ``t1/default-backend``
=========================  ===============================================  ====================
"""

from __future__ import annotations

import re
from typing import Final

_TENANT = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$")
ROUTES_SUFFIX: Final = "routes"


class NamingError(ValueError):
    """A tenant name that cannot prefix resource names safely."""


def check_tenant(tenant: str) -> str:
    """A tenant is a namespace or a label value: letters, digits, '.', '_', '-'."""
    if not _TENANT.match(tenant):
        raise NamingError(
            f"tenant {tenant!r} must be 1-253 letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit"
        )
    return tenant


def route_config_name(tenant: str) -> str:
    """The tenant's one RouteConfiguration, which every scope of the tenant points at."""
    return f"{tenant}/{ROUTES_SUFFIX}"


def default_backend_name(tenant: str) -> str:
    """The gateway default backend's RouteConfiguration and catch-all scope (one name, two
    types; never a host scope's ``<tenant>/scope/<host>``)."""
    return f"{tenant}/default-backend"


def scope_name(tenant: str, host: str) -> str:
    return f"{tenant}/scope/{host}"


def endpoints_name(tenant: str, namespace: str, service: str, port: int) -> str:
    """One ClusterLoadAssignment per service port (the EDS ``service_name`` of its clusters)."""
    return f"{tenant}/{namespace}/{service}:{port}"


def cluster_name(endpoints: str, variant: tuple[str, ...]) -> str:
    """A Cluster over the endpoints `endpoints`; ``variant`` names its non-default settings.

    Ingresses that reach one service port with different upstream settings (protocol, load
    balancing, connect timeout) need distinct clusters; they share one ClusterLoadAssignment.
    """
    return f"{endpoints}~{','.join(variant)}" if variant else endpoints


def secret_name(tenant: str, namespace: str, secret: str) -> str:
    return f"{tenant}/{namespace}/{secret}"


def tenant_of(name: str) -> str:
    """The tenant that owns a resource name made by this module."""
    return name.split("/", 1)[0]
