"""The log lines and counters of ADS streams: `StreamLogging` opens a `StreamLog` per stream
(a `ports.StreamCallbacks`), which counts into the server's `XdsStats` (read by /metrics) and
logs the stream's open, requests, pushes, ACKs and NACKs (a NACK with the tenants at fault),
and one canonical line when it closes."""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

import structlog
from envoy.service.discovery.v3 import discovery_pb2

from ripple_common.resources import TypeUrl
from ripple_xds.delta import DeltaResponse
from ripple_xds.ports import Response, StreamCallbacks
from ripple_xds.protocol import Nack, Step, parse_type_url
from ripple_xds.tenants import tenants_of

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class NackRecord:
    """A response a client rejected: which node, which type and version, Envoy's error text,
    the resources of the rejected response and the tenants owning them (the offenders)."""

    node_id: str
    mode: str  # "sotw" or "delta"
    type_url: TypeUrl
    rejected_version: str
    kept_version: str
    error: str
    names: tuple[str, ...]
    at: float
    tenants: tuple[str, ...] = ()


class XdsStats:
    """Counters of one server (not module state: each server owns its own)."""

    def __init__(self, *, nack_history: int = 1000) -> None:
        self.streams_open = 0
        self.streams_total = 0
        self.pushes: Counter[tuple[str, str]] = Counter()  # (mode, type short)
        self.resources_sent: Counter[tuple[str, str]] = Counter()
        self.bytes_sent: Counter[tuple[str, str]] = Counter()
        self.requests: Counter[tuple[str, str]] = Counter()  # handled, by type ("?" unknown)
        self.acks: Counter[tuple[str, str]] = Counter()
        self.nacks: Counter[tuple[str, str]] = Counter()
        self.nack_tenants: Counter[str] = Counter()  # tenants of rejected responses
        self.stale_nonces = 0
        self.nodes_rejected = 0  # streams closed because the node presented no identity
        self.secrets_refused = 0  # streams closed: secrets asked without a client certificate
        self.nack_log: deque[NackRecord] = deque(maxlen=nack_history)


def _describe(message: Any) -> dict[str, object]:
    """A short, loggable summary of a DiscoveryRequest or DeltaDiscoveryRequest."""
    summary: dict[str, object] = {"type_url": message.type_url.rsplit(".", 1)[-1]}
    if message.response_nonce:
        summary["nonce"] = message.response_nonce
    if message.HasField("error_detail"):
        summary["error"] = message.error_detail.message
    if isinstance(message, discovery_pb2.DiscoveryRequest):
        summary["version"] = message.version_info
        summary["names"] = list(message.resource_names[:10])
    else:
        summary["subscribe"] = list(message.resource_names_subscribe[:10])
        summary["unsubscribe"] = list(message.resource_names_unsubscribe[:10])
        summary["initial"] = len(message.initial_resource_versions)
    return summary


class StreamLog(StreamCallbacks):
    """Logs and counts what happens on one stream; one canonical line when it closes."""

    def __init__(self, *, mode: str, peer: str, stats: XdsStats) -> None:
        self._mode = mode
        self._stats = stats
        self._log = _log.bind(mode=mode, peer=peer)
        self._node_id = ""
        self.gateway = ""
        self._started = time.monotonic()
        self._requests = 0
        self._responses = 0
        self._bytes = 0
        self._acks = 0
        self._nacks = 0
        self._unknown: set[str] = set()
        stats.streams_open += 1
        stats.streams_total += 1

    def on_request(self, message: Any) -> None:
        self._requests += 1
        if not self._node_id and message.HasField("node"):
            self._node_id = message.node.id
            self._log = self._log.bind(node=self._node_id)
            self._log.info("xds stream opened")
        self._log.debug("xds request", request=_describe(message))

    def on_node_refused(self, reason: str) -> None:
        self._stats.nodes_rejected += 1
        self._log.warning("xds stream refused: no valid node identity", reason=reason)

    def on_secrets_refused(self, reason: str, *, node_id: str) -> None:
        self._stats.secrets_refused += 1
        self._log.warning(
            "xds stream refused: secrets asked without a client certificate",
            node=node_id or self._node_id,
            reason=reason,
        )

    def on_identified(self, gateway: str) -> None:
        self.gateway = gateway
        if gateway:
            self._log = self._log.bind(gateway=gateway)

    def on_step_done(self, step: Step[Response], request: Any | None) -> None:
        """Counts the request once every response it caused was written."""
        if request is None:
            return
        type_url = parse_type_url(request.type_url)
        short = type_url.short if type_url is not None else "?"
        self._stats.requests[self._mode, short] += 1

    def on_step(self, step: Step[Response]) -> None:
        for ack in step.acks:
            self._acks += 1
            self._stats.acks[self._mode, ack.type_url.short] += 1
            self._log.debug(
                "xds ack", type=ack.type_url.short, version=ack.version, nonce=ack.nonce
            )
        for nack in step.nacks:
            self._nack(nack)
        if step.stale_nonce:
            self._stats.stale_nonces += 1
        if step.unknown_type is not None and step.unknown_type not in self._unknown:
            self._unknown.add(step.unknown_type)
            self._log.warning("xds request for an unserved type", type_url=step.unknown_type)

    def _nack(self, nack: Nack) -> None:
        self._nacks += 1
        self._stats.nacks[self._mode, nack.type_url.short] += 1
        tenants = tenants_of((*nack.names, *nack.removed))
        self._stats.nack_tenants.update(tenants)
        self._stats.nack_log.append(
            NackRecord(
                node_id=self._node_id,
                mode=self._mode,
                type_url=nack.type_url,
                rejected_version=nack.rejected_version,
                kept_version=nack.kept_version,
                error=nack.error,
                names=nack.names,
                at=time.time(),
                tenants=tenants,
            )
        )
        self._log.warning(
            "xds nack",
            type=nack.type_url.short,
            rejected_version=nack.rejected_version,
            kept_version=nack.kept_version,
            error=nack.error,
            tenants=list(tenants[:20]),
            names=list(nack.names[:20]),
            names_total=len(nack.names),
        )

    def on_response(self, response: Response, *, size: int) -> None:
        short = response.type_url.short
        self._responses += 1
        self._bytes += size
        self._stats.pushes[self._mode, short] += 1
        self._stats.resources_sent[self._mode, short] += len(response.resources)
        self._stats.bytes_sent[self._mode, short] += size
        self._log.debug(
            "xds push",
            type=short,
            nonce=response.nonce,
            resources=len(response.resources),
            removed=len(response.removed) if isinstance(response, DeltaResponse) else 0,
            bytes=size,
        )

    def on_closed(self) -> None:
        self._stats.streams_open -= 1
        self._log.info(
            "xds stream closed",
            seconds=round(time.monotonic() - self._started, 3),
            requests=self._requests,
            responses=self._responses,
            bytes=self._bytes,
            acks=self._acks,
            nacks=self._nacks,
        )


class StreamLogging:
    """The `ports.Callbacks` that logs every stream and counts into `stats`."""

    def __init__(self, stats: XdsStats) -> None:
        self.stats = stats

    def stream_opened(self, *, mode: str, peer: str) -> StreamLog:
        return StreamLog(mode=mode, peer=peer, stats=self.stats)
