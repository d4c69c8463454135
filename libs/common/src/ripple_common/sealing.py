"""Secret sealing: TLS private keys leave the watcher encrypted (AES-256-GCM, operator key).

What is sealed: every data field of a Secret except the certificate chain (`PUBLIC_FIELDS`:
`tls.crt`, and `ca.crt`, the CA certificate clients are checked against: certificates are
public by design, every client of the host sees them). Whatever its name and encoding (a DER
key in `key.der`, a PKCS#12 bundle, a password): the watcher cannot tell a key from other
bytes, so it assumes every other field is secret. A value that is not base64 (never sent by
the API) is dropped.

A sealed value replaces the Secret's base64 data value with
`ripple:aesgcm:v1:<key id>:<base64(nonce || ciphertext+tag)>`. The associated data binds it to
`<namespace>/<name>/<data key>`, so a sealed key copied into another tenant's Secret does not
open. `open_value` is the inverse. The translator seals the private keys of the Secret
resources it stores the same way (bound to `resource_context`), deterministically so that an
unchanged key keeps its content version; the xds server opens them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Mapping
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

SEALED_PREFIX: Final = "ripple:aesgcm:v1:"
# The only data fields published in the clear: certificates (public by design).
PUBLIC_FIELDS: Final = frozenset({"tls.crt", "ca.crt"})
# The sealed fields the translator opens (it translates kubernetes.io/tls Secrets only); any
# other sealed field stays sealed everywhere past the watcher.
OPENED_FIELDS: Final = frozenset({"tls.key"})
_NONCE_BYTES: Final = 12


class SealingError(ValueError):
    """A bad operator key, or a sealed value that does not open."""


class Sealer:
    """Encrypts (and opens) Secret private keys with the operator's AES key."""

    def __init__(self, key: bytes) -> None:
        if len(key) not in (16, 24, 32):
            raise SealingError(f"sealing key must be 16, 24 or 32 bytes, got {len(key)}")
        self._aead = AESGCM(key)
        self._nonce_key = hmac.digest(key, b"ripple:aesgcm:v1 synthetic nonce", "sha256")
        self.key_id = hashlib.blake2b(key, digest_size=4).hexdigest()

    @classmethod
    def from_base64(cls, encoded: str) -> Sealer:
        try:
            return cls(base64.b64decode(encoded, validate=True))
        except binascii.Error as exc:
            raise SealingError(f"sealing key is not base64: {exc}") from exc

    def seal_value(self, plaintext: bytes, *, context: str, deterministic: bool = False) -> str:
        """`deterministic`: the nonce is an HMAC-SHA256 of the context and the plaintext under a
        key derived from the sealing key (a synthetic IV, as in AES-GCM-SIV), so the same
        plaintext sealed twice in one context gives the same value (a stored resource keeps its
        version) and two different plaintexts never share a nonce. It reveals only whether
        two sealed values are equal. Otherwise the nonce is random."""
        if deterministic:
            mac = hmac.digest(self._nonce_key, context.encode() + b"\0" + plaintext, "sha256")
            nonce = mac[:_NONCE_BYTES]
        else:
            nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, context.encode())
        return f"{SEALED_PREFIX}{self.key_id}:{base64.b64encode(nonce + sealed).decode()}"

    def open_value(self, sealed: str, *, context: str) -> bytes:
        if not sealed.startswith(SEALED_PREFIX):
            raise SealingError("value is not sealed")
        key_id, _, body = sealed[len(SEALED_PREFIX) :].partition(":")
        if key_id != self.key_id:
            raise SealingError(f"sealed with key {key_id}, this key is {self.key_id}")
        try:
            raw = base64.b64decode(body, validate=True)
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode())
        except (binascii.Error, InvalidTag) as exc:
            raise SealingError(f"sealed value does not open: {exc!r}") from exc

    def seal_secret(self, secret: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of a (sanitized) Secret whose data fields are sealed, all but the public
        ones (`PUBLIC_FIELDS`); `stringData` never comes from the API (it is write-only), and
        is dropped if present."""
        data = secret.get("data")
        out = {k: v for k, v in secret.items() if k != "stringData"}
        if not isinstance(data, Mapping):
            return out
        meta = secret.get("metadata") or {}
        namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        sealed: dict[str, Any] = {}
        for field, value in data.items():
            if field in PUBLIC_FIELDS:
                sealed[field] = value
                continue
            plain = _decode(value)
            if plain is None:
                continue  # not base64 (the API never sends that): dropped, never published
            context = secret_context(namespace=namespace, name=name, field=field)
            sealed[field] = self.seal_value(plain, context=context)
        return {**out, "data": sealed}


def sealer_from(key: SecretStr | None) -> Sealer | None:
    """The sealer of a service's `sealing_key` setting (base64), None when it is unset."""
    if key is None:
        return None
    return Sealer.from_base64(key.get_secret_value())


def _decode(value: object) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        return None


def secret_context(*, namespace: str, name: str, field: str) -> str:
    """The associated data a sealed Secret value is bound to."""
    return f"{namespace}/{name}/{field}"


def resource_context(resource_name: str, field: str = "private_key") -> str:
    """The associated data a sealed value stored inside an xDS resource is bound to (a
    Secret resource's private key: the translator seals it, the xds server opens it), so a
    sealed key copied into another resource does not open."""
    return f"xds:{resource_name}/{field}"
