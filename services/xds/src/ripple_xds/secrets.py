"""Opening sealed TLS private keys of Secret resources before they are served.

The design rule: TLS private keys never sit in plaintext in Kafka or Redis. A Secret
resource in Redis may carry its private key sealed (`ripple_common.sealing`: the
`tls_certificate.private_key` data source holds `ripple:aesgcm:v1:<key id>:<...>` bound to
`resource_context(<secret name>)`); Envoy needs the plaintext, so the xds server opens it
with the operator's key (RIPPLE_XDS_SEALING_KEY) on the way into its cache, once per change.
The opened body is deterministic, so every replica serves the same version. A Secret whose
key does not open (no key, wrong key, tampered) is not served: the cache keeps what it had.
Plaintext keys (a translator without a sealing key) pass through, counted. The sealing side
is `ripple_translator.seal`. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from ripple_common.resources import Resource, TypeUrl
from ripple_common.sealing import SEALED_PREFIX, Sealer, SealingError, resource_context

_log = structlog.get_logger(__name__)
_SEALED = SEALED_PREFIX.encode()


@dataclass(slots=True)
class SecretStats:
    opened: int = 0
    plaintext: int = 0
    refused: int = 0


class SecretOpener:
    """Opens the sealed private key of Secret resources; other resources pass as they are."""

    def __init__(self, sealer: Sealer | None) -> None:
        self._sealer = sealer
        self.stats = SecretStats()

    def __call__(self, resource: Resource) -> Resource | None:
        """`resource` ready to serve, or None when it must not be served."""
        if resource.type_url is not TypeUrl.SECRET:
            return resource
        secret = secret_pb2.Secret.FromString(resource.body)
        if not secret.HasField("tls_certificate"):
            return resource
        key = secret.tls_certificate.private_key
        raw = key.inline_bytes or key.inline_string.encode()
        if not raw.startswith(_SEALED):
            self.stats.plaintext += 1
            return resource
        if self._sealer is None:
            return self._refuse(resource, "sealed private key but no RIPPLE_XDS_SEALING_KEY")
        try:
            plain = self._sealer.open_value(raw.decode(), context=resource_context(resource.name))
        except (SealingError, UnicodeDecodeError) as exc:
            return self._refuse(resource, str(exc))
        key.Clear()
        key.inline_bytes = plain
        self.stats.opened += 1
        body = secret.SerializeToString(deterministic=True)
        return Resource(TypeUrl.SECRET, resource.name, body)

    def _refuse(self, resource: Resource, reason: str) -> Resource | None:
        self.stats.refused += 1
        _log.error(
            "secret not served: its private key does not open", secret=resource.name, error=reason
        )
        return None
