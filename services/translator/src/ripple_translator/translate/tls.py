"""TLS: the Secrets the tenant's Ingresses reference, and which host uses which certificate.

Each ``spec.tls`` entry binds its hosts (all the Ingress's rule hosts when it lists none) to a
Secret in the Ingress's namespace. A host bound twice keeps the older Ingress's Secret. The
bindings go to the listener builder (SNI filter chains), the Secrets become SDS resources.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ripple_translator.translate import naming, validate
from ripple_translator.translate.diagnostics import Diagnostic, Reason, error, warning
from ripple_translator.translate.gateway_model import Gateway, Listener
from ripple_translator.translate.model import TlsSecret
from ripple_translator.translate.plan import Accepted

_CERT_BEGIN = "-----BEGIN CERTIFICATE-----"
_CERT_END = "-----END CERTIFICATE-----"


@dataclass(frozen=True, slots=True, order=True)
class TlsBinding:
    """Serve `host` (exact, or a ``*.`` wildcard for SNI) with the Secret resource `secret`."""

    host: str
    secret: str


@dataclass(frozen=True, slots=True, order=True)
class TlsMaterial:
    """A Secret resource to emit: its name and PEM data."""

    name: str
    certificate: str = field(repr=False)
    private_key: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class TlsPlan:
    bindings: tuple[TlsBinding, ...]
    secrets: tuple[TlsMaterial, ...]  # sorted by name
    diagnostics: tuple[Diagnostic, ...]

    def has_certificate(self, host: str) -> bool:
        """Whether a binding covers `host`, directly or by a one-label wildcard."""
        parent = host.split(".", 1)[1] if "." in host else ""
        return any(b.host in (host, f"*.{parent}") for b in self.bindings)


def plan_tls(
    *,
    tenant: str,
    ingresses: Sequence[Accepted],
    secrets: Mapping[tuple[str, str], TlsSecret],
    host_allowed: Callable[[str], bool],
) -> TlsPlan:
    diags: list[Diagnostic] = []
    bound: dict[str, tuple[str, Accepted]] = {}
    used: dict[str, TlsMaterial] = {}
    for acc in ingresses:
        meta = acc.ingress.meta
        for entry in acc.ingress.tls:
            if entry.secret_name is None:
                diags.append(
                    warning(
                        meta.ref,
                        Reason.SECRET_NOT_FOUND,
                        "a spec.tls entry has no secretName; its hosts get no certificate",
                    )
                )
                continue
            secret = secrets.get((meta.namespace, entry.secret_name))
            problem = (
                f"Secret {meta.namespace}/{entry.secret_name} does not exist"
                if secret is None
                else check_secret(secret)
            )
            if secret is None or problem or not secret.certificate or not secret.private_key:
                reason = Reason.SECRET_NOT_FOUND if secret is None else Reason.INVALID_SECRET
                diags.append(warning(meta.ref, reason, f"{problem}; its hosts get no certificate"))
                continue
            name = naming.secret_name(tenant, meta.namespace, entry.secret_name)
            hosts = entry.hosts or tuple(r.host for r in acc.ingress.rules if r.host)
            for host in dict.fromkeys(h.lower() for h in hosts):
                if validate.check_host(host):
                    diags.append(
                        error(meta.ref, Reason.INVALID_HOST, f"spec.tls host {host!r} is invalid")
                    )
                    continue
                if not host_allowed(host):
                    diags.append(
                        error(
                            meta.ref,
                            Reason.HOST_NOT_ALLOWED,
                            f"host {host} belongs to another tenant or is outside this "
                            "tenant's domains; its rules are left out",
                        )
                    )
                    continue
                previous = bound.get(host)
                if previous is None:
                    bound[host] = (name, acc)
                    used[name] = TlsMaterial(name, secret.certificate, secret.private_key)
                elif previous[0] != name:
                    diags.append(
                        warning(
                            meta.ref,
                            Reason.SETTING_CONFLICT,
                            f"TLS host {host} already uses Secret {previous[0]} of the older "
                            f"Ingress {previous[1].label}; {entry.secret_name} is not used",
                        )
                    )
    return TlsPlan(
        bindings=tuple(sorted(TlsBinding(h, s) for h, (s, _) in bound.items())),
        secrets=tuple(sorted(used.values())),
        diagnostics=tuple(diags),
    )


def check_secret(secret: TlsSecret) -> str | None:
    """Whether a Secret holds a PEM certificate chain and an unencrypted PEM private key."""
    where = f"Secret {secret.meta.namespace}/{secret.meta.name}"
    cert, key = secret.certificate, secret.private_key
    if not cert or not key:
        return f"{where} lacks tls.crt or tls.key"
    if _CERT_BEGIN not in cert or _CERT_END not in cert:
        return f"{where}: tls.crt is not a PEM certificate"
    if "ENCRYPTED" in key:
        return f"{where}: tls.key is encrypted"
    if "-----BEGIN" not in key or "PRIVATE KEY-----" not in key:
        return f"{where}: tls.key is not a PEM private key"
    return None


def plan_gateway_tls(
    *,
    tenant: str,
    gateways: Sequence[Gateway],
    secrets: Mapping[tuple[str, str], TlsSecret],
    host_allowed: Callable[[str], bool],
    plan: TlsPlan,
) -> TlsPlan:
    """`plan` plus the certificates of the Gateways' HTTPS listeners (``tls.mode`` Terminate):
    the first ``certificateRefs`` Secret (same namespace) is bound to the listener's hostname.
    A host `plan` (the Ingresses) already binds keeps its Secret; then the older Gateway's."""
    diags = list(plan.diagnostics)
    bound = {b.host: (b.secret, "an Ingress") for b in plan.bindings}
    used = {m.name: m for m in plan.secrets}
    for gateway in sorted(gateways, key=lambda g: g.meta.age_key):
        ref = gateway.meta.ref
        label = f"Gateway {gateway.meta.namespace}/{gateway.meta.name}"
        for lis in gateway.listeners:
            if lis.protocol != "HTTPS":
                continue
            problem = _listener_tls_problem(gateway, lis.tls_mode, lis.hostname, lis)
            secret = None
            if problem is None:
                cert = lis.certificate_refs[0]
                secret = secrets.get((gateway.meta.namespace, cert.name))
                if secret is None:
                    problem = f"Secret {gateway.meta.namespace}/{cert.name} does not exist"
                else:
                    problem = check_secret(secret)
            if problem is not None or secret is None or lis.hostname is None:
                diags.append(
                    warning(
                        ref,
                        Reason.INVALID_SECRET,
                        f"listener {lis.name}: {problem}; its hostname gets no certificate",
                    )
                )
                continue
            host = lis.hostname
            if validate.check_host(host):
                diags.append(
                    error(ref, Reason.INVALID_HOST, f"listener {lis.name} hostname {host!r}")
                )
                continue
            if not host_allowed(host):
                diags.append(
                    error(
                        ref,
                        Reason.HOST_NOT_ALLOWED,
                        f"listener {lis.name}: host {host} belongs to another tenant or is "
                        "outside this tenant's domains; it gets no certificate",
                    )
                )
                continue
            name = naming.secret_name(tenant, gateway.meta.namespace, secret.meta.name)
            previous = bound.get(host)
            if previous is None:
                bound[host] = (name, label)
                assert secret.certificate is not None
                assert secret.private_key is not None
                used[name] = TlsMaterial(name, secret.certificate, secret.private_key)
            elif previous[0] != name:
                diags.append(
                    warning(
                        ref,
                        Reason.SETTING_CONFLICT,
                        f"listener {lis.name}: TLS host {host} already uses Secret {previous[0]} "
                        f"of {previous[1]}; {secret.meta.name} is not used",
                    )
                )
    return TlsPlan(
        bindings=tuple(sorted(TlsBinding(h, s) for h, (s, _) in bound.items())),
        secrets=tuple(sorted(used.values())),
        diagnostics=tuple(diags),
    )


def _listener_tls_problem(
    gateway: Gateway, mode: str, hostname: str | None, lis: Listener
) -> str | None:
    if mode != "Terminate":
        return f"tls.mode {mode} is not supported (Terminate only)"
    if hostname is None:
        return "no hostname (certificates are served per SNI host)"
    if not lis.certificate_refs:
        return "no tls.certificateRefs"
    cert = lis.certificate_refs[0]
    if cert.group != "" or cert.kind != "Secret":
        return f"certificateRef {cert.group or 'core'}/{cert.kind} {cert.name} is not a Secret"
    if cert.namespace not in (None, gateway.meta.namespace):
        return (
            f"certificateRef to Secret {cert.namespace}/{cert.name} in another namespace needs "
            "a ReferenceGrant, which is not supported"
        )
    return None
