"""TLS Secrets are checked as Envoy will load them (`certificates.check_pair`): the chain and
the key parse, the key is of a type Envoy serves and matches the leaf certificate; expiry is
only a warning. A Secret that fails is left out with diagnostics on it and on its users, and
only its hosts lose HTTPS."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from ripple_common.resources import TypeUrl
from ripple_translator.translate import Reason, Severity
from ripple_translator.translate.certificates import Validity, check_pair, names_host
from tests.unit.translator import decode, gwapi, k8s

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def ec_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP256R1())


def cert_pem(
    key: Key,
    host: str = "shop.example.com",
    *,
    before: datetime.datetime = NOW - DAY,
    after: datetime.datetime = NOW + DAY,
    san: bool = True,
) -> str:
    """A self-signed certificate for `host` (its common name, and its DNS SAN with `san`)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(before)
        .not_valid_after(after)
    )
    if san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False
        )
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key: Key, fmt: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8) -> str:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


# -- the pure check ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "fmt"),
    [
        (rsa_key(), serialization.PrivateFormat.PKCS8),
        (rsa_key(), serialization.PrivateFormat.TraditionalOpenSSL),  # BEGIN RSA PRIVATE KEY
        (ec_key(), serialization.PrivateFormat.PKCS8),
        (ec_key(), serialization.PrivateFormat.TraditionalOpenSSL),  # BEGIN EC PRIVATE KEY
        (ec_key(ec.SECP384R1()), serialization.PrivateFormat.PKCS8),
        (ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.PKCS8),
    ],
    ids=["rsa-pkcs8", "rsa-pkcs1", "ec-pkcs8", "ec-sec1", "ec-p384", "ed25519"],
)
def test_matching_pairs_pass(key: Key, fmt: serialization.PrivateFormat) -> None:
    check = check_pair(cert_pem(key), key_pem(key, fmt), now=NOW)

    assert check.ok, check.problem
    assert check.validity is Validity.VALID


def test_a_chain_with_intermediates_is_checked_against_its_leaf() -> None:
    leaf, other = ec_key(), ec_key()
    chain = cert_pem(leaf) + cert_pem(other, "intermediate")

    assert check_pair(chain, key_pem(leaf), now=NOW).ok
    assert not check_pair(chain, key_pem(other), now=NOW).ok


@pytest.mark.parametrize(
    ("cert_key", "key"), [(ec_key(), ec_key()), (rsa_key(), rsa_key()), (rsa_key(), ec_key())]
)
def test_a_key_of_another_certificate_is_refused(cert_key: Key, key: Key) -> None:
    check = check_pair(cert_pem(cert_key), key_pem(key), now=NOW)

    assert check.problem is not None
    assert "does not match" in check.problem


@pytest.mark.parametrize(
    ("cert", "expected"),
    [
        ("not a certificate", "not a PEM certificate"),
        ("-----BEGIN CERTIFICATE-----\nMIIBdummy\n-----END CERTIFICATE-----\n", "does not parse"),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "does not parse"),
        ("", "lacks"),
    ],
)
def test_garbage_certificates_are_refused(cert: str, expected: str) -> None:
    check = check_pair(cert, key_pem(ec_key()), now=NOW)

    assert check.problem is not None
    assert expected in check.problem


def test_garbage_and_unusable_keys_are_refused() -> None:
    key = ec_key()
    cert = cert_pem(key)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    ).decode()
    cases = {
        "not a key": "not a PEM private key",
        "-----BEGIN PRIVATE KEY-----\nMIIEdummy\n-----END PRIVATE KEY-----\n": "does not parse",
        encrypted: "encrypted",
        "ripple:aesgcm:v1:k1:abc": "sealed",
        key_pem(key) + key_pem(ec_key()): "more than one",
    }
    for text, expected in cases.items():
        check = check_pair(cert, text, now=NOW)
        assert check.problem is not None, expected
        assert expected in check.problem


def inconsistent_rsa_key() -> rsa.RSAPrivateKey:
    """An RSA key whose public part is right but whose d is not (Envoy:
    D_E_NOT_CONGRUENT_TO_1)."""
    n = rsa_key().private_numbers()
    return rsa.RSAPrivateNumbers(
        p=n.p,
        q=n.q,
        d=n.d + 2,
        dmp1=n.dmp1,
        dmq1=n.dmq1,
        iqmp=n.iqmp,
        public_numbers=n.public_numbers,
    ).private_key(unsafe_skip_rsa_key_validation=True)


def test_an_rsa_key_whose_parts_do_not_fit_is_refused() -> None:
    key = inconsistent_rsa_key()
    check = check_pair(cert_pem(key), key_pem(key), now=NOW)

    assert check.problem is not None
    assert "do not fit together" in check.problem


