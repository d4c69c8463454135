"""Test certificates made with `cryptography`: a self-signed certificate per set of DNS
names, the Secret resource (`<tenant>/<ns>/<secret>`) the translator would write, and the
tenant's RouteConfiguration naming the Secret each host is served with (`chosen`)."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2

from ripple_common.gateway_contract import TLS_METADATA, TLS_SECRET_KEY
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


def chosen(tenant: str, hosts: Mapping[str, str]) -> Resource:
    """The tenant's RouteConfiguration (`<tenant>/routes`) reduced to what the HTTPS listener
    reads of it: a virtual host per host naming the Secret the translator chose for it."""
    config = route_pb2.RouteConfiguration(name=f"{tenant}/routes")
    for host, secret_name in hosts.items():
        vhost = config.virtual_hosts.add(name=host, domains=[host])
        vhost.metadata.filter_metadata[TLS_METADATA].fields[
            TLS_SECRET_KEY
        ].string_value = secret_name
    return Resource(TypeUrl.ROUTE, config.name, config.SerializeToString(deterministic=True))


def choose(resources: Sequence[Resource], hosts: Mapping[str, str]) -> list[Resource]:
    """A tenant's translated `resources` with its RouteConfiguration's virtual hosts naming the
    Secret that serves each of `hosts` (host -> Secret resource), as the translator writes its
    choice (for xds tests that add Secrets to a translation of their own)."""
    out = []
    for resource in resources:
        if resource.type_url is not TypeUrl.ROUTE:
            out.append(resource)
            continue
        config = route_pb2.RouteConfiguration.FromString(resource.body)
        for vhost in config.virtual_hosts:
            if vhost.name in hosts:
                tls = vhost.metadata.filter_metadata[TLS_METADATA].fields[TLS_SECRET_KEY]
                tls.string_value = hosts[vhost.name]
        body = config.SerializeToString(deterministic=True)
        out.append(Resource(TypeUrl.ROUTE, resource.name, body))
    return out
