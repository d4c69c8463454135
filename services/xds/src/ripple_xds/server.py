"""grpcio aio adapter: the AggregatedDiscoveryService (SotW StreamAggregatedResources and
Delta DeltaAggregatedResources) on top of the pure state machines in `sotw` and `delta`.

Each stream is served by one handler task (plus a reader task that only decodes requests
into the handler's queue). The handler owns the stream's state machine; the snapshot cache
wakes it through an inbox that merges changed names, so a slow stream holds at most one
pending set of names, never a backlog of changes. Responses are encoded from the cached
resource bytes (`wire`), so a resource is never re-serialized per stream."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any, Final, TypeVar

import grpc
import grpc.aio
import structlog
from envoy.service.discovery.v3 import discovery_pb2

from ripple_common.resources import TypeUrl
from ripple_xds.delta import DeltaRequest, DeltaResponse, DeltaStream
from ripple_xds.identity import (
    GATEWAY_METADATA,
    GatewayPolicy,
    IdentityError,
    NotPermittedError,
    PeerCertificate,
    identify,
    secrets_allowed,
)
from ripple_xds.ports import Callbacks, FanOut, StreamCallbacks, StreamMachine
from ripple_xds.propagation import Propagation
from ripple_xds.protocol import parse_type_url
from ripple_xds.snapshot import CacheChange, CacheView, SnapshotCache
from ripple_xds.sotw import SotwRequest, SotwResponse, SotwStream
from ripple_xds.stream_log import StreamLogging, XdsStats
from ripple_xds.view import view_for, without_secrets
from ripple_xds.wire import encode_delta, encode_sotw

SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"

_log = structlog.get_logger(__name__)


def decode_sotw(message: Any) -> SotwRequest:
    """DiscoveryRequest -> SotwRequest."""
    error = message.error_detail.message if message.HasField("error_detail") else None
    return SotwRequest(
        type_url=message.type_url,
        resource_names=tuple(message.resource_names),
        version_info=message.version_info,
        response_nonce=message.response_nonce,
        error=error,
    )


def decode_delta(message: Any) -> DeltaRequest:
    """DeltaDiscoveryRequest -> DeltaRequest."""
    error = message.error_detail.message if message.HasField("error_detail") else None
    return DeltaRequest(
        type_url=message.type_url,
        subscribe=tuple(message.resource_names_subscribe),
        unsubscribe=tuple(message.resource_names_unsubscribe),
        initial_resource_versions=dict(message.initial_resource_versions),
        response_nonce=message.response_nonce,
        error=error,
    )


class _Signal(enum.Enum):
    CHANGED = "changed"
    END = "end"


Req = TypeVar("Req")
Resp = TypeVar("Resp", SotwResponse, DeltaResponse)


class _Inbox:
    """Cache changes not yet seen by a stream: names merged per type, one wake-up queued."""

    __slots__ = ("_names", "_queue", "_signalled")

    def __init__(self, queue: asyncio.Queue[Any]) -> None:
        self._names: dict[TypeUrl, set[str]] = {}
        self._queue = queue
        self._signalled = False

    def on_change(self, change: CacheChange) -> None:
        for type_url, names in change.names.items():
            self._names.setdefault(type_url, set()).update(names)
        if not self._signalled:
            self._signalled = True
            self._queue.put_nowait(_Signal.CHANGED)

    def take(self) -> dict[TypeUrl, set[str]]:
        names, self._names = self._names, {}
        self._signalled = False
        return names


def _identity(data: bytes) -> bytes:
    return data


class AdsServicer:
    """The AggregatedDiscoveryService over one snapshot cache. With `require_node_id`, a
    stream whose first request carries no node id is closed with INVALID_ARGUMENT, and one
    whose gateway `policy` refuses (unknown gateway, client certificate naming another, no
    certificate while gateways are configured) with PERMISSION_DENIED; an accepted node sees
    only its gateway's tenants (see `identity`). Secrets: a stream whose client presented no
    verified certificate is closed with PERMISSION_DENIED at its first Secret request and is
    never sent one, unless `insecure_dev_secrets` (development only).

    Every stream is observed by `callbacks` (`ports.Callbacks`): first the stream log
    (`stats`), then the propagation timing (`propagation`), then any `extra_callbacks`."""

    def __init__(
        self,
        cache: SnapshotCache,
        *,
        stats: XdsStats | None = None,
        require_node_id: bool = True,
        propagation: Propagation | None = None,
        policy: GatewayPolicy | None = None,
        insecure_dev_secrets: bool = False,
        extra_callbacks: Sequence[Callbacks] = (),
    ) -> None:
        self._cache = cache
        self.stats = stats if stats is not None else XdsStats()
        self._require_node_id = require_node_id
        self._policy = policy if policy is not None else GatewayPolicy()
        if self._policy.gateways and not require_node_id:
            raise ValueError("gateways need require_node_id: every node must be identified")
        self._insecure_dev_secrets = insecure_dev_secrets
        # Changes pushed and ACKed per stream (the end of the propagation measurement).
        self.propagation = propagation if propagation is not None else Propagation()
        self.callbacks: tuple[Callbacks, ...] = (
            StreamLogging(self.stats),
            self.propagation,
            *extra_callbacks,
        )

    def handler(self) -> grpc.GenericRpcHandler:
        """The generic handler to add to a grpc.aio server. Requests are decoded with the
        generated classes; responses are already wire bytes."""
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "StreamAggregatedResources": grpc.stream_stream_rpc_method_handler(
                    self.stream_aggregated_resources,
                    request_deserializer=discovery_pb2.DiscoveryRequest.FromString,
                    response_serializer=_identity,
                ),
                "DeltaAggregatedResources": grpc.stream_stream_rpc_method_handler(
                    self.delta_aggregated_resources,
                    request_deserializer=discovery_pb2.DeltaDiscoveryRequest.FromString,
                    response_serializer=_identity,
                ),
            },
        )

    async def stream_aggregated_resources(
        self, _requests: object, context: grpc.aio.ServicerContext[Any, bytes]
    ) -> None:
        await self._serve(
            context,
            mode="sotw",
            machine=SotwStream,
            decode=decode_sotw,
            encode=encode_sotw,
        )

    async def delta_aggregated_resources(
        self, _requests: object, context: grpc.aio.ServicerContext[Any, bytes]
    ) -> None:
        await self._serve(
            context,
            mode="delta",
            machine=DeltaStream,
            decode=decode_delta,
            encode=encode_delta,
        )

    async def _serve(
        self,
        context: grpc.aio.ServicerContext[Any, bytes],
        *,
        mode: str,
        machine: Callable[[CacheView], StreamMachine[Req, Resp]],
        decode: Callable[[Any], Req],
        encode: Callable[[Resp], bytes],
    ) -> None:
        peer = peer_certificate(context)
        secrets = secrets_allowed(peer, insecure_dev_secrets=self._insecure_dev_secrets)
        queue: asyncio.Queue[Any] = asyncio.Queue()
        inbox = _Inbox(queue)
        subscription = self._cache.subscribe(inbox.on_change)
        reader = asyncio.create_task(_read(context, queue))
        peer_name = context.peer()
        observer = FanOut([cb.stream_opened(mode=mode, peer=peer_name) for cb in self.callbacks])
        # Built once the node is identified: it sees the cache through the node's gateway.
        state: StreamMachine[Req, Resp] | None = None
        if not self._require_node_id:
            state = machine(self._cache if secrets else without_secrets(self._cache))
        try:
            while True:
                item = await queue.get()
                if item is _Signal.END:
                    break
                if item is _Signal.CHANGED:
                    names = inbox.take()
                    if state is None:
                        continue  # nothing subscribed yet: the first request sees the cache
                    step = state.on_change(names)
                    request = None
                else:
                    request = item
                    if state is None:
                        view = await self._identify(request, context, observer, peer=peer)
                        state = machine(view if secrets else without_secrets(view))
                    if not secrets and parse_type_url(request.type_url) is TypeUrl.SECRET:
                        await self._refuse_secrets(request, context, observer)
                    observer.on_request(request)
                    step = state.on_request(decode(request))
                observer.on_step(step)
                for response in step.responses:
                    data = encode(response)
                    await context.write(data)
                    observer.on_response(response, size=len(data))
                observer.on_step_done(step, request)
        finally:
            subscription.close()
            reader.cancel()
            with suppress(asyncio.CancelledError):
                await reader
            observer.on_closed()

    async def _refuse_secrets(
        self, request: Any, context: grpc.aio.ServicerContext[Any, bytes], stream: StreamCallbacks
    ) -> None:
        """Close the stream: it asks for secrets without a verified client certificate."""
        message = (
            "ripple-xds: secrets (SDS) are served only over mTLS (a client certificate signed "
            "by RIPPLE_XDS_TLS_CLIENT_CA_FILE); this connection presented none"
        )
        stream.on_secrets_refused(message, node_id=request.node.id)
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, message)

    async def _identify(
        self,
        request: Any,
        context: grpc.aio.ServicerContext[Any, bytes],
        stream: StreamCallbacks,
        *,
        peer: PeerCertificate | None,
    ) -> CacheView:
        """Check the first request's node identity and gateway; the cache as the node may
        see it. Closes the stream when the node has no identity or is not permitted."""
        node = request.node
        gateway_field = node.metadata.fields.get(GATEWAY_METADATA)
        try:
            identity = identify(
                has_node=request.HasField("node"),
                node_id=node.id,
                cluster=node.cluster,
                metadata_gateway=gateway_field.string_value if gateway_field else "",
            )
            gateway = self._policy.gateway_of(identity, peer=peer)
        except NotPermittedError as exc:
            stream.on_node_refused(str(exc))
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
        except IdentityError as exc:
            stream.on_node_refused(str(exc))
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        stream.on_identified(identity.gateway)
        return view_for(self._cache, gateway)


def peer_certificate(context: grpc.aio.ServicerContext[Any, bytes]) -> PeerCertificate | None:
    """The client certificate of an mTLS stream, None on a connection without one
    (plaintext, or TLS without RIPPLE_XDS_TLS_CLIENT_CA_FILE). grpcio's server credentials
    either require and verify a client certificate or do not ask for one
    (`ssl_server_credentials(require_client_auth=...)`), so a certificate in the auth context
    is a verified one."""
    auth = context.auth_context()
    if auth.get("transport_security_type") != [b"ssl"]:
        return None
    pem = next(iter(auth.get("x509_pem_cert", ())), None)
    if pem is None:
        return None
    return PeerCertificate.from_pem(pem)


async def _read(context: grpc.aio.ServicerContext[Any, bytes], queue: asyncio.Queue[Any]) -> None:
    try:
        while True:
            message = await context.read()
            if message is grpc.aio.EOF:
                return
            queue.put_nowait(message)
    except Exception as exc:  # the stream is over whatever broke it; the handler ends it
        _log.info("xds stream read failed", error=repr(exc))
    finally:
        queue.put_nowait(_Signal.END)


def server_credentials(
    *, cert: Path | None, key: Path | None, client_ca: Path | None = None
) -> grpc.ServerCredentials | None:
    """TLS credentials of the ADS server from PEM files (None without cert and key:
    plaintext); with `client_ca`, clients must present a certificate it signed (mTLS)."""
    if cert is None or key is None:
        return None
    return grpc.ssl_server_credentials(
        [(key.read_bytes(), cert.read_bytes())],
        root_certificates=client_ca.read_bytes() if client_ca is not None else None,
        require_client_auth=client_ca is not None,
    )


# A reconnecting gateway's first Delta request lists every resource it holds (~70 bytes a
# host): grpc's default limit of 4 MiB refused it from about 60,000 hosts on.
DEFAULT_MAX_REQUEST_BYTES: Final = 64 * 2**20


class XdsServer:
    """A grpc.aio server serving `AdsServicer` (start/stop fit ripple_common.lifecycle).
    With `credentials` it listens with TLS (mTLS when they require a client certificate:
    `grpc.ssl_server_credentials(..., require_client_auth=True)`), else in plaintext. Secrets
    go only to clients with a verified certificate unless `insecure_dev_secrets`."""

    def __init__(
        self,
        cache: SnapshotCache,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        stats: XdsStats | None = None,
        grace_seconds: float = 5.0,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        require_node_id: bool = True,
        propagation: Propagation | None = None,
        policy: GatewayPolicy | None = None,
        credentials: grpc.ServerCredentials | None = None,
        insecure_dev_secrets: bool = False,
        extra_callbacks: Sequence[Callbacks] = (),
    ) -> None:
        self.servicer = AdsServicer(
            cache,
            stats=stats,
            require_node_id=require_node_id,
            propagation=propagation,
            policy=policy,
            insecure_dev_secrets=insecure_dev_secrets,
            extra_callbacks=extra_callbacks,
        )
        self._credentials = credentials
        self._address = f"{host}:{port}"
        self._grace = grace_seconds
        self._max_request_bytes = max_request_bytes
        self._server: grpc.aio.Server | None = None
        self.port = 0

    @property
    def stats(self) -> XdsStats:
        return self.servicer.stats

    async def start(self) -> None:
        server = grpc.aio.server(
            options=[("grpc.max_receive_message_length", self._max_request_bytes)]
        )
        server.add_generic_rpc_handlers((self.servicer.handler(),))
        if self._credentials is None:
            self.port = server.add_insecure_port(self._address)
        else:
            self.port = server.add_secure_port(self._address, self._credentials)
        await server.start()
        self._server = server
        _log.info(
            "xds server listening",
            address=self._address,
            port=self.port,
            tls=self._credentials is not None,
        )

    async def stop(self) -> None:
        """Stop accepting streams; open streams get GOAWAY and `grace_seconds` to end."""
        server, self._server = self._server, None
        if server is not None:
            await server.stop(self._grace)
