"""Sealed TLS private keys in Secret resources are opened before serving; plaintext passes;
a key that does not open is not served."""

from __future__ import annotations

import os

from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from ripple_common.resources import Resource, TypeUrl
from ripple_common.sealing import SEALED_PREFIX, Sealer
from ripple_translator.seal import seal_secret
from ripple_xds.secrets import SecretOpener
from tests.unit.xds import certs

SEALER = Sealer(os.urandom(32))


def _key(resource: Resource) -> bytes:
    key = secret_pb2.Secret.FromString(resource.body).tls_certificate.private_key
    return bytes(key.inline_bytes or key.inline_string.encode())


def test_sealed_key_is_opened_deterministically() -> None:
    pem = certs.self_signed("a.x")
    plain = certs.secret("t1/ns/s", pem)
    sealed = seal_secret(plain, SEALER)
    assert _key(sealed).startswith(SEALED_PREFIX.encode())
    assert b"PRIVATE KEY" not in sealed.body
    opener = SecretOpener(SEALER)
    first, second = opener(sealed), opener(seal_secret(plain, SEALER))
    assert first is not None
    assert second is not None
    assert _key(first) == pem.private_key
    assert first.body == second.body  # every replica serves the same version
    assert opener.stats.opened == 2


def test_plaintext_and_other_types_pass() -> None:
    opener = SecretOpener(SEALER)
    plain = certs.secret("t1/ns/s", certs.self_signed("a.x"))
    assert opener(plain) is plain
    other = Resource(TypeUrl.CLUSTER, "t1/ns/web:80", b"")
    assert opener(other) is other
    assert opener.stats.plaintext == 1


def test_key_that_does_not_open_is_not_served() -> None:
    plain = certs.secret("t1/ns/s", certs.self_signed("a.x"))
    sealed = seal_secret(plain, SEALER)
    assert SecretOpener(None)(sealed) is None
    assert SecretOpener(Sealer(os.urandom(32)))(sealed) is None
    moved = Resource(TypeUrl.SECRET, "t2/ns/s", sealed.body)  # copied into another tenant
    opener = SecretOpener(SEALER)
    assert opener(moved) is None
    assert opener.stats.refused == 1
