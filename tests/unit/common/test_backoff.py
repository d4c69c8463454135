"""ripple_common.backoff: the one retry delay policy (exponential, capped, jittered)."""

from __future__ import annotations

from ripple_common.backoff import MAX_ATTEMPT, Backoff


def test_delays_double_up_to_the_cap() -> None:
    b = Backoff(initial=1.0, maximum=5.0, rng=lambda: 1.0)
    assert [b.next() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_jitter_takes_the_upper_half_of_each_delay() -> None:
    low = Backoff(initial=1.0, maximum=8.0, rng=lambda: 0.0)
    assert [low.next() for _ in range(3)] == [0.5, 1.0, 2.0]
    mid = Backoff(initial=1.0, maximum=8.0, rng=lambda: 0.5)
    assert mid.next() == 0.75


def test_without_jitter_the_rng_is_not_used() -> None:
    def fail() -> float:
        raise AssertionError("no jitter: no random draw")

    b = Backoff(initial=0.1, maximum=1.0, rng=fail, jitter=False)
    assert [b.next() for _ in range(5)] == [0.1, 0.2, 0.4, 0.8, 1.0]


def test_fixed_is_the_same_delay_every_time() -> None:
    b = Backoff.fixed(1.0)
    assert [b.next() for _ in range(4)] == [1.0, 1.0, 1.0, 1.0]


def test_reset_starts_over() -> None:
    b = Backoff(initial=1.0, maximum=5.0, rng=lambda: 1.0)
    b.next()
    b.next()
    b.reset()
    assert b.next() == 1.0


def test_the_attempt_count_stops_growing() -> None:
    b = Backoff(initial=1.0, maximum=2.0, jitter=False)
    for _ in range(MAX_ATTEMPT + 10):
        b.next()
    assert b.attempt == MAX_ATTEMPT
    assert b.next() == 2.0
