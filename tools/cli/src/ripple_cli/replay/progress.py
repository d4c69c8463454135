"""Progress of a long replay, on stderr at most once per interval (pure apart from the given
stream and clock)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO


class Progress:
    def __init__(
        self,
        out: IO[str],
        *,
        label: str,
        total: int,
        every_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._out = out
        self._label = label
        self._total = total
        self._every_s = every_s
        self._clock = clock
        self._started = clock()
        self._last = self._started
        self.lines = 0

    def update(self, done: int) -> None:
        now = self._clock()
        if now - self._last >= self._every_s:
            self._last = now
            self._print(done, now)

    def finish(self, done: int) -> None:
        """A last line, if any line was printed (a short replay stays quiet)."""
        if self.lines:
            self._print(done, self._clock())

    def _print(self, done: int, now: float) -> None:
        elapsed = now - self._started
        rate = done / elapsed if elapsed > 0 else 0.0
        percent = f" ({100 * done // self._total}%)" if self._total else ""
        self._out.write(
            f"replay: {self._label}: {done}/{self._total} records{percent}, "
            f"{rate:,.0f} records/s, {elapsed:.1f} s\n"
        )
        self._out.flush()
        self.lines += 1
