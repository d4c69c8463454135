"""Incremental (Delta) ADS: the protocol state machine of one stream.

Feed it each decoded request (`on_request`) and each cache change (`on_change`); it returns
the responses to send, in order, and the ACKs/NACKs the requests carried. Pure logic: it
reads the cache through `CacheView` and never touches grpc or protobuf.

Rules (envoyproxy/envoy docs/root/api-docs/xds_protocol.rst, "Incremental xDS"):
- subscribe/unsubscribe apply even when the request's nonce is stale; the nonce only pairs
  an ACK/NACK (error_detail set) with the response it answers;
- the server tracks the version of every resource the client holds and sends only
  resources whose version differs, and `removed_resources` for held resources that
  disappeared;
- on (re)connect, `initial_resource_versions` says what the client holds, so it is sent only
  what it lacks or holds at another version (and told what no longer exists);
- a name in `resource_names_subscribe` is sent even if the server believes the client has it;
- wildcard: "*" in subscribe, or (legacy) a first request with no subscribe and no
  unsubscribe for a wildcard type (LDS, CDS, SRDS); "*" in unsubscribe ends it. The first
  response to a wildcard subscription is sent even when empty, so the client's init ends.
- unsubscribing a name while also subscribed to the wildcard gets an answer: the resource
  (it is in the wildcard) or its name in removed_resources;
- a rejected (NACKed) version is not sent again; the next different content is;
- one response per type in flight; responses for several types go out in PUSH_ORDER, and
  a type waits while an earlier type has a change held back by an unacknowledged response;
- make before break (protocol.WARMING_TYPES, ROUTING_TYPES): listener, scope and route
  responses wait until the cluster, endpoint and secret responses with upserts sent before
  them were answered (ACK or NACK), so a route never goes live on a warming cluster; cluster,
  endpoint and secret removals wait until the routing responses pending or in flight when
  they were decided were answered, so nothing is removed while a route still uses it. Each
  flush sends upserts in PUSH_ORDER, then released removals in reverse order;
- an added or changed cluster is followed by the ClusterLoadAssignment its EDS service name
  names, even one the client holds at that version (another cluster may share it): Envoy
  keeps the cluster warming until it gets one and does not ask for it (15 s otherwise).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from ripple_common.resources import TypeUrl
from ripple_xds.protocol import (
    NO_ANSWER,
    WARMING_TYPES,
    WILDCARD,
    WILDCARD_TYPES,
    Barrier,
    DeferredRemovals,
    HeldSet,
    ProtocolStream,
    Sent,
    Step,
    parse_type_url,
    rewarm_endpoints,
    settle,
)
from ripple_xds.snapshot import Entry


@dataclass(frozen=True, slots=True)
class DeltaRequest:
    """The parts of a DeltaDiscoveryRequest the protocol needs. `error` is
    error_detail.message when error_detail is set (a NACK), else None."""

    type_url: str
    subscribe: tuple[str, ...] = ()
    unsubscribe: tuple[str, ...] = ()
    initial_resource_versions: Mapping[str, str] = field(default_factory=dict)
    response_nonce: str = ""
    error: str | None = None


@dataclass(frozen=True, slots=True)
class DeltaResponse:
    type_url: TypeUrl
    system_version_info: str
    nonce: str
    resources: tuple[Entry, ...]
    removed: tuple[str, ...]


class _TypeState:
    __slots__ = (
        "answered",
        "deferred",
        "dirty",
        "dirty_all",
        "flushed",
        "held",
        "in_flight",
        "must_respond",
        "names",
        "removal_due",
        "type_url",
        "wildcard",
    )

    def __init__(self, type_url: TypeUrl) -> None:
        self.type_url = type_url
        self.wildcard = False
        self.names: set[str] = set()
        self.held = HeldSet()  # name -> version the client holds (as far as we know)
        self.in_flight: Sent | None = None
        self.dirty: set[str] = set()
        self.dirty_all = False
        self.must_respond = False  # first answer to a wildcard subscription, even if empty
        self.removal_due: set[str] = set()  # names to report removed even if not held
        self.flushed = 0
        self.answered = 0
        self.deferred = DeferredRemovals()  # removals waiting for routing ACKs

    def relevant(self, name: str) -> bool:
        return self.wildcard or name in self.names

    def pending(self) -> bool:
        return (
            self.dirty_all
            or self.must_respond
            or bool(self.removal_due)
            or any(self.relevant(n) or n in self.held for n in self.dirty)
        )


class DeltaStream(ProtocolStream[_TypeState, DeltaResponse]):
    """Protocol state of one DeltaAggregatedResources stream."""

    def on_request(self, request: DeltaRequest) -> Step[DeltaResponse]:
        type_url = parse_type_url(request.type_url)
        if type_url is None:
            return Step(unknown_type=request.type_url)
        state = self._types.get(type_url)
        first = state is None
        if state is None:
            state = self._types[type_url] = _TypeState(type_url)

        answer = NO_ANSWER
        stale = False
        if request.response_nonce:
            sent = state.in_flight
            if sent is None or request.response_nonce != sent.nonce:
                stale = True
            else:
                answer = settle(state, type_url, error=request.error, echoed=None)

        # Subscription changes apply whatever the nonce.
        if first:
            self._start(state, request)
        self._subscribe(state, request.subscribe, first=first)
        self._unsubscribe(state, request.unsubscribe)
        return Step(
            responses=self._flush(), acks=answer.acks, nacks=answer.nacks, stale_nonce=stale
        )

    # -- subscriptions --------------------------------------------------------------------

    def _start(self, state: _TypeState, request: DeltaRequest) -> None:
        for name, version in request.initial_resource_versions.items():
            if name != WILDCARD:
                state.held.set(name, version)
        state.dirty_all = True
        legacy_wildcard = not request.subscribe and not request.unsubscribe
        if legacy_wildcard and state.type_url in WILDCARD_TYPES:
            state.wildcard = True
            state.must_respond = True

    def _subscribe(self, state: _TypeState, names: tuple[str, ...], *, first: bool) -> None:
        for name in names:
            if name == WILDCARD:
                if not state.wildcard:
                    state.wildcard = True
                    state.dirty_all = True
                    state.must_respond = state.must_respond or first
                continue
            state.names.add(name)
            if not first:
                # The client may have forgotten it: send it even if we think it holds it.
                state.held.discard(name)
            state.dirty.add(name)

    def _unsubscribe(self, state: _TypeState, names: tuple[str, ...]) -> None:
        for name in names:
            if name == WILDCARD:
                if state.wildcard:
                    state.wildcard = False
                    for held in state.held.names():
                        if held not in state.names:
                            state.held.discard(held)
                continue
            if name not in state.names:
                continue  # phantom unsubscription
            state.names.discard(name)
            state.held.discard(name)
            if state.wildcard:
                # It may or may not be in the wildcard: the client must be told which.
                state.removal_due.add(name)
                state.dirty.add(name)

    # -- responses ------------------------------------------------------------------------

    def _holds_removals(self, type_url: TypeUrl, state: _TypeState) -> bool:
        return type_url in WARMING_TYPES

    def _respond(self, state: _TypeState, defer: Barrier | None) -> DeltaResponse | None:
        """The response for the pending changes of `state`; with `defer`, removals of held
        resources are held back until that barrier has passed (the client keeps them)."""
        candidates: Collection[str]
        if state.dirty_all:
            in_cache = self._cache.names(state.type_url) if state.wildcard else state.names
            candidates = {*in_cache, *state.names, *state.held, *state.removal_due}
        else:
            candidates = {*state.dirty, *state.removal_due}
        state.dirty = set()
        state.dirty_all = False

        to_send: list[Entry] = []
        removed: list[str] = []
        deferred: list[str] = []
        get = self._cache.get
        for name in candidates:
            relevant = state.relevant(name)
            entry = get(state.type_url, name) if relevant else None
            if entry is not None:
                if state.held.get(name) != entry.version:
                    state.held.set_entry(entry)
                    to_send.append(entry)
            elif relevant and name in state.held:
                if defer is not None:
                    deferred.append(name)
                    continue
                state.held.discard(name)
                removed.append(name)
            elif name in state.removal_due:
                removed.append(name)
            else:
                state.held.discard(name)
        state.removal_due.clear()
        if defer is not None:
            state.deferred.add(defer, deferred)
        must_respond, state.must_respond = state.must_respond, False
        if not to_send and not removed and not must_respond:
            return None

        nonce = self._nonces.next()
        version = state.held.digest
        names = tuple(e.name for e in to_send)
        if state.type_url is TypeUrl.CLUSTER:
            rewarm_endpoints(self._types.get(TypeUrl.ENDPOINT), to_send)
        state.in_flight = Sent(nonce=nonce, version=version, names=names, removed=tuple(removed))
        return DeltaResponse(
            state.type_url,
            system_version_info=version,
            nonce=nonce,
            resources=tuple(to_send),
            removed=tuple(removed),
        )
