"""Fixtures of the xds service tests: a tenant store under the shared random key prefix, an
xds process loaded with two tenants, and a real Envoy doing Delta ADS to it."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ripple_translator.store import KeyLayout, RedisTenantStore
from tests.conftest import StackEnv
from tests.integration.loopback import free_port
from tests.integration.xds_service.support import (
    HOST_A,
    HOST_B1,
    A,
    B,
    Ports,
    XdsProcess,
    running_envoy,
    running_xds,
    tenant_resources,
    write_tenant,
    xds_settings,
)


@pytest.fixture
def store(redis_client: aioredis.Redis, prefix: str) -> RedisTenantStore:
    return RedisTenantStore(redis_client, layout=KeyLayout(prefix=prefix))


@pytest.fixture
def ports() -> Ports:
    return Ports(xds=free_port(), http=free_port(), health=free_port(), admin=free_port())


@pytest.fixture
async def xds(
    *,
    stack: StackEnv,
    store: RedisTenantStore,
    prefix: str,
    backend_port: int,
    ports: Ports,
    tmp_path: Path,
) -> AsyncIterator[XdsProcess]:
    """Tenants a (HOST_A) and b (HOST_B1) in Redis, then the xds process, until ready."""
    await write_tenant(store, A, tenant_resources(A, [HOST_A], backend_port=backend_port))
    await write_tenant(store, B, tenant_resources(B, [HOST_B1], backend_port=backend_port))
    settings = xds_settings(redis_url=stack["RIPPLE_REDIS_URL"], prefix=prefix, ports=ports)
    async with running_xds(settings, log=tmp_path / "xds.log", health_port=ports.health) as xds:
        yield xds


@pytest.fixture
def envoy(
    stack: StackEnv, xds: XdsProcess, ports: Ports, tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A real Envoy doing Delta ADS to the xds process (started from the main thread)."""
    with running_envoy(
        stack["RIPPLE_ENVOY_BIN"],
        xds_port=ports.xds,
        admin_port=ports.admin,
        node_id="it-xds-gateway",
        workdir=tmp_path,
    ) as proc:
        yield proc
