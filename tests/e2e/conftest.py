"""Fixtures of the end-to-end tests: the test backends in the `ripple-be` network namespace,
the pipeline (xds, translator, watcher) on the local stack, a kube-apiserver client that
deletes what it created, and a reader of what the translator stored in Redis.

What a fixture finds running it leaves running; what it starts it stops."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from scripts.demo import Kube, Stored
from scripts.netns_backend import BackendError, NetnsBackend
from scripts.pipeline import Pipeline, PipelineError
from tests.conftest import StackEnv


@pytest.fixture(scope="session")
def backend() -> Iterator[NetnsBackend]:
    if os.geteuid() != 0:
        pytest.skip("the test backends need a network namespace (root)")
    netns = NetnsBackend()
    had = netns.status().up
    try:
        netns.up()
    except BackendError as exc:
        pytest.fail(f"test backends: {exc}")
    yield netns
    if not had:
        netns.down()


@pytest.fixture(scope="session")
def pipeline(stack: StackEnv) -> Iterator[Pipeline]:
    """The three services, started through scripts.pipeline unless already running."""
    stack["KUBECONFIG"]  # fails with the stack hint when the stack was never brought up
    services = Pipeline()
    started: list[str] = []
    try:
        started = services.up(timeout_s=60)
    except PipelineError as exc:
        pytest.fail(f"pipeline: {exc}")
    yield services
    services.down(started)


@pytest.fixture
async def kube(stack: StackEnv) -> AsyncIterator[Kube]:
    async with Kube.connect(stack["KUBECONFIG"]) as client:
        await client.ensure_ingress_class()
        yield client


@pytest.fixture
async def stored(stack: StackEnv) -> AsyncIterator[Stored]:
    reader = Stored(stack["RIPPLE_REDIS_URL"])
    yield reader
    await reader.close()
