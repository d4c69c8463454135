"""Shared protocol pieces: the held-set digest (the version string), nonces, and which answer
is an ACK or a NACK."""

from __future__ import annotations

from ripple_common.resources import TypeUrl
from ripple_xds.protocol import (
    NO_ANSWER,
    Ack,
    Answer,
    HeldSet,
    Nonces,
    Sent,
    classify,
    digest_of,
    settle,
)


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


# -- ACK/NACK classification (shared by SotW and Delta) ------------------------------------------


def _sent() -> Sent:
    return Sent(nonce="3", version="v2", names=("a",), removed=("b",))


def test_sotw_ack_echoes_the_version_sent() -> None:
    answer = classify(_sent(), TypeUrl.CLUSTER, error=None, echoed="v2")
    assert answer == Answer(
        acks=(Ack(TypeUrl.CLUSTER, nonce="3", version="v2", names=("a",), removed=("b",)),)
    )


def test_sotw_other_version_without_error_is_a_nack_saying_so() -> None:
    (nack,) = classify(_sent(), TypeUrl.CLUSTER, error=None, echoed="v1").nacks
    assert nack.kept_version == "v1"
    assert nack.rejected_version == "v2"
    assert "is not the version sent" in nack.error


def test_error_detail_is_a_nack_keeping_the_echoed_version() -> None:
    sotw = classify(_sent(), TypeUrl.CLUSTER, error="bad", echoed="v1")
    delta = classify(_sent(), TypeUrl.CLUSTER, error="bad", echoed=None)
    assert sotw.nacks[0].kept_version == "v1"
    assert delta.nacks[0].kept_version == ""
    assert sotw.nacks[0].error == delta.nacks[0].error == "bad"
    assert delta.nacks[0].names == ("a",)
    assert delta.nacks[0].removed == ("b",)
    assert not sotw.acks
    assert not delta.acks


def test_delta_ack_is_any_answer_without_error() -> None:
    (ack,) = classify(_sent(), TypeUrl.CLUSTER, error=None, echoed=None).acks
    assert ack.version == "v2"


class _State:
    def __init__(self, in_flight: Sent | None) -> None:
        self.in_flight = in_flight
        self.flushed = 4
        self.answered = 1

    def pending(self) -> bool:
        return False


def test_settle_answers_the_response_in_flight() -> None:
    state = _State(_sent())
    answer = settle(state, TypeUrl.CLUSTER, error=None, echoed="v2")
    assert len(answer.acks) == 1
    assert state.in_flight is None
    assert state.answered == 4


def test_settle_without_a_response_in_flight_is_no_answer() -> None:
    state = _State(None)
    assert settle(state, TypeUrl.CLUSTER, error="bad", echoed="v1") == NO_ANSWER
    assert state.answered == 1
