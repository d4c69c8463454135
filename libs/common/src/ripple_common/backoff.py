"""The one retry delay policy of every ripple service: exponential backoff, capped, with
jitter by default.

Attempt n (from 0) waits `min(maximum, initial * 2**n)`; with jitter, a random point of the
upper half of that (`ceiling * (0.5 + rng() / 2)`), so replicas failing together do not retry
in step, and a delay never collapses to zero. `reset()` after a success starts over. A fixed
delay is the policy with `initial == maximum` and no jitter (`Backoff.fixed`).

Pure: the caller sleeps (`asyncio.sleep`, or an injected fake in tests)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

# Past this many doublings every delay is the cap anyway; the count stops growing.
MAX_ATTEMPT = 32


@dataclass(slots=True)
class Backoff:
    """Delays for successive failed attempts (see the module doc)."""

    initial: float
    maximum: float
    rng: Callable[[], float] = random.random
    jitter: bool = True
    attempt: int = 0

    @classmethod
    def fixed(cls, delay: float) -> Backoff:
        """The same delay every time (no growth, no jitter)."""
        return cls(initial=delay, maximum=delay, jitter=False)

    def next(self) -> float:
        """The delay before the next attempt; counts this attempt."""
        ceiling = min(self.maximum, self.initial * 2.0**self.attempt)
        self.attempt = min(self.attempt + 1, MAX_ATTEMPT)
        if not self.jitter:
            return ceiling
        return ceiling * (0.5 + self.rng() / 2)

    def reset(self) -> None:
        """A success: the next failure waits `initial` again."""
        self.attempt = 0
