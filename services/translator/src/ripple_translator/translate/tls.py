"""TLS: the Secrets the tenant's Ingresses reference, and which host uses which certificate.

Each ``spec.tls`` entry binds its hosts (all the Ingress's rule hosts when it lists none) to a
Secret in the Ingress's namespace. This is the one place that decides which certificate serves
a host over HTTPS (the xds server serves exactly this choice, written on the host's virtual
host: `gateway_contract.TLS_METADATA`), as ingress-nginx decides it: Ingresses oldest first, a
host takes the first Secret whose certificate names it (`certificates.names_host`: a DNS name
that is the host or its one-label wildcard); a Secret whose certificate does not name the host
is not used for it (a Warning; a later Ingress's may be), and a host bound already keeps the
older Ingress's Secret (a Warning on the younger). Gateways' HTTPS listeners come after the
Ingresses (`plan_gateway_tls`). A host with no binding of its own is served with its one-label
wildcard's (`TlsPlan.secret_for`). The Secrets bound become SDS resources.

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
from ripple_translator.translate.certificates import PairCheck, Validity, check_pair, names_host
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
    bindings: tuple[TlsBinding, ...]  # sorted
    secrets: tuple[TlsMaterial, ...]  # sorted by name
    diagnostics: tuple[Diagnostic, ...]
    _by_host: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_host", {b.host: b.secret for b in self.bindings})

    def secret_for(self, host: str) -> str | None:
        """The Secret resource serving `host` over HTTPS: its own binding, else its one-label
        wildcard's (the gateway's SNI match does the same); None: no certificate."""
        own = self._by_host.get(host)
        if own is not None:
            return own
        _, dot, parent = host.partition(".")
        return self._by_host.get(f"*.{parent}") if dot else None

    def has_certificate(self, host: str) -> bool:
        """Whether a binding covers `host`, directly or by a one-label wildcard."""
        return self.secret_for(host) is not None


@dataclass(slots=True)
class _Binder:
    """host -> Secret, first come first served (callers go oldest first)."""

    diags: list[Diagnostic]
    bound: dict[str, tuple[str, str]] = field(default_factory=dict)  # host -> (Secret, by)
    used: dict[str, TlsMaterial] = field(default_factory=dict)

    @classmethod
    def after(cls, plan: TlsPlan, by: str) -> _Binder:
        binder = cls(list(plan.diagnostics))
        binder.bound = {b.host: (b.secret, by) for b in plan.bindings}
        binder.used = {m.name: m for m in plan.secrets}
        return binder

    def bind(
        self,
        host: str,
        material: TlsMaterial,
        *,
        secret: TlsSecret,
        names: frozenset[str],
        user: ObjectRef,
        by: str,
        what: str = "",
    ) -> None:
        """Bind `host` to `material` (Secret `secret`, DNS names `names`) for `user`, `by`
        naming it in a later conflict; `what` starts the diagnostics' messages."""
        previous = self.bound.get(host)
        if previous is not None:
            if previous[0] != material.name:
                self.diags.append(
                    warning(
                        user,
                        Reason.SETTING_CONFLICT,
                        f"{what}TLS host {host} already uses Secret {previous[0]} of "
                        f"{previous[1]}; {secret.meta.name} is not used",
                    )
                )
            return
        if not names_host(names, host):
            shown = ", ".join(sorted(names)[:5]) or "none"
            self.diags.append(
                warning(
                    user,
                    Reason.CERTIFICATE_HOST_MISMATCH,
                    f"{what}the certificate of Secret {secret.meta.namespace}/{secret.meta.name} "
                    f"does not name TLS host {host} (its DNS names: {shown}); it does not "
                    "serve that host",
                )
            )
            return
        self.bound[host] = (material.name, by)
        self.used[material.name] = material

    def plan(self) -> TlsPlan:
        return TlsPlan(
            bindings=tuple(sorted(TlsBinding(h, s) for h, (s, _) in self.bound.items())),
            secrets=tuple(sorted(self.used.values())),
            diagnostics=tuple(self.diags),
        )


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
    binder = _Binder([])
    diags = binder.diags
    checks = SecretChecks(now=now)
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
            material = _material(tenant, secret)
            names = checks.check(secret).names
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
                binder.bind(
                    host,
                    material,
                    secret=secret,
                    names=names,
                    user=meta.ref,
                    by=f"the older Ingress {acc.label}",
                )
    return binder.plan()


def _material(tenant: str, secret: TlsSecret) -> TlsMaterial:
    assert secret.certificate is not None
    assert secret.private_key is not None
    name = naming.secret_name(tenant, secret.meta.namespace, secret.meta.name)
    return TlsMaterial(name, secret.certificate, secret.private_key)


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
    the first ``certificateRefs`` Secret (same namespace) is bound to the listener's hostname
    when its certificate names it. A host `plan` (the Ingresses) already binds keeps its Secret;
    then the older Gateway's."""
    binder = _Binder.after(plan, "an Ingress")
    diags = binder.diags
    checks = SecretChecks(now=now)
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
            what = f"listener {lis.name}: "
            if not checks.usable(secret, user=ref, diags=diags, what=what):
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
            binder.bind(
                host,
                _material(tenant, secret),
                secret=secret,
                names=checks.check(secret).names,
                user=ref,
                by=label,
                what=what,
            )
    return binder.plan()


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
