"""The Kubernetes kinds the watcher follows, and where the API serves them (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode


@dataclass(frozen=True, slots=True, kw_only=True)
class KindSpec:
    """One watched kind: its API location, scope and server-side filter."""

    kind: str
    group: str  # "" = the core group
    version: str
    plural: str
    namespaced: bool
    field_selector: str | None = None
    # Served only when a CRD installs it: the watcher waits for the API to appear.
    optional: bool = False

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_prefix(self) -> str:
        """`/api/v1` for the core group, `/apis/<group>/<version>` otherwise."""
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    @property
    def collection_path(self) -> str:
        """Cluster-wide collection (every namespace for namespaced kinds)."""
        return f"{self.api_prefix}/{self.plural}"

    def namespaced_path(self, namespace: str) -> str:
        if not self.namespaced:
            raise ValueError(f"{self.kind} is cluster-scoped")
        return f"{self.api_prefix}/namespaces/{namespace}/{self.plural}"

    def list_query(self, *, limit: int, continue_token: str | None = None) -> dict[str, str]:
        query: dict[str, str] = {"limit": str(limit)}
        if continue_token:
            query["continue"] = continue_token
        if self.field_selector:
            query["fieldSelector"] = self.field_selector
        return query

    def watch_query(self, *, resource_version: str, timeout_seconds: int) -> dict[str, str]:
        query = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "resourceVersion": resource_version,
            "timeoutSeconds": str(timeout_seconds),
        }
        if self.field_selector:
            query["fieldSelector"] = self.field_selector
        return query


def encode_query(query: Mapping[str, str]) -> str:
    return urlencode(sorted(query.items()))


INGRESS = KindSpec(
    kind="Ingress", group="networking.k8s.io", version="v1", plural="ingresses", namespaced=True
)
INGRESS_CLASS = KindSpec(
    kind="IngressClass",
    group="networking.k8s.io",
    version="v1",
    plural="ingressclasses",
    namespaced=False,
)
SERVICE = KindSpec(kind="Service", group="", version="v1", plural="services", namespaced=True)
ENDPOINT_SLICE = KindSpec(
    kind="EndpointSlice",
    group="discovery.k8s.io",
    version="v1",
    plural="endpointslices",
    namespaced=True,
)
TLS_SECRET = KindSpec(
    kind="Secret",
    group="",
    version="v1",
    plural="secrets",
    namespaced=True,
    field_selector="type=kubernetes.io/tls",
)
NAMESPACE = KindSpec(
    kind="Namespace", group="", version="v1", plural="namespaces", namespaced=False
)
# Opt-in (not in the default kinds): every ConfigMap of the cluster, for annotations that name
# one (custom-headers). Large clusters may want a label selector first.
CONFIG_MAP = KindSpec(
    kind="ConfigMap", group="", version="v1", plural="configmaps", namespaced=True
)
GATEWAY = KindSpec(
    kind="Gateway",
    group="gateway.networking.k8s.io",
    version="v1",
    plural="gateways",
    namespaced=True,
    optional=True,
)
HTTP_ROUTE = KindSpec(
    kind="HTTPRoute",
    group="gateway.networking.k8s.io",
    version="v1",
    plural="httproutes",
    namespaced=True,
    optional=True,
)

# Namespace first: the other kinds resolve tenants from the namespaces' labels.
ALL_KINDS: tuple[KindSpec, ...] = (
    NAMESPACE,
    INGRESS_CLASS,
    INGRESS,
    SERVICE,
    ENDPOINT_SLICE,
    TLS_SECRET,
    CONFIG_MAP,
    GATEWAY,
    HTTP_ROUTE,
)


def kinds_by_name(names: list[str] | tuple[str, ...]) -> tuple[KindSpec, ...]:
    """The specs named in `names` (case-insensitive), in `ALL_KINDS` order."""
    wanted = {n.lower() for n in names}
    known = {k.kind.lower() for k in ALL_KINDS}
    unknown = wanted - known
    if unknown:
        raise ValueError(f"unknown kinds {sorted(unknown)}; known: {sorted(known)}")
    return tuple(k for k in ALL_KINDS if k.kind.lower() in wanted)
