"""The ADS server's seams as small Protocols: the protocol state machine one stream runs
(`StreamMachine`: `sotw.SotwStream`, `delta.DeltaStream`), and the observers of its streams,
in the shape of go-control-plane's server callbacks (OnStreamOpen, OnStreamRequest,
OnStreamResponse, OnStreamClosed).

For every stream the server asks each of its `Callbacks` for a `StreamCallbacks` and calls
them all at the same points, in the order they were given. Observers only watch: what is sent
is the state machine's decision. The server's own are `stream_log.StreamLogging` (log lines
and `XdsStats`) and `propagation.Propagation` (propagation timing, NACK listeners). The cache a
machine reads is `snapshot.CacheView`."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from ripple_common.resources import TypeUrl
from ripple_xds.delta import DeltaResponse
from ripple_xds.protocol import Step
from ripple_xds.sotw import SotwResponse

Response = SotwResponse | DeltaResponse
_Req_contra = TypeVar("_Req_contra", contravariant=True)
_Resp_co = TypeVar("_Resp_co", covariant=True)


class StreamMachine(Protocol[_Req_contra, _Resp_co]):
    """The protocol state of one stream: what to send for a request or a cache change."""

    def on_request(self, request: _Req_contra) -> Step[_Resp_co]: ...

    def on_change(self, names: Mapping[TypeUrl, Collection[str]]) -> Step[_Resp_co]: ...


class StreamCallbacks:
    """What happens on one stream. Every method does nothing: an observer overrides what it
    watches (go-control-plane's CallbackFuncs)."""

    def on_request(self, message: Any) -> None:
        """A request arrived (the protobuf message), before the state machine reads it."""

    def on_step(self, step: Step[Response]) -> None:
        """The state machine's decision for a request or a cache change (its ACKs, NACKs, a
        stale nonce, an unknown type), before its responses are written."""

    def on_response(self, response: Response, *, size: int) -> None:
        """A response was written (`size` bytes on the wire)."""

    def on_step_done(self, step: Step[Response], request: Any | None) -> None:
        """Every response of `step` was written; `request` is the message it answered (None
        for a cache change)."""

    def on_identified(self, gateway: str) -> None:
        """The node's first request was accepted; `gateway` is its gateway ("" without
        gateways)."""

    def on_node_refused(self, reason: str) -> None:
        """The stream is closed: the node has no valid identity or is not permitted."""

    def on_secrets_refused(self, reason: str, *, node_id: str) -> None:
        """The stream is closed: it asked for secrets without a verified client certificate."""

    def on_closed(self) -> None:
        """The stream ended; nothing in flight will be answered."""


class Callbacks(Protocol):
    """Opens the observer of each new stream (go-control-plane's OnStreamOpen)."""

    def stream_opened(self, *, mode: str, peer: str) -> StreamCallbacks: ...


class FanOut(StreamCallbacks):
    """The observers of one stream, each called in turn."""

    def __init__(self, observers: Sequence[StreamCallbacks]) -> None:
        self._observers = tuple(observers)

    def on_request(self, message: Any) -> None:
        for o in self._observers:
            o.on_request(message)

    def on_step(self, step: Step[Response]) -> None:
        for o in self._observers:
            o.on_step(step)

    def on_response(self, response: Response, *, size: int) -> None:
        for o in self._observers:
            o.on_response(response, size=size)

    def on_step_done(self, step: Step[Response], request: Any | None) -> None:
        for o in self._observers:
            o.on_step_done(step, request)

    def on_identified(self, gateway: str) -> None:
        for o in self._observers:
            o.on_identified(gateway)

    def on_node_refused(self, reason: str) -> None:
        for o in self._observers:
            o.on_node_refused(reason)

    def on_secrets_refused(self, reason: str, *, node_id: str) -> None:
        for o in self._observers:
            o.on_secrets_refused(reason, node_id=node_id)

    def on_closed(self) -> None:
        for o in self._observers:
            o.on_closed()
