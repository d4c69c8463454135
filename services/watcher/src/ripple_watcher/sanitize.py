"""What of an object is published (pure): routing-relevant fields only, so that writes which
only churn (managedFields, status, resourceVersion, EndpointSlice bookkeeping) are not events.

`sanitize` returns the published object; `fingerprint` hashes it without its resourceVersion
and generation, so two versions with the same fingerprint are the same to every translator.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from ripple_watcher.kinds import KindSpec

# Metadata a translator may use; everything else (managedFields, finalizers, selfLink, ...) goes.
_KEPT_METADATA: Final = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "labels",
    "annotations",
)
# Annotations written by tools, never read by a translator; the first one holds a copy of the
# whole applied object (for a Secret: its private key, in plaintext).
DROPPED_ANNOTATIONS: Final = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        "endpoints.kubernetes.io/last-change-trigger-time",
        "deployment.kubernetes.io/revision",
    }
)
# Top-level fields kept per kind (metadata is always kept, status never: the kinds watched
# here carry only status that controllers, ripple included, write back).
_KEPT_TOP: Final[Mapping[str, tuple[str, ...]]] = {
    "Ingress": ("spec",),
    "IngressClass": ("spec",),
    "Service": ("spec",),
    "EndpointSlice": ("addressType", "endpoints", "ports"),
    "Secret": ("type", "data"),
    "Namespace": (),
    "ConfigMap": ("data", "binaryData"),
    "Gateway": ("spec",),
    "HTTPRoute": ("spec",),
}
# Per endpoint of an EndpointSlice: what changes routing. targetRef, nodeName and
# deprecatedTopology change with pods and nodes, never with where traffic goes.
_ENDPOINT_FIELDS: Final = ("addresses", "conditions", "zone", "hints")
_ENDPOINT_CONDITIONS: Final = ("ready", "serving", "terminating")


def sanitize(spec: KindSpec, obj: Mapping[str, Any]) -> dict[str, Any]:
    """The published form of `obj` (a new dict; `obj` is not changed)."""
    out: dict[str, Any] = {"apiVersion": spec.group_version, "kind": spec.kind}
    out["metadata"] = _metadata(obj.get("metadata") or {})
    for key in _KEPT_TOP.get(spec.kind, ("spec",)):
        if key in obj and obj[key] is not None:
            out[key] = obj[key]
    if spec.kind == "EndpointSlice" and isinstance(out.get("endpoints"), list):
        out["endpoints"] = [_endpoint(ep) for ep in out["endpoints"] if isinstance(ep, Mapping)]
    return out


def _metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: meta[k] for k in _KEPT_METADATA if meta.get(k) not in (None, {}, "")}
    annotations = out.get("annotations")
    if isinstance(annotations, Mapping):
        kept = {k: v for k, v in annotations.items() if k not in DROPPED_ANNOTATIONS}
        if kept:
            out["annotations"] = kept
        else:
            del out["annotations"]
    return out


def _endpoint(ep: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: ep[k] for k in _ENDPOINT_FIELDS if ep.get(k) is not None}
    conditions = ep.get("conditions")
    if isinstance(conditions, Mapping):
        out["conditions"] = {
            k: conditions[k] for k in _ENDPOINT_CONDITIONS if conditions.get(k) is not None
        }
    return out


def fingerprint(sanitized: Mapping[str, Any]) -> str:
    """Hash of the routing-relevant content: equal for versions differing only in churn."""
    meta = dict(sanitized.get("metadata") or {})
    # Both move with every write, relevant or not (generation counts EndpointSlice node moves).
    meta.pop("resourceVersion", None)
    meta.pop("generation", None)
    doc = {**sanitized, "metadata": meta}
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.blake2b(raw, digest_size=16).hexdigest()
