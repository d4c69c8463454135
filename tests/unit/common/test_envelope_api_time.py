"""The envelope's optional API time (`apiAtNs`): round trips, envelopes of the previous release
(without it) still decode, an envelope without it is written exactly as before, and the change
entry's `ripple-api-ns` mark (issue #15 point 4)."""

from __future__ import annotations

import json

import pytest

from ripple_common.envelope import Envelope, EnvelopeError, EventType
from ripple_common.store_contract import API_FIELD, ChangeEntry, Marks

API_NS = 1_765_047_600 * 1_000_000_000  # 2025-12-06T19:00:00Z, whole seconds


def _added(**extra: object) -> Envelope:
    return Envelope(
        type=EventType.ADDED,
        kind="Ingress",
        tenant="team-a",
        namespace="team-a",
        name="web",
        uid="u-1",
        resource_version="42",
        observed_at_ns=API_NS + 3_500_000_000,
        object={"metadata": {"name": "web"}, "spec": {"rules": []}},
        **extra,  # type: ignore[arg-type]
    )


def test_the_api_time_round_trips_in_a_schema_1_envelope() -> None:
    env = _added(api_at_ns=API_NS)
    raw = env.to_bytes()
    doc = json.loads(raw)
    assert doc["schema"] == 1  # additive: readers of the previous release still read it
    assert doc["apiAtNs"] == API_NS
    back = Envelope.from_bytes(raw)
    assert back == env
    assert back.api_at_ns == API_NS


def test_an_envelope_without_api_time_is_written_as_before_and_reads_as_unknown() -> None:
    env = _added()
    doc = json.loads(env.to_bytes())
    assert "apiAtNs" not in doc
    assert Envelope.from_bytes(env.to_bytes()).api_at_ns is None


def test_an_envelope_of_the_previous_release_still_decodes() -> None:
    old = {
        "schema": 1,
        "type": "MODIFIED",
        "kind": "Ingress",
        "tenant": "team-a",
        "namespace": "team-a",
        "name": "web",
        "uid": "u-1",
        "resourceVersion": "43",
        "observedAtNs": 5,
        "object": {"metadata": {"name": "web"}},
    }
    env = Envelope.from_bytes(json.dumps(old).encode())
    assert env.api_at_ns is None
    assert env.observed_at_ns == 5


@pytest.mark.parametrize("bad", ["123", 1.5, True, [1]])
def test_a_malformed_api_time_is_a_clear_error(bad: object) -> None:
    doc = json.loads(_added().to_bytes())
    doc["apiAtNs"] = bad
    with pytest.raises(EnvelopeError, match="apiAtNs"):
        Envelope.from_bytes(json.dumps(doc).encode())


def test_a_negative_api_time_is_refused() -> None:
    with pytest.raises(EnvelopeError, match="apiAtNs"):
        _added(api_at_ns=-1)


def test_a_too_large_marker_keeps_the_api_time() -> None:
    marker = _added(api_at_ns=API_NS).too_large_marker(encoded_bytes=10, limit_bytes=5)
    assert Envelope.from_bytes(marker.to_bytes()).api_at_ns == API_NS


def test_the_api_mark_travels_in_the_change_entry_and_old_entries_lack_it() -> None:
    marks = Marks(observed_ns=2, published_ns=3, written_ns=4, api_ns=API_NS)
    assert marks.fields()[API_FIELD] == str(API_NS)
    entry = ChangeEntry(tenant="t", version=2, trace=marks.fields())
    assert ChangeEntry.decode(entry.encode()).marks == marks
    old = ChangeEntry(tenant="t", version=2, trace=Marks(observed_ns=2).fields())
    assert ChangeEntry.decode(old.encode()).marks.api_ns is None
