"""TLS: the Secrets the tenant's Ingresses reference, and which host uses which certificate.

Each ``spec.tls`` entry binds its hosts (all the Ingress's rule hosts when it lists none) to a
Secret in the Ingress's namespace. A host bound twice keeps the older Ingress's Secret. The
bindings go to the listener builder (SNI filter chains), the Secrets become SDS resources.

Each Secret a served object uses is checked as Envoy will (`certificates.check_pair`): one
that Envoy would reject is left out (an Error on the Secret, a Warning on each Ingress or
Gateway using it), so its hosts are not served over HTTPS (plain HTTP still serves them, with
no redirect to HTTPS) and the shared HTTPS listener never sees it. An expired or not yet
valid certificate is served, with a Warning on the Secret and its users.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ripple_translator.translate import naming, validate
from ripple_translator.translate.certificates import PairCheck, Validity, check_pair
from ripple_translator.translate.diagnostics import Diagnostic, ObjectRef, Reason, error, warning
from ripple_translator.translate.gateway_model import Gateway, Listener
from ripple_translator.translate.model import TlsSecret
from ripple_translator.translate.plan import Accepted


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
    now: datetime | None = None,
) -> TlsPlan:
    """The bindings and Secrets of the Ingresses' ``spec.tls`` (see the module doc); `now`
    (default: the current time) is what the certificates' validity is checked against."""
    diags: list[Diagnostic] = []
    checks = SecretChecks(now=now)
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
            if secret is None:
                diags.append(
                    warning(
                        meta.ref,
                        Reason.SECRET_NOT_FOUND,
                        f"Secret {meta.namespace}/{entry.secret_name} does not exist; "
                        "its hosts get no certificate",
                    )
                )
                continue
            if not checks.usable(secret, user=meta.ref, diags=diags):
                continue
            assert secret.certificate is not None
            assert secret.private_key is not None
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


def check_secret(secret: TlsSecret, *, now: datetime) -> PairCheck:
    """`certificates.check_pair` of a Secret's ``tls.crt`` and ``tls.key``."""
    return check_pair(secret.certificate or "", secret.private_key or "", now=now)


class SecretChecks:
    """Each Secret checked once per plan; the verdict is reported on the Secret once and on
    every object that uses it."""

    def __init__(self, *, now: datetime | None = None) -> None:
        self._now = now if now is not None else datetime.now(UTC)
        self._done: dict[tuple[str, str], PairCheck] = {}

    def check(self, secret: TlsSecret) -> PairCheck:
        key = (secret.meta.namespace, secret.meta.name)
        found = self._done.get(key)
        if found is None:
            found = self._done[key] = check_secret(secret, now=self._now)
        return found

    def usable(
        self, secret: TlsSecret, *, user: ObjectRef, diags: list[Diagnostic], what: str = ""
    ) -> bool:
        """Whether `secret` may be served; its diagnostics (on the Secret and on `user`, the
        object using it, whose message starts with `what`) go to `diags`."""
        verdict = self.check(secret)
        ref = secret.meta.ref
        where = f"Secret {ref.namespace}/{ref.name}"
        if verdict.problem is not None:
            diags.append(
                error(
                    ref,
                    Reason.INVALID_SECRET,
                    f"{verdict.problem}; the hosts using this Secret are not served over HTTPS",
                )
            )
            diags.append(
                warning(
                    user,
                    Reason.INVALID_SECRET,
                    f"{what}{where}: {verdict.problem}; its hosts are not served over HTTPS",
                )
            )
            return False
        if verdict.validity is not Validity.VALID:
            reason = (
                Reason.CERTIFICATE_EXPIRED
                if verdict.validity is Validity.EXPIRED
                else Reason.CERTIFICATE_NOT_YET_VALID
            )
            diags.append(warning(ref, reason, f"{verdict.note}; served anyway"))
            diags.append(warning(user, reason, f"{what}{where}: {verdict.note}; served anyway"))
        return True


def plan_gateway_tls(
    *,
    tenant: str,
    gateways: Sequence[Gateway],
    secrets: Mapping[tuple[str, str], TlsSecret],
    host_allowed: Callable[[str], bool],
    plan: TlsPlan,
    now: datetime | None = None,
) -> TlsPlan:
    """`plan` plus the certificates of the Gateways' HTTPS listeners (``tls.mode`` Terminate):
    the first ``certificateRefs`` Secret (same namespace) is bound to the listener's hostname.
    A host `plan` (the Ingresses) already binds keeps its Secret; then the older Gateway's."""
    diags = list(plan.diagnostics)
    checks = SecretChecks(now=now)
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
            if problem is not None or secret is None or lis.hostname is None:
                diags.append(
                    warning(
                        ref,
                        Reason.INVALID_SECRET,
                        f"listener {lis.name}: {problem}; its hostname gets no certificate",
                    )
                )
                continue
            if not checks.usable(secret, user=ref, diags=diags, what=f"listener {lis.name}: "):
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
