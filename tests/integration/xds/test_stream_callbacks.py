"""The ADS server's stream callbacks (`ripple_xds.ports`, go-control-plane's shape) with a
grpc client on 127.0.0.1 (no Envoy): an extra observer sees each stream's requests, the
state machine's decisions (ACK, NACK), the responses written and the close, in that order,
beside the server's own log and propagation observers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc.aio
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.rpc import status_pb2

from ripple_common.resources import Resource, TypeUrl
from ripple_xds.ports import Response, StreamCallbacks
from ripple_xds.protocol import Step
from ripple_xds.server import XdsServer
from ripple_xds.snapshot import SnapshotCache

CDS = TypeUrl.CLUSTER
TIMEOUT_S = 5.0


class Recorder(StreamCallbacks):
    def __init__(self, mode: str, events: list[str]) -> None:
        self.mode = mode
        self.events = events
        self.acked = asyncio.Event()
        self.nacked = asyncio.Event()
        self.closed = asyncio.Event()

    def on_request(self, message: Any) -> None:
        self.events.append(f"request {message.response_nonce}".strip())

    def on_step(self, step: Step[Response]) -> None:
        answers = [f"ack {a.nonce}" for a in step.acks] + [f"nack {n.nonce}" for n in step.nacks]
        self.events.append(" ".join(["step", *answers]))

    def on_response(self, response: Response, *, size: int) -> None:
        assert size > 0
        self.events.append(f"response {response.nonce}")

    def on_step_done(self, step: Step[Response], request: Any | None) -> None:
        self.events.append("done " + ("request" if request is not None else "change"))
        if step.acks:
            self.acked.set()
        if step.nacks:
            self.nacked.set()

    def on_identified(self, gateway: str) -> None:
        self.events.append(f"identified {gateway}".strip())

    def on_closed(self) -> None:
        self.events.append("closed")
        self.closed.set()


class Recording:
    def __init__(self) -> None:
        self.streams: list[Recorder] = []
        self.events: list[str] = []

    def stream_opened(self, *, mode: str, peer: str) -> Recorder:
        assert peer
        recorder = Recorder(mode, self.events)
        self.streams.append(recorder)
        return recorder


@pytest.fixture
async def served() -> AsyncIterator[tuple[SnapshotCache, XdsServer, Recording, Any]]:
    cache = SnapshotCache()
    recording = Recording()
    server = XdsServer(
        cache, host="127.0.0.1", port=0, grace_seconds=0.1, extra_callbacks=[recording]
    )
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield cache, server, recording, ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
    finally:
        await server.stop()


async def _read(call: Any) -> Any:
    return await asyncio.wait_for(call.read(), TIMEOUT_S)


async def test_an_extra_observer_sees_requests_answers_responses_and_the_close(
    served: tuple[SnapshotCache, XdsServer, Recording, Any],
) -> None:
    cache, server, recording, stub = served
    cache.apply(upserts=[Resource(CDS, "a", b"\x0a\x01a")])
    call = stub.StreamAggregatedResources()
    await call.write(
        discovery_pb2.DiscoveryRequest(node=base_pb2.Node(id="n1"), type_url=CDS.value)
    )
    first = await _read(call)
    await call.write(
        discovery_pb2.DiscoveryRequest(
            type_url=CDS.value, version_info=first.version_info, response_nonce=first.nonce
        )
    )
    (stream,) = recording.streams
    await asyncio.wait_for(stream.acked.wait(), TIMEOUT_S)  # the change comes after the ACK
    cache.apply(upserts=[Resource(CDS, "b", b"\x0a\x01b")])
    second = await _read(call)
    await call.write(
        discovery_pb2.DiscoveryRequest(
            type_url=CDS.value,
            version_info=first.version_info,
            response_nonce=second.nonce,
            error_detail=status_pb2.Status(message="bad cluster b"),
        )
    )
    await asyncio.wait_for(stream.nacked.wait(), TIMEOUT_S)
    call.cancel()
    await asyncio.wait_for(stream.closed.wait(), TIMEOUT_S)

    assert stream.mode == "sotw"
    one, two = first.nonce, second.nonce
    assert recording.events == [
        *("identified", "request", "step", f"response {one}", "done request"),
        *(f"request {one}", f"step ack {one}", "done request"),
        *("step", f"response {two}", "done change"),
        *(f"request {two}", f"step nack {two}", "done request"),
        "closed",
    ]
    # The server's own observers saw the same stream.
    assert server.stats.acks["sotw", CDS.short] == 1
    assert server.stats.streams_total == 1
    assert server.stats.streams_open == 0
    assert not server.servicer.propagation.streams
