"""Opening sealed TLS private keys for translation (the watcher seals them with the operator's
key; see `ripple_common.sealing`). Stored inputs keep the sealed form: plaintext keys exist
only in the objects handed to `translate` and in the Envoy Secret resources it makes."""

from __future__ import annotations

import base64
from collections.abc import Mapping

import structlog

from ripple_common.sealing import (
    OPENED_FIELDS,
    SEALED_PREFIX,
    Sealer,
    SealingError,
    secret_context,
)
from ripple_translator.partition_state import JsonObject

log = structlog.get_logger("ripple_translator.unseal")


def open_secret(secret: JsonObject, sealer: Sealer | None) -> JsonObject:
    """A copy of `secret` whose sealed private key (`OPENED_FIELDS`) is opened (back to base64
    plaintext); any other sealed field stays sealed (nothing translated reads it). A value that
    does not open stays sealed, so the translation reports the Secret as invalid."""
    data = secret.get("data")
    if not isinstance(data, Mapping) or not any(
        _is_sealed(v) for k, v in data.items() if k in OPENED_FIELDS
    ):
        return secret
    meta = secret.get("metadata") or {}
    namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    opened: dict[str, object] = {}
    for field, value in data.items():
        if field not in OPENED_FIELDS or not _is_sealed(value):
            opened[field] = value
            continue
        if sealer is None:
            log.warning("secret.unseal_failed", secret=f"{namespace}/{name}", error="no key")
            opened[field] = value
            continue
        context = secret_context(namespace=namespace, name=name, field=field)
        try:
            opened[field] = base64.b64encode(sealer.open_value(value, context=context)).decode()
        except SealingError as exc:
            log.warning("secret.unseal_failed", secret=f"{namespace}/{name}", error=str(exc))
            opened[field] = value
    return {**secret, "data": opened}


def _is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)
