"""The gateway's default TLS certificate: what the HTTPS listener presents when no tenant
certificate matches (a host whose Secret is missing or invalid, an unknown host, a client
without SNI), as ingress-nginx's default ("fake") certificate.

Configured (`RIPPLE_XDS_DEFAULT_CERTIFICATE_FILE` and `..._KEY_FILE`, e.g. a Kubernetes TLS
Secret mounted as files, ingress-nginx's `--default-ssl-certificate`), or generated at start:
self-signed, named as ingress-nginx's (subject CN "Kubernetes Ingress Controller Fake
Certificate", O "Acme Co", DNS name `ingress.local`), an ECDSA P-256 key that never leaves
the process but as the Secret resource `DEFAULT_CERTIFICATE` in the snapshot cache (and,
sealed, in Redis to be shared by the replicas: `default_certificate_store`). That
resource is served like every tenant's key: by SDS, only to gateways whose client
certificate was verified (mTLS), or to anyone with RIPPLE_XDS_INSECURE_DEV_SECRETS (see
`identity.secrets_allowed`); it is never written to Kafka nor in the clear to Redis, never
inlined in a listener. Pure but for reading the configured files."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2

from ripple_common.resources import Resource, TypeUrl
from ripple_xds.secrets import pair_problem

# No tenant prefix: every gateway's HTTPS listener uses it (`identity.Gateway.allows`).
DEFAULT_CERTIFICATE: Final = "ripple-default-certificate"
FAKE_COMMON_NAME: Final = "Kubernetes Ingress Controller Fake Certificate"
FAKE_ORGANIZATION: Final = "Acme Co"
FAKE_DNS_NAME: Final = "ingress.local"
FAKE_VALIDITY: Final = datetime.timedelta(days=365)


class DefaultCertificateError(ValueError):
    """A configured default certificate Envoy would not load."""


def generate_fake(now: datetime.datetime | None = None) -> tuple[bytes, bytes]:
    """A self-signed certificate and its key (PEM) named as ingress-nginx's fake certificate."""
    now = now or datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, FAKE_ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, FAKE_COMMON_NAME),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + FAKE_VALIDITY)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(FAKE_DNS_NAME)]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def default_secret(certificate: bytes, private_key: bytes) -> Resource:
    """The Secret resource `DEFAULT_CERTIFICATE` of this PEM pair; DefaultCertificateError
    when Envoy would refuse it (a listener referring to it would never serve)."""
    problem = pair_problem(certificate, private_key)
    if problem is not None:
        raise DefaultCertificateError(f"default certificate: {problem}")
    secret = secret_pb2.Secret(
        name=DEFAULT_CERTIFICATE,
        tls_certificate=common_pb2.TlsCertificate(
            certificate_chain=base_pb2.DataSource(inline_bytes=certificate),
            private_key=base_pb2.DataSource(inline_bytes=private_key),
        ),
    )
    return Resource(
        TypeUrl.SECRET, DEFAULT_CERTIFICATE, secret.SerializeToString(deterministic=True)
    )


def load_default_secret(certificate_file: Path | None, key_file: Path | None) -> Resource:
    """The configured pair (both files), else a generated fake certificate."""
    if certificate_file is None or key_file is None:
        return default_secret(*generate_fake())
    try:
        certificate, key = certificate_file.read_bytes(), key_file.read_bytes()
    except OSError as exc:
        raise DefaultCertificateError(f"default certificate: cannot read {exc.filename}") from exc
    return default_secret(certificate, key)
