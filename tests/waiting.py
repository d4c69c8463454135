"""Waiting in tests: the one way to poll until something holds.

`eventually(check, within_s=..., what=...)` calls `check` (plain or async) until it returns a
truthy value (or, with `until=`, a value `until` accepts) and returns that value; past
`within_s` it fails with a message naming what was awaited and the last value seen (or the
last exception, for exception types listed in `ignoring`). `eventually_blocking` is the same
for plain (non-async) tests and threads. `until_stable` waits until a reading stops changing,
for the few places where nothing says "done".

Polling starts fast (1 ms) and backs off to `every_s`, so a check on in-process fakes
passes within a millisecond and a check on a real service is not hammered.

"Nothing else arrived" is not a wait: write a fence last (in the same tenant, partition or
stream as what must not arrive), wait for the fence, then assert; ordering makes it exact.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypedDict, TypeVar, Unpack, cast, overload

T = TypeVar("T")


class Options(TypedDict, total=False):
    """The options every wait takes besides its check and `within_s`."""

    every_s: float  # the longest pause between checks (default 0.05)
    what: str | None  # what is awaited, for the failure (default: the check's own text)
    detail: Callable[[], str] | None  # more for the failure, e.g. a log tail
    ignoring: tuple[type[BaseException], ...]  # exception types that mean "not yet"


FIRST_DELAY_S = 0.001
_UNSEEN = object()


def describe(check: Callable[..., object]) -> str:
    """A readable name of a check: a lambda's own source text, else the function's name."""
    name = str(getattr(check, "__qualname__", repr(check)))
    if "<lambda>" not in name:
        return name
    try:
        source = inspect.getsource(check)
    except (OSError, TypeError):
        return name
    _, found, rest = source.partition("lambda")
    if not found:
        return name
    return _expression(rest.partition(":")[2]) or name


def _expression(text: str) -> str:
    """The leading expression of `text`: up to a comma or closing bracket at depth 0."""
    depth, quote = 0, ""
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            if depth == 0:
                return " ".join(text[:i].split())
            depth -= 1
        elif char == "," and depth == 0:
            return " ".join(text[:i].split())
    return " ".join(text.split())


@dataclass
class _Poll:
    """The bookkeeping shared by every form: time, pauses, the last value seen."""

    check: Callable[..., object]
    what: str | None
    within_s: float
    every_s: float
    detail: Callable[[], str] | None
    ignoring: tuple[type[BaseException], ...]
    started: float = field(default_factory=time.monotonic)
    delay_s: float = FIRST_DELAY_S
    last: object = _UNSEEN

    @classmethod
    def of(cls, check: Callable[..., object], within_s: float, options: Options) -> _Poll:
        return cls(
            check=check,
            what=options.get("what"),
            within_s=within_s,
            every_s=options.get("every_s", 0.05),
            detail=options.get("detail"),
            ignoring=options.get("ignoring", ()),
        )

    def done(self, value: T | None, until: Callable[[T], object]) -> bool:
        """Whether `value` ends the wait (None never does); else it is the last seen."""
        if value is not None and until(value):
            return True
        self.last = value
        return False

    def next_delay(self) -> float:
        """The pause before the next check; raises once the time is up."""
        if time.monotonic() - self.started > self.within_s:
            raise AssertionError(self.failure())
        delay, self.delay_s = self.delay_s, min(self.delay_s * 2, self.every_s)
        return delay

    def failure(self) -> str:
        last = "nothing (never checked)" if self.last is _UNSEEN else _short(self.last)
        what = self.what or describe(self.check)
        message = f"{what}: not within {self.within_s:g} s; last seen: {last}"
        if self.detail is not None:
            message += f"\n{self.detail()}"
        return message


def _short(value: object, limit: int = 2000) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


@overload
async def eventually(
    check: Callable[[], Awaitable[T | None]],
    *,
    within_s: float,
    until: Callable[[T], object] = ...,
    **options: Unpack[Options],
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T | None],
    *,
    within_s: float,
    until: Callable[[T], object] = ...,
    **options: Unpack[Options],
) -> T: ...


async def eventually(
    check: Callable[[], T | Awaitable[T | None] | None],
    *,
    within_s: float,
    until: Callable[[T], object] = bool,
    **options: Unpack[Options],
) -> T:
    """Call `check` (plain or async) until `until(value)` holds (by default: the value is
    truthy; None is never a success); return that value.

    Fails after `within_s` with `what` (default: the check's own text), the last value seen
    and `detail()` (e.g. a log tail). Exceptions of the `ignoring` types count as "not yet";
    any other exception ends the wait at once."""
    poll = _Poll.of(check, within_s, options)
    while True:
        try:
            result = check()
            value = cast(T | None, await result) if inspect.isawaitable(result) else result
        except poll.ignoring as exc:
            poll.last = exc
        else:
            if poll.done(value, until):
                return cast(T, value)
        await asyncio.sleep(poll.next_delay())


def eventually_blocking(
    check: Callable[[], T | None],
    *,
    within_s: float,
    until: Callable[[T], object] = bool,
    **options: Unpack[Options],
) -> T:
    """`eventually` for plain tests and threads: the same contract, sleeping the thread."""
    poll = _Poll.of(check, within_s, options)
    while True:
        try:
            value = check()
        except poll.ignoring as exc:
            poll.last = exc
        else:
            if poll.done(value, until):
                return cast(T, value)
        time.sleep(poll.next_delay())


async def until_stable(
    read: Callable[[], T],
    *,
    stable_for_s: float,
    within_s: float,
    accept: Callable[[T], object] = bool,
    **options: Unpack[Options],
) -> T:
    """Read until the value is accepted and has not changed for `stable_for_s`; return it.

    For a settle with no event to wait on (prefer a fence where one can be written)."""
    poll = _Poll.of(read, within_s, options)
    since = time.monotonic()
    while True:
        value = read()
        if poll.last is _UNSEEN or value != poll.last:
            poll.last, since = value, time.monotonic()
        elif accept(value) and time.monotonic() - since >= stable_for_s:
            return value
        await asyncio.sleep(poll.next_delay())
