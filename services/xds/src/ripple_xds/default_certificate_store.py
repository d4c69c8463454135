"""One generated default certificate for every xds replica (Redis adapter).

Without configured files each replica would generate its own default certificate, so an
Envoy moving to another replica would be sent a different one (a resend, and clients see the
certificate change). With a sealing key, the first replica to start stores its generated
pair under `KeyLayout.default_certificate`, the private key sealed with the operator's key
(never in plaintext in Redis), and every replica serves that pair. A pair that expires
within `RENEW_BEFORE` is replaced by a new one at the next start. Without a sealing key
nothing is stored and each replica keeps its own (a key is never stored in the clear)."""

from __future__ import annotations

import datetime
import json
from typing import Final

import redis.asyncio as aioredis
import structlog
from cryptography import x509

from ripple_common.sealing import Sealer, SealingError
from ripple_common.store_contract import KeyLayout

log = structlog.get_logger(__name__)

SEALING_CONTEXT: Final = "ripple:default-certificate:key"
RENEW_BEFORE: Final = datetime.timedelta(days=30)


def encode_pair(certificate: bytes, private_key: bytes, sealer: Sealer) -> bytes:
    """The stored form: the certificate in PEM, the key sealed."""
    sealed = sealer.seal_value(private_key, context=SEALING_CONTEXT)
    return json.dumps({"certificate": certificate.decode(), "key": sealed}).encode()


def decode_pair(raw: bytes | str, sealer: Sealer) -> tuple[bytes, bytes]:
    """The stored pair opened; ValueError (SealingError) when it does not parse or open."""
    try:
        doc = json.loads(raw)
        certificate, sealed = doc["certificate"].encode(), str(doc["key"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"stored default certificate does not parse: {exc!r}") from exc
    return certificate, sealer.open_value(sealed, context=SEALING_CONTEXT)


def due_for_renewal(certificate: bytes, now: datetime.datetime) -> bool:
    expires = x509.load_pem_x509_certificate(certificate).not_valid_after_utc
    return expires - now < RENEW_BEFORE


async def shared_pair(
    client: aioredis.Redis,
    layout: KeyLayout,
    sealer: Sealer,
    generated: tuple[bytes, bytes],
    *,
    now: datetime.datetime | None = None,
) -> tuple[bytes, bytes]:
    """The pair every replica serves: the stored one, else `generated` once stored (the first
    replica's write wins: SET NX); `generated` alone when the stored one does not open with
    this sealing key (logged: the replicas then differ until the key matches)."""
    now = now or datetime.datetime.now(datetime.UTC)
    key = layout.default_certificate
    encoded = encode_pair(*generated, sealer)
    raw = await client.get(key)
    if raw is not None:
        try:
            pair = decode_pair(raw, sealer)
        except (ValueError, SealingError) as exc:
            log.warning("default_certificate.unreadable", key=key, error=str(exc))
            return generated
        if not due_for_renewal(pair[0], now):
            return pair
        log.info("default_certificate.renewed", key=key)
        await client.set(key, encoded)
        return generated
    if await client.set(key, encoded, nx=True):
        log.info("default_certificate.stored", key=key)
        return generated
    stored = await client.get(key)  # another replica stored its own first
    return decode_pair(stored, sealer) if stored is not None else generated
