from __future__ import annotations

import json

import pytest

from ripple_common.envelope import SCHEMA_VERSION, Envelope, EnvelopeError, EventType


def _envelope(**overrides: object) -> Envelope:
    fields: dict[str, object] = {
        "type": EventType.ADDED,
        "kind": "Ingress",
        "tenant": "team-a",
        "namespace": "team-a",
        "name": "web",
        "uid": "0b7f",
        "resource_version": "42",
        "observed_at_ns": 1_700_000_000_000_000_000,
        "object": {"metadata": {"name": "web"}, "spec": {"rules": []}},
    }
    fields.update(overrides)
    return Envelope(**fields)  # type: ignore[arg-type]


def test_round_trip_keeps_every_field() -> None:
    env = _envelope()
    back = Envelope.from_bytes(env.to_bytes())
    assert back == env
    assert back.object == env.object
    assert back.key == b"team-a"


def test_encoding_is_deterministic_json_with_schema_version() -> None:
    raw = _envelope().to_bytes()
    assert raw == _envelope().to_bytes()
    assert json.loads(raw)["schema"] == 1  # the lowest schema that expresses it
    assert SCHEMA_VERSION == 2


def test_markers_carry_no_object() -> None:
    marker = _envelope(type=EventType.RELIST_FINISHED, name="", uid="", object=None)
    assert Envelope.from_bytes(marker.to_bytes()).type is EventType.RELIST_FINISHED
    with pytest.raises(EnvelopeError, match="must not carry an object"):
        _envelope(type=EventType.RELIST_STARTED)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "JSON object"),
        (b'{"schema": 99}', "unsupported envelope schema"),
        (b'{"schema": 1, "type": "ADDED"}', "lacks field 'kind'"),
        (b'{"schema": 1, "type": "BOGUS"}', "wrong type|BOGUS"),
    ],
)
def test_bad_bytes_give_a_clear_error(raw: bytes, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        Envelope.from_bytes(raw)


def test_object_event_needs_a_name_and_tenant() -> None:
    with pytest.raises(EnvelopeError, match="no object name"):
        _envelope(name="")
    with pytest.raises(EnvelopeError, match="tenant"):
        _envelope(tenant="")
