"""Every data field of a Secret but the certificates is sealed, whatever its encoding (a DER
key in `key.der`, any binary or text field); the translator opens only `tls.key`."""

from __future__ import annotations

import base64
import json
import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ripple_common.sealing import PUBLIC_FIELDS, SEALED_PREFIX, Sealer, secret_context
from ripple_translator.unseal import open_secret
from tests.unit.watcher.fakes import FAKE_CERT_PEM, FAKE_KEY_PEM, tls_secret

DER_KEY = ec.generate_private_key(ec.SECP256R1()).private_bytes(
    serialization.Encoding.DER,
    serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption(),
)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_a_der_key_and_every_other_non_certificate_field_are_sealed() -> None:
    sealer = Sealer(os.urandom(32))
    secret = tls_secret("shop", "tls")
    secret["data"] |= {
        "key.der": _b64(DER_KEY),
        "password": _b64(b"hunter2"),
        "ca.crt": _b64(FAKE_CERT_PEM),
        "bundle.p12": _b64(os.urandom(64)),
    }
    sealed = sealer.seal_secret(secret)
    text = json.dumps(sealed)
    assert _b64(DER_KEY) not in text
    assert _b64(b"hunter2") not in text
    assert "PRIVATE KEY" not in text
    for field in ("tls.key", "key.der", "password", "bundle.p12"):
        assert sealed["data"][field].startswith(SEALED_PREFIX), field
    ctx = secret_context(namespace="shop", name="tls", field="key.der")
    assert sealer.open_value(sealed["data"]["key.der"], context=ctx) == DER_KEY
    # Certificates are public: published as they are.
    assert {"tls.crt", "ca.crt"} == PUBLIC_FIELDS
    assert sealed["data"]["tls.crt"] == _b64(FAKE_CERT_PEM)
    assert sealed["data"]["ca.crt"] == _b64(FAKE_CERT_PEM)


def test_a_value_that_is_not_base64_is_dropped_not_published() -> None:
    secret = tls_secret("shop", "tls")
    secret["data"]["key.raw"] = "not base64 at all!"
    sealed = Sealer(os.urandom(32)).seal_secret(secret)
    assert "key.raw" not in sealed["data"]


def test_the_translator_opens_the_private_key_only() -> None:
    sealer = Sealer(os.urandom(32))
    secret = tls_secret("shop", "tls")
    secret["data"]["key.der"] = _b64(DER_KEY)
    opened = open_secret(sealer.seal_secret(secret), sealer)
    assert base64.b64decode(opened["data"]["tls.key"]) == FAKE_KEY_PEM
    assert opened["data"]["key.der"].startswith(SEALED_PREFIX)
