"""Protobuf wire encoding of DiscoveryResponse and DeltaDiscoveryResponse from the cached
resource bytes: every resource body is spliced in as is (encode once, send many), never
decoded and re-encoded per stream, and copied once, into the joined response. Field numbers
are those of envoy.service.discovery.v3 (discovery.proto); tests parse the output with the
generated classes.

Pure: no grpc, no protobuf runtime."""

from __future__ import annotations

from ripple_xds.delta import DeltaResponse
from ripple_xds.sotw import SotwResponse

# Tags of the length-delimited fields used here: (field number << 3) | 2.
_F1, _F2, _F3, _F4, _F5, _F6 = b"\x0a", b"\x12", b"\x1a", b"\x22", b"\x2a", b"\x32"
_SMALL = [bytes((n,)) for n in range(128)]


def _varint(value: int) -> bytes:
    if value < 128:
        return _SMALL[value]
    out = bytearray()
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(tag: bytes, text: str) -> bytes:
    if not text:
        return b""
    data = text.encode()
    return tag + _varint(len(data)) + data


def _any_prefix(type_url: str) -> bytes:
    """Any.type_url (field 1) followed by the tag of Any.value (field 2)."""
    return _string(_F1, type_url) + _F2


def encode_sotw(response: SotwResponse) -> bytes:
    """DiscoveryResponse {version_info = 1, resources = 2 (Any), type_url = 4, nonce = 5}."""
    any_prefix = _any_prefix(response.type_url.value)
    parts = [_string(_F1, response.version_info)]
    append = parts.append
    for entry in response.resources:
        body = entry.resource.body
        body_len = _varint(len(body))
        any_len = len(any_prefix) + len(body_len) + len(body)
        append(_F2 + _varint(any_len) + any_prefix + body_len)
        append(body)
    append(_string(_F4, response.type_url.value))
    append(_string(_F5, response.nonce))
    return b"".join(parts)


def encode_delta(response: DeltaResponse) -> bytes:
    """DeltaDiscoveryResponse {system_version_info = 1, resources = 2 (Resource),
    type_url = 4, nonce = 5, removed_resources = 6}; Resource {version = 1,
    resource = 2 (Any), name = 3}."""
    any_prefix = _any_prefix(response.type_url.value)
    parts = [_string(_F1, response.system_version_info)]
    append = parts.append
    for entry in response.resources:
        body = entry.resource.body
        body_len = _varint(len(body))
        any_len = len(any_prefix) + len(body_len) + len(body)
        version = _string(_F1, entry.version)
        any_head = _F2 + _varint(any_len) + any_prefix + body_len
        name = _string(_F3, entry.name)
        resource_len = len(version) + len(any_head) + len(body) + len(name)
        append(_F2 + _varint(resource_len) + version + any_head)
        append(body)
        append(name)
    append(_string(_F4, response.type_url.value))
    append(_string(_F5, response.nonce))
    for removed in response.removed:
        data = removed.encode()
        append(_F6 + _varint(len(data)) + data)
    return b"".join(parts)
