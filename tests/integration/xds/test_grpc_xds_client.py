"""grpcio's built-in xDS client as a second, independent client of the xds server (SotW ADS):
a channel to `xds:///<listener name>` resolves through the server's API listener, RDS, CDS
and EDS to a real grpc server on 127.0.0.1 and calls it; moving the cluster's endpoints to
another server moves the client's calls there."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
import pytest

from ripple_xds.server import XdsServer
from ripple_xds.snapshot import SnapshotCache
from tests.integration.xds import grpc_resources as gr

TARGET = "echo.ripple.test"
CALL_TIMEOUT_S = 30.0


def _identity(data: bytes) -> bytes:
    return data


async def _echo_server(reply: bytes) -> tuple[grpc.aio.Server, int]:
    """A grpc server on 127.0.0.1 whose one method answers `reply`."""

    async def who(_request: bytes, _context: Any) -> bytes:
        return reply

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "ripple.test.Echo",
                {
                    "Who": grpc.unary_unary_rpc_method_handler(
                        who, request_deserializer=_identity, response_serializer=_identity
                    )
                },
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


@pytest.fixture
async def echo_servers() -> AsyncIterator[list[int]]:
    servers = [await _echo_server(b"server-1"), await _echo_server(b"server-2")]
    try:
        yield [port for _, port in servers]
    finally:
        for server, _ in servers:
            await server.stop(0)


class Client:
    """The client process: `expect(reply)` waits until its calls get `reply`."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def expect(self, reply: str) -> float:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(f"{reply}\n".encode())
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), CALL_TIMEOUT_S)
        verdict, _, detail = line.decode().strip().partition(" ")
        if verdict != "ok":
            stderr = await self._stderr()
            pytest.fail(f"grpc client did not get {reply!r}: {line!r}\n{stderr}")
        return float(detail)

    async def _stderr(self) -> str:
        self.proc.kill()
        _, err = await self.proc.communicate()
        return err.decode(errors="replace")[-3000:]


@pytest.fixture
async def client(xds: tuple[SnapshotCache, XdsServer]) -> AsyncIterator[Client]:
    _, server = xds
    env = {
        **os.environ,
        "GRPC_XDS_BOOTSTRAP_CONFIG": gr.bootstrap(xds_port=server.port, node_id="grpc-it"),
    }
    env.pop("GRPC_XDS_BOOTSTRAP", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.xds.grpc_xds_client",
        f"xds:///{TARGET}",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        yield Client(proc)
    finally:
        if proc.returncode is None:
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


@pytest.fixture
async def xds(echo_servers: list[int]) -> AsyncIterator[tuple[SnapshotCache, XdsServer]]:
    cache = SnapshotCache()
    cache.apply(upserts=gr.resources(TARGET, port=echo_servers[0]))
    server = XdsServer(cache, host="127.0.0.1", port=0, grace_seconds=0.5)
    await server.start()
    try:
        yield cache, server
    finally:
        await server.stop()


async def test_grpc_client_resolves_through_ripple_and_follows_endpoint_changes(
    *, xds: tuple[SnapshotCache, XdsServer], client: Client, echo_servers: list[int]
) -> None:
    cache, server = xds
    await client.expect("server-1")
    stats = server.stats
    for short in ("lds", "rds", "cds", "eds"):
        assert stats.acks["sotw", short] >= 1, (short, stats.acks, list(stats.nack_log))
    assert not stats.nack_log
    assert stats.streams_open == 1

    cluster = f"{TARGET}-cluster"
    cache.apply(upserts=[gr.endpoints(cluster, port=echo_servers[1])])
    took_ms = await client.expect("server-2")
    print(f"grpc client moved to the new endpoint {took_ms:.0f} ms after the change")
    assert stats.pushes["sotw", "eds"] >= 2
    assert not stats.nack_log
