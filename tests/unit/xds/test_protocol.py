"""Shared protocol pieces: the held-set digest (the version string) and nonces."""

from __future__ import annotations

from ripple_xds.protocol import HeldSet, Nonces, digest_of


def test_digest_depends_on_content_not_order() -> None:
    a, b = HeldSet(), HeldSet()
    a.set("x", "1")
    a.set("y", "2")
    b.set("y", "2")
    b.set("x", "1")
    assert a.digest == b.digest == digest_of({"x": "1", "y": "2"})


def test_digest_follows_a_version_change_and_its_revert() -> None:
    held = HeldSet()
    held.set("x", "1")
    before = held.digest
    held.set("x", "2")
    assert held.digest != before
    held.set("x", "1")
    assert held.digest == before


def test_digest_of_nothing_is_stable_and_distinct_from_an_item() -> None:
    held = HeldSet()
    held.set("x", "1")
    held.discard("x")
    assert held.digest == digest_of({}) == "0" * 16
    held.set("x", "1")
    assert held.digest != digest_of({})


def test_nonces_are_never_reused_on_a_stream() -> None:
    nonces = Nonces()
    assert len({nonces.next() for _ in range(100)}) == 100
