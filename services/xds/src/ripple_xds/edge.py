"""The gateway's edge policy from the xds settings: how the client address is found
(`gateway.ClientAddress`), the default TLS certificate (`default_certificate`) and which
ExternalName Services are served (`external_names`). docs/xds.md explains each."""

from __future__ import annotations

from ripple_common.resources import Resource
from ripple_xds.default_certificate import load_default_secret
from ripple_xds.external_names import ExternalNameGate
from ripple_xds.gateway import ClientAddress
from ripple_xds.settings import XdsSettings


def client_address(settings: XdsSettings) -> ClientAddress:
    return ClientAddress(
        use_forwarded_headers=settings.use_forwarded_headers,
        forwarded_for_header=settings.forwarded_for_header,
        trusted_hops=settings.trusted_hops,
        compute_full_forwarded_for=settings.compute_full_forwarded_for,
        proxy_protocol=settings.use_proxy_protocol,
    )


def default_certificate(settings: XdsSettings) -> Resource:
    """The default certificate's Secret resource (configured files, else generated)."""
    return load_default_secret(
        settings.default_certificate_file, settings.default_certificate_key_file
    )


def external_name_gate(settings: XdsSettings) -> ExternalNameGate:
    return ExternalNameGate(
        enabled=settings.external_name_services,
        denied_suffixes=settings.external_name_denied_suffixes,
    )
