"""The tests' waiting toolkit (tests/waiting.py): what it returns, and what a failure says."""

from __future__ import annotations

import itertools

import pytest

from tests.waiting import describe, eventually, eventually_blocking, until_stable


async def test_returns_the_first_truthy_value_of_a_plain_check() -> None:
    counter = itertools.count()
    assert await eventually(lambda: next(counter) >= 3 and "ready", within_s=1) == "ready"


async def test_awaits_an_async_check() -> None:
    calls: list[int] = []

    async def check() -> int | None:
        calls.append(1)
        return len(calls) if len(calls) == 2 else None

    assert await eventually(check, within_s=1) == 2


async def test_until_judges_the_value_and_none_is_never_a_success() -> None:
    values = iter([None, 1, 5])
    assert await eventually(lambda: next(values), until=lambda v: v > 2, within_s=1) == 5


async def test_a_failure_names_what_was_awaited_the_last_value_and_the_detail() -> None:
    with pytest.raises(AssertionError) as failed:
        await eventually(
            lambda: [], within_s=0.05, what="the list filled", detail=lambda: "log tail"
        )
    assert str(failed.value) == "the list filled: not within 0.05 s; last seen: []\nlog tail"


async def test_without_what_a_failure_quotes_the_lambda() -> None:
    items: list[int] = []
    with pytest.raises(AssertionError, match=r"^len\(items\) == 2: not within"):
        await eventually(lambda: len(items) == 2, within_s=0.02)


async def test_ignored_exceptions_count_as_not_yet_and_others_end_the_wait() -> None:
    attempts = itertools.count()

    def flaky() -> str:
        if next(attempts) < 2:
            raise ConnectionError("refused")
        return "up"

    assert await eventually(flaky, within_s=1, ignoring=(ConnectionError,)) == "up"
    with pytest.raises(AssertionError, match=r"last seen: ConnectionError\('down'\)"):
        await eventually(_refused, within_s=0.02, ignoring=(ConnectionError,))
    with pytest.raises(ConnectionError):
        await eventually(_refused, within_s=1)


def _refused() -> bool:
    raise ConnectionError("down")


def test_the_blocking_form_has_the_same_contract() -> None:
    counter = itertools.count()
    assert eventually_blocking(lambda: next(counter) == 2, within_s=1) is True
    with pytest.raises(AssertionError, match=r"^never: not within 0\.02 s; last seen: 0$"):
        eventually_blocking(lambda: 0, within_s=0.02, what="never")


async def test_until_stable_waits_for_an_accepted_value_to_stop_changing() -> None:
    readings = iter([0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2])
    got = await until_stable(
        lambda: next(readings, 2), stable_for_s=0.01, within_s=1, accept=lambda v: v > 0
    )
    assert got == 2
    changing = itertools.count()
    with pytest.raises(AssertionError, match="still changing: not within"):
        await until_stable(
            lambda: next(changing), stable_for_s=0.5, within_s=0.05, what="still changing"
        )


def test_describe_names_functions_and_quotes_lambdas() -> None:
    assert describe(_refused) == "_refused"
    assert describe(lambda: {"a": (1, 2)}.get("b")) == '{"a": (1, 2)}.get("b")'
