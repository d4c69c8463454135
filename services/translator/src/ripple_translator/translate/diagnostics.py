"""Diagnostics: what the translator has to say about one Kubernetes object.

A diagnostic never stops the translation of other objects. Its severity tells what happened to
the object it names:

- ``ERROR``: the object (or, where the message says so, one of its paths) is left out of the
  output, because translating it would give Envoy something it rejects or something unsafe.
- ``WARNING``: the object is translated, but part of it is ignored or degraded (an unsupported
  annotation, a backend that does not exist yet and answers 503, a path another Ingress owns).

The service layer turns each diagnostic into a Kubernetes Event on the object and a log line.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(enum.StrEnum):
    WARNING = "Warning"
    ERROR = "Error"


class Reason(enum.StrEnum):
    """Short CamelCase reasons, as Kubernetes Events use them."""

    INVALID_OBJECT = "InvalidObject"
    DUPLICATE_OBJECT = "DuplicateObject"
    INVALID_PATH = "InvalidPath"
    INVALID_HOST = "InvalidHost"
    INVALID_ANNOTATION = "InvalidAnnotation"
    UNSUPPORTED_ANNOTATION = "UnsupportedAnnotation"
    UNKNOWN_ANNOTATION = "UnknownAnnotation"
    ANNOTATION_IGNORED = "AnnotationIgnored"
    UNSUPPORTED_BACKEND = "UnsupportedBackend"
    SERVICE_NOT_FOUND = "ServiceNotFound"
    SERVICE_PORT_NOT_FOUND = "ServicePortNotFound"
    SECRET_NOT_FOUND = "SecretNotFound"
    INVALID_SECRET = "InvalidSecret"
    CERTIFICATE_EXPIRED = "CertificateExpired"
    CERTIFICATE_NOT_YET_VALID = "CertificateNotYetValid"
    CERTIFICATE_HOST_MISMATCH = "CertificateHostMismatch"
    CONFIG_MAP_NOT_FOUND = "ConfigMapNotFound"
    CATCH_ALL_UNSUPPORTED = "CatchAllUnsupported"
    HOST_NOT_ALLOWED = "HostNotAllowed"
    PATH_CONFLICT = "PathConflict"
    SETTING_CONFLICT = "SettingConflict"
    CANARY_WITHOUT_PRIMARY = "CanaryWithoutPrimary"
    CANARY_CONFLICT = "CanaryConflict"
    UNSUPPORTED_ENDPOINTS = "UnsupportedEndpoints"
    OBJECT_TOO_LARGE = "ObjectTooLarge"
    # Gateway API
    NO_MATCHING_PARENT = "NoMatchingParent"
    NOT_ALLOWED_BY_LISTENERS = "NotAllowedByListeners"
    NO_MATCHING_LISTENER_HOSTNAME = "NoMatchingListenerHostname"
    UNSUPPORTED_LISTENER = "UnsupportedListener"
    REF_NOT_PERMITTED = "RefNotPermitted"
    INVALID_RULE = "InvalidRule"
    UNSUPPORTED_FILTER = "UnsupportedFilter"
    HOST_CONFLICT = "HostConflict"


@dataclass(frozen=True, slots=True, order=True)
class ObjectRef:
    """Which Kubernetes object a diagnostic is about. Cluster-scoped objects have namespace ''."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        if self.namespace:
            return f"{self.kind} {self.namespace}/{self.name}"
        return f"{self.kind} {self.name}"


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class Diagnostic:
    object: ObjectRef
    severity: Severity
    reason: Reason
    message: str


def error(obj: ObjectRef, reason: Reason, message: str) -> Diagnostic:
    return Diagnostic(object=obj, severity=Severity.ERROR, reason=reason, message=message)


def warning(obj: ObjectRef, reason: Reason, message: str) -> Diagnostic:
    return Diagnostic(object=obj, severity=Severity.WARNING, reason=reason, message=message)
