"""State-of-the-world ADS: the protocol state machine of one stream.

Feed it each decoded request (`on_request`) and each cache change (`on_change`); it returns
the responses to send, in order, and the ACKs/NACKs the requests carried. Pure logic: it
reads the cache through `CacheView` and never touches grpc or protobuf.

Rules (envoyproxy/envoy docs/root/api-docs/xds_protocol.rst):
- nonces are per stream; a request whose nonce is not the last one sent for its type is
  stale and ignored;
- ACK = the request echoes the version sent and has no error_detail; NACK = error_detail set
  (version_info is then the client's last good version). The rejected content is not sent
  again; the next different content is;
- one response per type in flight: changes arriving before the ACK are coalesced into the
  next response;
- LDS, CDS and SRDS responses carry the full state (absent = deleted); RDS, EDS, SDS carry
  only resources that changed or were newly requested;
- wildcard: a first request naming nothing (LDS, CDS, SRDS) or naming "*";
- names that do not exist yet are remembered and sent when they appear;
- send only on change; a name appears at most once in a response;
- responses for several types go out in PUSH_ORDER, and a type waits while an earlier type
  has a change held back by an unacknowledged response;
- make before break (protocol.WARMING_TYPES, ROUTING_TYPES): listener, scope and route
  responses wait until the cluster, endpoint and secret responses sent before them were
  answered (ACK or NACK), so a route never goes live on a warming cluster; a cluster absent
  from the full state stays in the CDS responses until the routing responses pending or in
  flight when it disappeared were answered, so it is not removed while a route uses it. Each
  flush sends upserts in PUSH_ORDER, then released removals in reverse order;
- an added or changed cluster is followed by the ClusterLoadAssignment its EDS service name
  names, in the EDS response of the same flush, even one the client holds at that version
  (another cluster may share it): Envoy keeps the cluster warming until it gets one (15 s
  otherwise);
- version_info is a digest of what the client then holds, equal on every replica, so a
  client reconnecting with the version it holds is not sent the same content again.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from ripple_common.resources import TypeUrl
from ripple_xds.protocol import (
    NO_ANSWER,
    SOTW_FULL_STATE_TYPES,
    WARMING_TYPES,
    WILDCARD,
    WILDCARD_TYPES,
    Barrier,
    DeferredRemovals,
    HeldSet,
    ProtocolStream,
    Sent,
    Step,
    digest_of_entries,
    parse_type_url,
    rewarm_endpoints,
    settle,
)
from ripple_xds.snapshot import Entry


@dataclass(frozen=True, slots=True)
class SotwRequest:
    """The parts of a DiscoveryRequest the protocol needs. `error` is error_detail.message
    when error_detail is set (a NACK), else None."""

    type_url: str
    resource_names: tuple[str, ...] = ()
    version_info: str = ""
    response_nonce: str = ""
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SotwResponse:
    type_url: TypeUrl
    version_info: str
    nonce: str
    resources: tuple[Entry, ...]


class _TypeState:
    __slots__ = (
        "answered",
        "deferred",
        "dirty",
        "dirty_all",
        "explicit",
        "flushed",
        "force",
        "full_state",
        "held",
        "in_flight",
        "keeps_removals",
        "names",
        "nonce",
        "sent_entries",
        "sent_version",
        "type_url",
        "wildcard",
    )

    def __init__(self, type_url: TypeUrl) -> None:
        self.type_url = type_url
        self.full_state = type_url in SOTW_FULL_STATE_TYPES
        self.wildcard = False
        self.explicit = False  # ever named a resource: the legacy wildcard is over
        self.names: set[str] = set()
        self.held = HeldSet()
        self.nonce: str | None = None  # last nonce sent for this type
        self.in_flight: Sent | None = None
        self.sent_version: str | None = None  # version of the last response (ACKed or not)
        self.dirty: set[str] = set()
        self.dirty_all = False
        self.force = False  # full state: respond even if the content did not change
        self.flushed = 0
        self.answered = 0
        # Full-state warming types (CDS) remove by leaving out: a removal held back keeps
        # sending the entry last sent, so those are remembered.
        self.keeps_removals = self.full_state and type_url in WARMING_TYPES
        self.deferred = DeferredRemovals()
        self.sent_entries: dict[str, Entry] = {}

    def relevant(self, name: str) -> bool:
        return self.wildcard or name in self.names

    def pending(self) -> bool:
        return self.dirty_all or self.force or any(map(self.relevant, self.dirty))


class SotwStream(ProtocolStream[_TypeState, SotwResponse]):
    """Protocol state of one StreamAggregatedResources stream."""

    def on_request(self, request: SotwRequest) -> Step[SotwResponse]:
        type_url = parse_type_url(request.type_url)
        if type_url is None:
            return Step(unknown_type=request.type_url)
        state = self._types.get(type_url)
        if request.response_nonce and (state is None or request.response_nonce != state.nonce):
            return Step(stale_nonce=True)
        first = state is None
        if state is None:
            state = self._types[type_url] = _TypeState(type_url)

        answer = NO_ANSWER
        if request.response_nonce:
            answer = settle(state, type_url, error=request.error, echoed=request.version_info)

        self._subscribe(state, request.resource_names, first=first)
        if first and request.version_info:
            self._resume(state, request.version_info)
        return Step(responses=self._flush(), acks=answer.acks, nacks=answer.nacks)

    # -- subscriptions --------------------------------------------------------------------

    def _subscribe(
        self, state: _TypeState, resource_names: tuple[str, ...], *, first: bool
    ) -> None:
        requested = set(resource_names)
        if not requested and not state.explicit:
            wildcard = state.type_url in WILDCARD_TYPES  # legacy wildcard
        else:
            state.explicit = True
            wildcard = WILDCARD in requested
            requested.discard(WILDCARD)
        added = requested - state.names
        removed = state.names - requested
        changed = first or wildcard != state.wildcard or bool(added or removed)
        if wildcard != state.wildcard or first:
            state.dirty_all = True
        state.wildcard = wildcard
        state.names = requested
        if state.full_state:
            state.force = state.force or (changed and not first)
            state.dirty_all = state.dirty_all or changed
            return
        for name in added:
            state.held.discard(name)  # a newly requested name is sent even if sent before
        state.dirty.update(added)
        if not state.wildcard:
            for name in removed:
                state.held.discard(name)

    def _resume(self, state: _TypeState, version: str) -> None:
        """First request on a new stream names the version the client holds: if the current
        content has that version, the client holds it already; do not send it again."""
        entries = self._relevant_entries(state)
        if digest_of_entries(entries) != version:
            return
        for entry in entries:
            state.held.set_entry(entry)
        if state.keeps_removals:
            state.sent_entries = {e.name: e for e in entries}
        state.sent_version = version
        state.dirty.clear()
        state.dirty_all = False
        state.force = False

    # -- responses ------------------------------------------------------------------------

    def _holds_removals(self, type_url: TypeUrl, state: _TypeState) -> bool:
        return state.keeps_removals

    def _relevant_entries(self, state: _TypeState) -> list[Entry]:
        names = self._cache.names(state.type_url) if state.wildcard else state.names
        get = self._cache.get
        return [e for n in names if (e := get(state.type_url, n)) is not None]

    def _respond(self, state: _TypeState, defer: Barrier | None) -> SotwResponse | None:
        if state.full_state:
            return self._respond_full(state, defer)
        return self._respond_by_name(state)

    def _respond_full(self, state: _TypeState, defer: Barrier | None) -> SotwResponse | None:
        """The full state; with `defer` (CDS), an entry that disappeared is sent as last sent
        until that barrier has passed."""
        before = set(state.held) if defer is not None else set()
        if state.dirty_all:
            previous = {name: state.held.get(name) for name in state.held}
            state.held.clear()
            changed: list[Entry] = []
            for entry in self._relevant_entries(state):
                state.held.set_entry(entry)
                if previous.get(entry.name) != entry.version:
                    changed.append(entry)
        else:
            changed = self._update_held(state, state.dirty)
        if defer is not None:
            kept = [
                old
                for name in before
                if name not in state.held and (old := state.sent_entries.get(name)) is not None
            ]
            for old in kept:
                state.held.set_entry(old)
            state.deferred.add(defer, (old.name for old in kept))
        state.dirty.clear()
        state.dirty_all = False
        force, state.force = state.force, False
        if not force and state.held.digest == state.sent_version:
            return None
        entries = [e for n in state.held if (e := self._held_entry(state, n)) is not None]
        if state.type_url is TypeUrl.CLUSTER:
            rewarm_endpoints(self._types.get(TypeUrl.ENDPOINT), changed)
        return self._send(state, entries)

    def _held_entry(self, state: _TypeState, name: str) -> Entry | None:
        entry = self._cache.get(state.type_url, name)
        if entry is None and state.keeps_removals and name in state.deferred:
            return state.sent_entries.get(name)
        return entry

    def _respond_by_name(self, state: _TypeState) -> SotwResponse | None:
        if state.dirty_all:
            candidates: Collection[str] = {*self._cache_names(state), *state.held}
        else:
            candidates = state.dirty
        to_send = self._update_held(state, candidates)
        state.dirty = set()
        state.dirty_all = False
        if not to_send:
            return None
        return self._send(state, to_send)

    def _cache_names(self, state: _TypeState) -> Collection[str]:
        return self._cache.names(state.type_url) if state.wildcard else state.names

    def _update_held(self, state: _TypeState, names: Collection[str]) -> list[Entry]:
        """Bring `held` up to date for `names`; return the entries whose content changed."""
        changed: list[Entry] = []
        for name in names:
            entry = self._cache.get(state.type_url, name) if state.relevant(name) else None
            if entry is None:
                state.held.discard(name)
            elif state.held.get(name) != entry.version:
                state.held.set_entry(entry)
                changed.append(entry)
        return changed

    def _send(self, state: _TypeState, entries: list[Entry]) -> SotwResponse:
        nonce = self._nonces.next()
        version = state.held.digest
        state.nonce = nonce
        state.sent_version = version
        state.in_flight = Sent(nonce=nonce, version=version, names=tuple(e.name for e in entries))
        if state.keeps_removals:
            state.sent_entries = {e.name: e for e in entries}
        return SotwResponse(
            state.type_url, version_info=version, nonce=nonce, resources=tuple(entries)
        )
