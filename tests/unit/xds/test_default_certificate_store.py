"""The stored form of the shared default certificate: the key sealed, round trip, renewal."""

from __future__ import annotations

import base64
import datetime
import os

import pytest

from ripple_common.sealing import Sealer, SealingError
from ripple_xds.default_certificate import generate_fake
from ripple_xds.default_certificate_store import decode_pair, due_for_renewal, encode_pair


def sealer() -> Sealer:
    return Sealer.from_base64(base64.b64encode(os.urandom(32)).decode())


def test_the_stored_pair_holds_the_key_only_sealed_and_opens_again() -> None:
    certificate, key = generate_fake()
    s = sealer()
    raw = encode_pair(certificate, key, s)
    assert b"PRIVATE KEY" not in raw
    assert base64.b64encode(key) not in raw
    assert decode_pair(raw, s) == (certificate, key)


def test_another_sealing_key_does_not_open_it() -> None:
    raw = encode_pair(*generate_fake(), sealer())
    with pytest.raises(SealingError):
        decode_pair(raw, sealer())


def test_garbage_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="does not parse"):
        decode_pair(b"{not json", sealer())


def test_a_certificate_is_renewed_in_its_last_month() -> None:
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    certificate, _ = generate_fake(now)
    assert not due_for_renewal(certificate, now + datetime.timedelta(days=300))
    assert due_for_renewal(certificate, now + datetime.timedelta(days=340))
