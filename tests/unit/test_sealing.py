from __future__ import annotations

import base64
import json
import os

import pytest

from ripple_common.sealing import SEALED_PREFIX, Sealer, SealingError, secret_context
from tests.unit.watcher.fakes import FAKE_CERT_PEM, FAKE_KEY_PEM, tls_secret


@pytest.fixture
def sealer() -> Sealer:
    return Sealer(os.urandom(32))


def test_sealed_secret_holds_no_private_key(sealer: Sealer) -> None:
    sealed = sealer.seal_secret(tls_secret("shop", "tls"))
    text = json.dumps(sealed)
    assert "PRIVATE KEY" not in text
    assert base64.b64encode(FAKE_KEY_PEM).decode() not in text
    assert sealed["data"]["tls.key"].startswith(SEALED_PREFIX)


def test_sealed_key_opens_with_the_same_key(sealer: Sealer) -> None:
    sealed = sealer.seal_secret(tls_secret("shop", "tls"))
    ctx = secret_context(namespace="shop", name="tls", field="tls.key")
    assert sealer.open_value(sealed["data"]["tls.key"], context=ctx) == FAKE_KEY_PEM


def test_sealed_key_does_not_open_in_another_secret(sealer: Sealer) -> None:
    sealed = sealer.seal_secret(tls_secret("shop", "tls"))
    other = secret_context(namespace="evil", name="tls", field="tls.key")
    with pytest.raises(SealingError):
        sealer.open_value(sealed["data"]["tls.key"], context=other)


def test_sealed_key_does_not_open_with_another_key(sealer: Sealer) -> None:
    sealed = sealer.seal_secret(tls_secret("shop", "tls"))
    ctx = secret_context(namespace="shop", name="tls", field="tls.key")
    with pytest.raises(SealingError, match="sealed with key"):
        Sealer(os.urandom(32)).open_value(sealed["data"]["tls.key"], context=ctx)


def test_certificate_stays_as_it_was(sealer: Sealer) -> None:
    sealed = sealer.seal_secret(tls_secret("shop", "tls"))
    assert base64.b64decode(sealed["data"]["tls.crt"]) == FAKE_CERT_PEM


def test_any_pem_private_key_field_is_sealed(sealer: Sealer) -> None:
    secret = tls_secret("shop", "tls")
    secret["data"]["ca.key"] = base64.b64encode(FAKE_KEY_PEM).decode()
    assert sealer.seal_secret(secret)["data"]["ca.key"].startswith(SEALED_PREFIX)


def test_key_of_a_wrong_length_is_refused() -> None:
    with pytest.raises(SealingError, match="bytes"):
        Sealer(b"short")


def test_key_that_is_not_base64_is_refused() -> None:
    with pytest.raises(SealingError, match="base64"):
        Sealer.from_base64("not base64!")


def test_deterministic_sealing_repeats_only_for_the_same_key_context_and_plaintext(
    sealer: Sealer,
) -> None:
    seal = sealer.seal_value
    first = seal(FAKE_KEY_PEM, context="xds:t/ns/s/private_key", deterministic=True)
    assert first == seal(FAKE_KEY_PEM, context="xds:t/ns/s/private_key", deterministic=True)
    assert sealer.open_value(first, context="xds:t/ns/s/private_key") == FAKE_KEY_PEM
    others = {
        seal(FAKE_KEY_PEM + b"\n", context="xds:t/ns/s/private_key", deterministic=True),
        seal(FAKE_KEY_PEM, context="xds:t/ns/other/private_key", deterministic=True),
        Sealer(os.urandom(32)).seal_value(FAKE_KEY_PEM, context="c", deterministic=True),
        seal(FAKE_KEY_PEM, context="xds:t/ns/s/private_key"),  # random nonce
    }
    assert first not in others
    assert len(others) == 4
    # Different plaintexts never share a nonce (the nonce is the first 12 bytes).
    nonces = {base64.b64decode(v.rsplit(":", 1)[1])[:12] for v in (first, *others)}
    assert len(nonces) == 5