@pytest.mark.parametrize(
    ("key", "expected"),
    [(rsa_key(1024), "1024 bits"), (ec_key(ec.SECP256K1()), "secp256k1")],
)
def test_key_types_envoy_does_not_serve_are_refused(key: Key, expected: str) -> None:
    check = check_pair(cert_pem(key), key_pem(key), now=NOW)

    assert check.problem is not None
    assert expected in check.problem


def test_expired_and_not_yet_valid_certificates_pass_with_a_note() -> None:
    key = ec_key()
    expired = check_pair(
        cert_pem(key, before=NOW - 3 * DAY, after=NOW - DAY), key_pem(key), now=NOW
    )
    early = check_pair(cert_pem(key, before=NOW + DAY, after=NOW + 3 * DAY), key_pem(key), now=NOW)

    assert expired.ok
    assert expired.validity is Validity.EXPIRED
    assert "expired" in expired.note
    assert early.ok
    assert early.validity is Validity.NOT_YET_VALID


# -- in the translation -----------------------------------------------------------------------

TLS = [{"hosts": ["shop.example.com"], "secretName": "web-tls"}]
OTHER_TLS = [{"hosts": ["other.example.com"], "secretName": "other-tls"}]


def mismatched_secret(name: str = "web-tls") -> dict[str, Any]:
    return k8s.tls_secret(name, cert=cert_pem(ec_key()), key=key_pem(ec_key()))


def test_a_mismatched_secret_is_left_out_with_diagnostics_on_it_and_its_ingresses() -> None:
    other_rules = [k8s.rule("other.example.com")]
    t = k8s.run(
        k8s.ingress("a", tls=TLS),
        k8s.ingress("b", tls=TLS, rules=[k8s.rule("shop.example.com", k8s.path("/b"))]),
        k8s.ingress("c", tls=OTHER_TLS, rules=other_rules),
        secrets=[mismatched_secret(), k8s.tls_secret("other-tls")],
    )

    assert decode.names(t, TypeUrl.SECRET) == ["t1/shop/other-tls"]
    assert [(b.host, b.secret) for b in t.tls] == [("other.example.com", "t1/shop/other-tls")]
    diags = decode.diags(t, Reason.INVALID_SECRET)
    on_secret = [d for d in diags if d.object.kind == "Secret"]
    assert [(d.object.name, d.severity) for d in on_secret] == [("web-tls", Severity.ERROR)]
    assert "does not match" in on_secret[0].message
    users = sorted((d.object.name, d.severity) for d in diags if d.object.kind == "Ingress")
    assert users == [("a", Severity.WARNING), ("b", Severity.WARNING)]
    assert "not served over HTTPS" in diags[0].message
    # Its routes are still served (plain HTTP); only its certificate is left out.
    assert "shop.example.com" in t.hosts


def test_an_expired_certificate_is_served_with_warnings() -> None:
    key = ec_key()
    secret = k8s.tls_secret(
        cert=cert_pem(key, before=NOW - 3 * DAY, after=NOW - DAY), key=key_pem(key)
    )
    t = k8s.run(k8s.ingress(tls=TLS), secrets=[secret])

    assert decode.names(t, TypeUrl.SECRET) == ["t1/shop/web-tls"]
    diags = decode.diags(t, Reason.CERTIFICATE_EXPIRED, Severity.WARNING)
    assert sorted(d.object.kind for d in diags) == ["Ingress", "Secret"]
    assert not decode.diags(t, Reason.INVALID_SECRET)


def test_a_gateway_listener_with_a_mismatched_secret_gets_no_certificate() -> None:
    gw = gwapi.gateway(
        listeners=[
            gwapi.listener(
                "https", protocol="HTTPS", port=443, hostname=gwapi.HOST, certificates=["web-tls"]
            )
        ]
    )
    t = gwapi.run(gwapi.http_route(), gateways=[gw], secrets=[mismatched_secret()])

    assert decode.names(t, TypeUrl.SECRET) == []
    assert t.tls == ()
    kinds = sorted(d.object.kind for d in decode.diags(t, Reason.INVALID_SECRET))
    assert kinds == ["Gateway", "Secret"]


# -- which hosts a certificate serves -------------------------------------------------------------


def test_the_names_are_the_dns_sans_else_the_common_name() -> None:
    key = ec_key()
    with_san = check_pair(cert_pem(key, "Shop.example.com"), key_pem(key), now=NOW)
    cn_only = check_pair(cert_pem(key, "legacy.example.com", san=False), key_pem(key), now=NOW)

    assert with_san.names == {"shop.example.com"}
    assert cn_only.names == {"legacy.example.com"}


@pytest.mark.parametrize(
    ("host", "served"),
    [
        ("a.example.com", True),
        ("b.example.com", True),  # the wildcard
        ("*.example.com", True),  # the wildcard host itself
        ("x.a.example.com", False),  # one label only
        ("example.com", False),
        ("a.example.org", False),
    ],
)
def test_a_certificate_serves_the_hosts_it_names(host: str, served: bool) -> None:
    assert names_host(frozenset({"a.example.com", "*.example.com"}), host) is served
