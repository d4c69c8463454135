"""Test certificates made with `cryptography`: a self-signed certificate per set of DNS
names, and the Secret resource (`<tenant>/<ns>/<secret>`) the translator would write."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2

from ripple_common.resources import Resource, TypeUrl


@dataclass(frozen=True, slots=True)
class Pem:
    certificate: bytes
    private_key: bytes
    der: bytes  # the certificate, DER (what a TLS client sees)


def self_signed(*names: str) -> Pem:
    """A self-signed certificate for DNS `names` (the first is also the common name)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (
        _builder(subject, subject, key.public_key(), ca=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .sign(key, hashes.SHA256())
    )
    return _pem(cert, key)


@dataclass(frozen=True, slots=True)
class Authority:
    """A test CA: its certificate (PEM) and what signs the certificates it issues."""

    pem: Pem
    key: ec.EllipticCurvePrivateKey
    name: x509.Name


def authority(name: str = "ripple test CA") -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = _builder(subject, subject, key.public_key(), ca=True).sign(key, hashes.SHA256())
    return Authority(pem=_pem(cert, key), key=key, name=subject)


def issued(
    ca: Authority, *names: str, ips: tuple[str, ...] = (), uris: tuple[str, ...] = ()
) -> Pem:
    """A certificate signed by `ca` for DNS `names` (the first is also the common name, else
    the first URI), IP addresses `ips` and URIs `uris` (e.g. SPIFFE ids), usable by servers
    and clients."""
    key = ec.generate_private_key(ec.SECP256R1())
    common = names[0] if names else uris[0]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    sans += [x509.UniformResourceIdentifier(u) for u in uris]
    cert = (
        _builder(subject, ca.name, key.public_key(), ca=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return _pem(cert, key)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, *, ca: bool
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )


def _pem(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Pem:
    return Pem(
        certificate=cert.public_bytes(serialization.Encoding.PEM),
        private_key=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        der=cert.public_bytes(serialization.Encoding.DER),
    )


def secret(name: str, pem: Pem) -> Resource:
    """A Secret resource as the translator writes it (inline PEM)."""
    message = secret_pb2.Secret(
        name=name,
        tls_certificate=common_pb2.TlsCertificate(
            certificate_chain=base_pb2.DataSource(inline_bytes=pem.certificate),
            private_key=base_pb2.DataSource(inline_bytes=pem.private_key),
        ),
    )
    return Resource(TypeUrl.SECRET, name, message.SerializeToString())
