"""Opening sealed TLS private keys of Secret resources before they are served.

The design rule: TLS private keys never sit in plaintext in Kafka or Redis. A Secret
resource in Redis may carry its private key sealed (`ripple_common.sealing`: the
`tls_certificate.private_key` data source holds `ripple:aesgcm:v1:<key id>:<...>` bound to
`resource_context(<secret name>)`); Envoy needs the plaintext, so the xds server opens it
with the operator's key (RIPPLE_XDS_SEALING_KEY) on the way into its cache, once per change.
The opened body is deterministic, so every replica serves the same version. A Secret whose
key does not open (no key, wrong key, tampered) is not served: the cache keeps what it had.
Plaintext keys (a translator without a sealing key) pass through, counted. The sealing side
is `ripple_translator.seal`.

Every tenant's certificates share one HTTPS listener, and Envoy refuses a whole listener (and
so every tenant's new HTTPS hosts) over one certificate it cannot load. The translator checks
each pair; this is the second line: a TLS Secret whose certificate and key Envoy would reject
(`pair_problem`: unparsable, a key type Envoy does not serve, or a key that does not match the
leaf certificate, Envoy's KEY_VALUES_MISMATCH) is not served either, the cache keeping what
it had; the refusal is logged and counted against the Secret's tenant
(`ripple_xds_secrets_rejected_total{tenant}`). Pure: no I/O."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from ripple_common.envoy_keys import EC_CURVES, MIN_RSA_BITS, rsa_consistent
from ripple_common.resources import Resource, TypeUrl
from ripple_common.sealing import SEALED_PREFIX, Sealer, SealingError, resource_context
from ripple_xds.tenants import tenant_of

_log = structlog.get_logger(__name__)
_SEALED = SEALED_PREFIX.encode()


_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(slots=True)
class SecretStats:
    opened: int = 0
    plaintext: int = 0
    refused: int = 0
    # TLS Secrets not served because Envoy would reject their certificate and key, by tenant.
    rejected: Counter[str] = field(default_factory=Counter)


def pair_problem(certificate: bytes, private_key: bytes) -> str | None:
    """Why Envoy would refuse to load this PEM certificate chain with this PEM private key
    (None: it loads them)."""
    try:
        leaf = x509.load_pem_x509_certificates(certificate)[0]
        cert_spki = leaf.public_key().public_bytes(*_SPKI)
    except (ValueError, UnsupportedAlgorithm) as exc:
        return f"the certificate chain does not parse: {exc}"
    try:
        key = serialization.load_pem_private_key(
            private_key, password=None, unsafe_skip_rsa_key_validation=True
        )
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        return f"the private key does not parse: {exc}"
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            return f"RSA key of {key.key_size} bits (Envoy needs {MIN_RSA_BITS} or more)"
        if not rsa_consistent(key):
            return "RSA key whose parts do not fit together (D_E_NOT_CONGRUENT_TO_1 and alike)"
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name not in EC_CURVES:
            return f"EC key on {key.curve.name} (Envoy serves P-256, P-384, P-521)"
    elif not isinstance(key, ed25519.Ed25519PrivateKey):
        return f"a {type(key).__name__} private key (Envoy serves RSA, ECDSA, Ed25519)"
    if key.public_key().public_bytes(*_SPKI) != cert_spki:
        return "the private key does not match the certificate (KEY_VALUES_MISMATCH)"
    return None


class SecretOpener:
    """Opens the sealed private key of Secret resources; clusters go through `clusters` (e.g.
    `external_names.ExternalNameGate`), other resources pass as they are."""

    def __init__(
        self,
        sealer: Sealer | None,
        *,
        clusters: Callable[[Resource], Resource | None] | None = None,
    ) -> None:
        self._sealer = sealer
        self._clusters = clusters
        self.stats = SecretStats()

    def __call__(self, resource: Resource) -> Resource | None:
        """`resource` ready to serve, or None when it must not be served."""
        if resource.type_url is TypeUrl.CLUSTER and self._clusters is not None:
            return self._clusters(resource)
        if resource.type_url is not TypeUrl.SECRET:
            return resource
        secret = secret_pb2.Secret.FromString(resource.body)
        if not secret.HasField("tls_certificate"):
            return resource
        key = secret.tls_certificate.private_key
        raw = key.inline_bytes or key.inline_string.encode()
        chain = secret.tls_certificate.certificate_chain
        certificate = chain.inline_bytes or chain.inline_string.encode()
        if not raw.startswith(_SEALED):
            if (problem := pair_problem(certificate, raw)) is not None:
                return self._reject(resource, problem)
            self.stats.plaintext += 1
            return resource
        if self._sealer is None:
            return self._refuse(resource, "sealed private key but no RIPPLE_XDS_SEALING_KEY")
        try:
            plain = self._sealer.open_value(raw.decode(), context=resource_context(resource.name))
        except (SealingError, UnicodeDecodeError) as exc:
            return self._refuse(resource, str(exc))
        if (problem := pair_problem(certificate, plain)) is not None:
            return self._reject(resource, problem)
        key.Clear()
        key.inline_bytes = plain
        self.stats.opened += 1
        body = secret.SerializeToString(deterministic=True)
        return Resource(TypeUrl.SECRET, resource.name, body)

    def _reject(self, resource: Resource, problem: str) -> Resource | None:
        tenant = tenant_of(resource.name) or "-"
        self.stats.rejected[tenant] += 1
        _log.error(
            "secret not served: Envoy would reject its certificate and key",
            secret=resource.name,
            tenant=tenant,
            error=problem[:300],
        )
        return None

    def _refuse(self, resource: Resource, reason: str) -> Resource | None:
        self.stats.refused += 1
        _log.error(
            "secret not served: its private key does not open", secret=resource.name, error=reason
        )
        return None
