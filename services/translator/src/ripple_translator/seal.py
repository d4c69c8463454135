"""Sealing the TLS private keys of the Secret resources the translator stores (pure).

The design rule: TLS private keys never sit in plaintext in Kafka or Redis. The watcher seals
them on the way into Kafka; the translator opens them to translate (`unseal`) and, before a
tenant's resources are diffed and written, seals the `tls_certificate.private_key` of each
Secret resource again with the same operator key, bound to `resource_context(<resource
name>)` so a key copied into another resource does not open. Sealing is deterministic
(`Sealer.seal_value(deterministic=True)`): an unchanged key gives the same bytes, so the
Secret keeps its content version and is not rewritten or re-pushed. The xds server opens the
key on the way into its cache (`ripple_xds.secrets.SecretOpener`)."""

from __future__ import annotations

from collections.abc import Iterable

from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from ripple_common.resources import Resource, TypeUrl
from ripple_common.sealing import SEALED_PREFIX, Sealer, resource_context

_SEALED = SEALED_PREFIX.encode()


def seal_secret(resource: Resource, sealer: Sealer) -> Resource:
    """`resource` with its private key sealed; other resources, Secrets without a TLS
    certificate and keys already sealed are returned as they are."""
    if resource.type_url is not TypeUrl.SECRET:
        return resource
    secret = secret_pb2.Secret.FromString(resource.body)
    if not secret.HasField("tls_certificate"):
        return resource
    key = secret.tls_certificate.private_key
    raw = key.inline_bytes or key.inline_string.encode()
    if not raw or raw.startswith(_SEALED):
        return resource
    context = resource_context(resource.name)
    sealed = sealer.seal_value(raw, context=context, deterministic=True)
    key.Clear()
    key.inline_string = sealed
    return Resource(TypeUrl.SECRET, resource.name, secret.SerializeToString(deterministic=True))


def seal_secrets(resources: Iterable[Resource], sealer: Sealer) -> tuple[Resource, ...]:
    """Every resource, the Secrets' private keys sealed (order kept)."""
    return tuple(seal_secret(r, sealer) for r in resources)
