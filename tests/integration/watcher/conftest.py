from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import StackEnv
from tests.integration.watcher.support import Kube, delete_topic, make_topic


@pytest.fixture
async def topic(stack: StackEnv) -> AsyncIterator[str]:
    bootstrap = stack["RIPPLE_KAFKA_BOOTSTRAP"]
    name = await make_topic(bootstrap, partitions=3)
    yield name
    await delete_topic(bootstrap, name)


@pytest.fixture
async def kube(stack: StackEnv) -> AsyncIterator[Kube]:
    async with Kube.connect(stack["KUBECONFIG"]) as k:
        yield k
