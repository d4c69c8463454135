"""Checking a TLS Secret's certificate chain and private key as Envoy will (pure: no I/O).

Every tenant's certificates share one HTTPS listener, so a pair Envoy rejects must never reach
it: Envoy would refuse the whole listener (e.g. ``KEY_VALUES_MISMATCH``), and with it every
tenant's new HTTPS hosts. `check_pair` parses both with `cryptography` and says whether Envoy
can serve them:

- the chain (``tls.crt``) is one or more PEM certificates that parse; the first is the leaf;
- the key (``tls.key``) is one unencrypted PEM private key that parses (PKCS#1 ``RSA PRIVATE
  KEY``, SEC1 ``EC PRIVATE KEY`` or PKCS#8 ``PRIVATE KEY``) of a type Envoy serves: RSA of
  2048 bits or more, ECDSA on P-256, P-384 or P-521, or Ed25519;
- the key matches the leaf's public key.

A leaf that is not yet valid or has expired is served (clients decide), with a warning. The
leaf's DNS names (`PairCheck.names`) say which hosts it may serve (`names_host`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from ripple_common.envoy_keys import EC_CURVES, MIN_RSA_BITS, rsa_consistent
from ripple_common.sealing import SEALED_PREFIX

_CERT_BEGIN = "-----BEGIN CERTIFICATE-----"
_KEY_END = "PRIVATE KEY-----"


class Validity(enum.StrEnum):
    """What the leaf's validity period says about `now`."""

    VALID = "valid"
    NOT_YET_VALID = "not yet valid"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True, kw_only=True)
class PairCheck:
    """The verdict on a certificate chain and key: `problem` is why Envoy would reject them
    (None: servable); `validity` and `note` tell about the leaf's validity period; `names` are
    the leaf's DNS names (subjectAltName, else its common name; lower case)."""

    problem: str | None
    validity: Validity = Validity.VALID
    note: str = ""
    names: frozenset[str] = frozenset()

    @property
    def ok(self) -> bool:
        return self.problem is None


def check_pair(certificate: str, private_key: str, *, now: datetime) -> PairCheck:
    """Whether Envoy can serve `certificate` (a PEM chain) with `private_key` (PEM) at `now`
    (timezone-aware). Messages name ``tls.crt``/``tls.key``, never their content."""
    if not certificate or not private_key:
        return PairCheck(problem="lacks tls.crt or tls.key")
    leaf, problem = _leaf(certificate)
    if leaf is None:
        return PairCheck(problem=problem)
    key, problem = _private_key(private_key)
    if key is None:
        return PairCheck(problem=problem)
    unusable = _key_type_problem(key)
    if unusable is not None:
        return PairCheck(problem=unusable)
    if _spki(key.public_key()) != _spki(leaf.public_key()):
        return PairCheck(
            problem="tls.key does not match the certificate in tls.crt (its public key differs "
            "from the certificate's); Envoy would reject the pair (KEY_VALUES_MISMATCH)"
        )
    return _validity(leaf, now, _dns_names(leaf))


def names_host(names: frozenset[str], host: str) -> bool:
    """Whether a certificate with DNS names `names` serves `host` (exact, or a ``*.`` host
    itself): one of its names is the host, or the host's one-label wildcard (as a TLS client
    checks a server name; ingress-nginx serves a host only with a certificate naming it)."""
    if host in names:
        return True
    _, dot, parent = host.partition(".")
    return bool(dot) and f"*.{parent}" in names


def _dns_names(leaf: x509.Certificate) -> frozenset[str]:
    """The leaf's DNS subjectAltNames; without any, its subject common name (ingress-nginx
    falls back to it too)."""
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = san.value.get_values_for_type(x509.DNSName)
    except (x509.ExtensionNotFound, ValueError):
        names = []
    if not names:
        try:
            common = leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        except ValueError:
            common = []
        names = [str(a.value) for a in common]
    return frozenset(n.lower() for n in names)


def _leaf(certificate: str) -> tuple[x509.Certificate | None, str]:
    if _CERT_BEGIN not in certificate:
        return None, "tls.crt is not a PEM certificate"
    try:
        chain = x509.load_pem_x509_certificates(certificate.encode())
    except ValueError as exc:
        return None, f"tls.crt does not parse as a PEM certificate chain ({_short(exc)})"
    try:
        leaf = chain[0]
        leaf.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        return None, f"the certificate's public key in tls.crt is unusable ({_short(exc)})"
    return leaf, ""


_PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def _private_key(private_key: str) -> tuple[_PrivateKey | None, str]:
    text = private_key.strip()
    if text.startswith(SEALED_PREFIX):
        return None, "tls.key is sealed and did not open (the translator's sealing key differs)"
    if "ENCRYPTED" in text:
        return None, "tls.key is encrypted (Envoy needs an unencrypted key)"
    if "-----BEGIN" not in text or _KEY_END not in text:
        return None, "tls.key is not a PEM private key"
    if text.count("-----BEGIN") != 1:
        return None, "tls.key holds more than one PEM block (one private key expected)"
    try:
        # cryptography's own RSA check tests primality (70 ms for 2048 bits, 600 ms for 4096);
        # `rsa_consistent` checks what BoringSSL checks when Envoy loads the key, in µs.
        key = serialization.load_pem_private_key(
            text.encode(), password=None, unsafe_skip_rsa_key_validation=True
        )
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        return None, f"tls.key does not parse as a private key ({_short(exc)})"
    if isinstance(key, rsa.RSAPrivateKey) and not rsa_consistent(key):
        return None, "tls.key is an RSA key whose parts do not fit together (n, d, p, q, CRT)"
    if not isinstance(key, _PrivateKey):
        kind = type(key).__name__.removeprefix("_")
        return None, f"tls.key is a {kind}, which Envoy does not serve"
    return key, ""


def _key_type_problem(key: _PrivateKey) -> str | None:
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        return f"tls.key is an RSA key of {key.key_size} bits; Envoy needs {MIN_RSA_BITS} or more"
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name not in EC_CURVES:
        return f"tls.key is an EC key on {key.curve.name}; Envoy serves P-256, P-384 and P-521 only"
    return None


def _validity(leaf: x509.Certificate, now: datetime, names: frozenset[str]) -> PairCheck:
    before, after = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    if now < before:
        return PairCheck(
            problem=None,
            validity=Validity.NOT_YET_VALID,
            note=f"the certificate in tls.crt is not valid before {before.isoformat()}",
            names=names,
        )
    if now > after:
        return PairCheck(
            problem=None,
            validity=Validity.EXPIRED,
            note=f"the certificate in tls.crt expired at {after.isoformat()}",
            names=names,
        )
    return PairCheck(problem=None, names=names)


def _spki(public_key: CertificatePublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]
