"""The TOO_LARGE envelope (schema 2) and reading schema 1 envelopes as before."""

from __future__ import annotations

import json

import pytest

from ripple_common.envelope import (
    READABLE_SCHEMAS,
    SCHEMA_VERSION,
    Envelope,
    EnvelopeError,
    EventType,
    TooLarge,
)


def _added() -> Envelope:
    return Envelope(
        type=EventType.ADDED,
        kind="Ingress",
        tenant="team-a",
        namespace="team-a",
        name="huge",
        uid="u-1",
        resource_version="42",
        observed_at_ns=7,
        object={"metadata": {"name": "huge"}, "spec": {"rules": []}},
    )


def test_a_too_large_marker_names_the_object_and_carries_its_size_not_the_object() -> None:
    marker = _added().too_large_marker(encoded_bytes=1_600_000, limit_bytes=1_048_576)
    raw = marker.to_bytes()
    doc = json.loads(raw)
    assert doc["schema"] == 2 == SCHEMA_VERSION
    assert doc["type"] == "TOO_LARGE"
    assert doc["object"] is None
    assert doc["tooLarge"] == {"encodedBytes": 1_600_000, "limitBytes": 1_048_576}
    back = Envelope.from_bytes(raw)
    assert back == marker
    assert (back.kind, back.namespace, back.name, back.uid, back.resource_version) == (
        "Ingress",
        "team-a",
        "huge",
        "u-1",
        "42",
    )
    assert back.too_large == TooLarge(encoded_bytes=1_600_000, limit_bytes=1_048_576)
    assert back.key == b"team-a"


def test_every_other_envelope_is_still_written_and_read_as_schema_1() -> None:
    """Translators of the previous release keep reading them during a rolling upgrade."""
    env = _added()
    assert json.loads(env.to_bytes())["schema"] == 1
    assert "tooLarge" not in json.loads(env.to_bytes())
    assert {1, 2} == READABLE_SCHEMAS
    old = (
        b'{"kind":"Ingress","name":"web","namespace":"t","object":{"metadata":{"name":"web"}},'
        b'"observedAtNs":1,"resourceVersion":"1","schema":1,"tenant":"t","type":"ADDED",'
        b'"uid":"u"}'
    )
    assert Envelope.from_bytes(old).type is EventType.ADDED


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"schema": 1, "type": "TOO_LARGE"}, "needs envelope schema 2"),
        ({"schema": 3, "type": "ADDED"}, "unsupported envelope schema 3"),
        ({"schema": True, "type": "ADDED"}, "unsupported envelope schema"),
        ({"schema": 2, "tooLarge": [1]}, "tooLarge must be a JSON object"),
        ({"schema": 2, "tooLarge": {"encodedBytes": 1}}, "lacks field 'limitBytes'"),
        ({"schema": 2, "tooLarge": {"encodedBytes": "1", "limitBytes": 2}}, "integers"),
        ({"schema": 2, "tooLarge": None}, "needs its sizes"),
        ({"schema": 2, "object": {"metadata": {}}}, "must not carry an object"),
    ],
)
def test_bad_too_large_envelopes_give_a_clear_error(doc: dict[str, object], message: str) -> None:
    base = json.loads(_added().too_large_marker(encoded_bytes=2, limit_bytes=1).to_bytes())
    base.update(doc)
    with pytest.raises(EnvelopeError, match=message):
        Envelope.from_bytes(json.dumps(base).encode())


def test_too_large_only_on_too_large_and_only_for_objects() -> None:
    with pytest.raises(EnvelopeError, match="must not carry too_large"):
        Envelope(
            type=EventType.ADDED,
            kind="Ingress",
            tenant="t",
            namespace="t",
            name="n",
            uid="u",
            resource_version="1",
            observed_at_ns=1,
            too_large=TooLarge(encoded_bytes=1, limit_bytes=1),
        )
    relist = Envelope(
        type=EventType.RELIST_STARTED,
        kind="Ingress",
        tenant="_cluster",
        namespace=None,
        name="",
        uid="",
        resource_version="1",
        observed_at_ns=1,
    )
    with pytest.raises(EnvelopeError, match="no object to stand for"):
        relist.too_large_marker(encoded_bytes=1, limit_bytes=1)
