"""The pure translation core: one tenant's Kubernetes objects to Envoy resources (no I/O).

Entry point: `translate`. See `naming` for resource names and `ingress` for the semantics.
"""

from ripple_translator.translate.diagnostics import Diagnostic, ObjectRef, Reason, Severity
from ripple_translator.translate.gateway import DEFAULT_GATEWAY_CLASS, GatewayPolicy
from ripple_translator.translate.ingressclass import DEFAULT_CONTROLLER, ClassPolicy
from ripple_translator.translate.model import TenantState
from ripple_translator.translate.tls import TlsBinding
from ripple_translator.translate.translate import (
    HostClaim,
    TranslateOptions,
    Translation,
    allow_every_host,
    translate,
)

__all__ = [
    "DEFAULT_CONTROLLER",
    "DEFAULT_GATEWAY_CLASS",
    "ClassPolicy",
    "Diagnostic",
    "GatewayPolicy",
    "HostClaim",
    "ObjectRef",
    "Reason",
    "Severity",
    "TenantState",
    "TlsBinding",
    "TranslateOptions",
    "Translation",
    "allow_every_host",
    "translate",
]
