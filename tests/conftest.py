"""Shared fixtures. Integration and e2e tests run against the local stack (`./dev up`), whose
client settings `stack/stack up` writes to $RIPPLE_RUN/env (default .stack/env)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from scripts.stack_env import load_stack_env


class StackEnv:
    """The local stack's client settings; a missing one fails the test with a clear hint."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def __getitem__(self, key: str) -> str:
        try:
            return self._values[key]
        except KeyError:
            pytest.fail(
                f"stack setting {key} is missing: start the local stack with `./dev up` "
                f"(or set RIPPLE_RUN to a run directory holding an env file)"
            )


@pytest.fixture(scope="session")
def stack() -> StackEnv:
    return StackEnv(load_stack_env())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "integration" in parts or "e2e" in parts:
            item.add_marker(pytest.mark.integration)
