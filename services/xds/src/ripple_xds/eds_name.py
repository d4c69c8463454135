"""The EDS service name of a Cluster, read from its serialized bytes: the name of the
ClusterLoadAssignment the cluster warms on. Several clusters may share one (the translator's
variants of a service port: `ripple_translator.translate.naming.cluster_name`), so it is not
the cluster's name in general.

Field numbers are those of envoy.config.cluster.v3 (cluster.proto): Cluster.eds_cluster_config
= 3, EdsClusterConfig.service_name = 2. Only those two are read; every other field is skipped
by its wire type. Pure: no protobuf runtime (like `wire`), computed once per cluster change
by the snapshot cache, never per stream."""

from __future__ import annotations

from typing import Final

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5
_EDS_CLUSTER_CONFIG: Final = 3
_SERVICE_NAME: Final = 2


class MalformedMessageError(ValueError):
    """Bytes that are not a protobuf message this reader can walk."""


def eds_service_name(name: str, body: bytes) -> str:
    """The ClusterLoadAssignment name the cluster `name` (serialized as `body`) asks for:
    its eds_cluster_config.service_name, or, as Envoy does when that is empty, its own name.
    Bytes that do not parse as a message also give the cluster's name (Envoy will NACK such
    a cluster; its endpoints are then no concern)."""
    try:
        service_name = _service_name(body)
    except MalformedMessageError:
        return name
    return service_name or name


def _service_name(body: bytes) -> str:
    """eds_cluster_config.service_name of a serialized Cluster; "" if unset. A singular
    embedded message given more than once is merged (the last service_name wins)."""
    found = ""
    for number, value in _fields(body):
        if number == _EDS_CLUSTER_CONFIG and isinstance(value, memoryview):
            for inner_number, inner in _fields(value):
                if inner_number == _SERVICE_NAME and isinstance(inner, memoryview):
                    try:
                        found = inner.tobytes().decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise MalformedMessageError("service_name is not UTF-8") from exc
    return found


def _fields(data: bytes | memoryview) -> list[tuple[int, int | memoryview]]:
    """(field number, value) of every field at the top level of `data`: an int for
    varint and fixed-width fields, a view of the bytes for length-delimited ones."""
    view = memoryview(data)
    fields: list[tuple[int, int | memoryview]] = []
    pos, end = 0, len(view)
    while pos < end:
        key, pos = _varint(view, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise MalformedMessageError("field number 0")
        if wire_type == _VARINT:
            value, pos = _varint(view, pos)
            fields.append((number, value))
        elif wire_type == _LEN:
            length, pos = _varint(view, pos)
            if pos + length > end:
                raise MalformedMessageError("length-delimited field runs past the end")
            fields.append((number, view[pos : pos + length]))
            pos += length
        elif wire_type in (_FIXED64, _FIXED32):
            width = 8 if wire_type == _FIXED64 else 4
            if pos + width > end:
                raise MalformedMessageError("fixed-width field runs past the end")
            fields.append((number, int.from_bytes(view[pos : pos + width], "little")))
            pos += width
        else:
            raise MalformedMessageError(f"wire type {wire_type} (groups are not used by xDS)")
    return fields


def _varint(view: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(view):
            raise MalformedMessageError("truncated varint")
        byte = view[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift >= 64:
            raise MalformedMessageError("varint longer than 10 bytes")
