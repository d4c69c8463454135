"""Pieces shared by the SotW and Delta state machines: which types are wildcard-capable and
full-state, ACK/NACK records and which answer is which (`classify`, `settle`), per-stream
nonces, and the set of resources a client holds with a deterministic digest (the version
string every replica gives the same content).

Pure logic: no grpc, no protobuf."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from ripple_common.resources import PUSH_ORDER, TypeUrl
from ripple_xds.snapshot import CacheView, Entry, item_token

# Types a client may subscribe to with a wildcard (legacy: a first request naming nothing).
# Envoy does so for listeners and clusters, and for scoped route configurations (its first
# SRDS request names nothing and expects every scope).
WILDCARD_TYPES: frozenset[TypeUrl] = frozenset(
    {TypeUrl.LISTENER, TypeUrl.CLUSTER, TypeUrl.SCOPED_ROUTE}
)

# Types whose SotW responses carry the full state (a name absent from a response is deleted).
# The xDS protocol names LDS and CDS; Envoy's SRDS subscription also removes every scope that
# a SotW response leaves out (ScopedRdsConfigSubscription::onConfigUpdate), so it is full
# state too. RDS, EDS, SDS and VHDS are sent by name: only what changed.
SOTW_FULL_STATE_TYPES: frozenset[TypeUrl] = frozenset(
    {TypeUrl.LISTENER, TypeUrl.CLUSTER, TypeUrl.SCOPED_ROUTE}
)

WILDCARD = "*"

# Make before break. Clusters warm on their endpoints (and may use secrets): these types are
# made first. Listeners, scopes and routes reference them, so an upsert of these routing types
# waits until every warming response in flight that carries upserts was answered (ACK or
# NACK); a removal of a warming type waits until the routing responses of the same change
# (pending or in flight when the removal was decided) were answered.
WARMING_TYPES: frozenset[TypeUrl] = frozenset({TypeUrl.CLUSTER, TypeUrl.ENDPOINT, TypeUrl.SECRET})
ROUTING_TYPES: frozenset[TypeUrl] = frozenset(t for t in PUSH_ORDER if t not in WARMING_TYPES)


def parse_type_url(type_url: str) -> TypeUrl | None:
    """The known resource type, or None for a type this server does not serve."""
    try:
        return TypeUrl(type_url)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Ack:
    """The client applied the response `nonce` of `type_url` at `version`."""

    type_url: TypeUrl
    nonce: str
    version: str
    names: tuple[str, ...]
    removed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Nack:
    """The client rejected the response `nonce` (`rejected_version`) with `error`; it keeps
    `kept_version` (SotW: the request's version_info; Delta: empty, the client keeps each
    resource's last good version)."""

    type_url: TypeUrl
    nonce: str
    rejected_version: str
    kept_version: str
    error: str
    names: tuple[str, ...]
    removed: tuple[str, ...] = ()


R_co = TypeVar("R_co", covariant=True)


@dataclass(frozen=True, slots=True)
class Step(Generic[R_co]):
    """What a state machine decided for one input: responses to send, in this order, and what
    the input told about earlier responses."""

    responses: tuple[R_co, ...] = ()
    acks: tuple[Ack, ...] = ()
    nacks: tuple[Nack, ...] = ()
    stale_nonce: bool = False
    unknown_type: str | None = None


@dataclass(frozen=True, slots=True)
class Sent:
    """A response awaiting its ACK or NACK."""

    nonce: str
    version: str
    names: tuple[str, ...]
    removed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Answer:
    """What a request said about the response it answered: an ACK, a NACK or nothing."""

    acks: tuple[Ack, ...] = ()
    nacks: tuple[Nack, ...] = ()


NO_ANSWER = Answer()


def classify(sent: Sent, type_url: TypeUrl, *, error: str | None, echoed: str | None) -> Answer:
    """ACK or NACK of the response `sent`, answered by a request with `error`
    (error_detail.message, None without error_detail). SotW passes the request's version_info
    as `echoed`: an ACK also echoes the version sent (a NACK's version_info is the version
    the client keeps). Delta passes None: an ACK is a request without error_detail, and a
    NACK keeps each resource's last good version (`kept_version` is empty)."""
    if error is None and (echoed is None or echoed == sent.version):
        ack = Ack(
            type_url, nonce=sent.nonce, version=sent.version, names=sent.names, removed=sent.removed
        )
        return Answer(acks=(ack,))
    if error is None:
        error = (
            f"no error_detail, but version_info {echoed!r} is not the version sent "
            f"({sent.version!r})"
        )
    nack = Nack(
        type_url,
        nonce=sent.nonce,
        rejected_version=sent.version,
        kept_version=echoed or "",
        error=error,
        names=sent.names,
        removed=sent.removed,
    )
    return Answer(nacks=(nack,))


def settle(state: Gated, type_url: TypeUrl, *, error: str | None, echoed: str | None) -> Answer:
    """The response in flight of `state` was answered (its nonce came back): nothing is in
    flight any more, make before break counts it answered, and the request says ACK or NACK
    (`classify`). Nothing in flight: no answer."""
    sent, state.in_flight = state.in_flight, None
    if sent is None:
        return NO_ANSWER
    state.answered = state.flushed
    return classify(sent, type_url, error=error, echoed=echoed)


class Nonces:
    """Nonces of one stream: unique within it, never reused."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> str:
        self._last += 1
        return str(self._last)


class Gated(Protocol):
    """What make before break reads of a type's state. `flushed` counts the times the type's
    pending changes were turned into a response (sent or found empty); `answered` is the
    value `flushed` had when its last response was answered, or when nothing had to be sent."""

    in_flight: Sent | None
    flushed: int
    answered: int

    def pending(self) -> bool: ...


Barrier = tuple[tuple[TypeUrl, int], ...]


def routing_barrier(states: Mapping[TypeUrl, Gated]) -> Barrier:
    """The routing responses that must be answered before a warming removal decided now goes
    out: the one in flight, or the next one if changes are pending."""
    return tuple(
        (type_url, state.flushed + 1 if state.pending() else state.flushed)
        for type_url, state in states.items()
        if type_url in ROUTING_TYPES
    )


def barrier_passed(states: Mapping[TypeUrl, Gated], barrier: Barrier) -> bool:
    return all(states[type_url].answered >= flushed for type_url, flushed in barrier)


def warming_in_flight(states: Mapping[TypeUrl, Gated]) -> bool:
    """A response of a warming type carrying upserts awaits its ACK or NACK."""
    return any(
        type_url in WARMING_TYPES and state.in_flight is not None and bool(state.in_flight.names)
        for type_url, state in states.items()
    )


class DeferredRemovals:
    """Removals of one warming type held back, each batch until its barrier has passed."""

    __slots__ = ("_batches",)

    def __init__(self) -> None:
        self._batches: list[tuple[Barrier, set[str]]] = []

    def add(self, barrier: Barrier, names: Iterable[str]) -> None:
        batch = set(names)
        if batch:
            self._batches.append((barrier, batch))

    def release(self, states: Mapping[TypeUrl, Gated]) -> set[str]:
        """The names whose barrier has passed, no longer held back."""
        released: set[str] = set()
        kept: list[tuple[Barrier, set[str]]] = []
        for barrier, batch in self._batches:
            if barrier_passed(states, barrier):
                released |= batch
            else:
                kept.append((barrier, batch))
        self._batches = kept
        return released

    def __contains__(self, name: object) -> bool:
        return any(name in batch for _, batch in self._batches)

    def __bool__(self) -> bool:
        return bool(self._batches)


class Flushable(Gated, Protocol):
    """What a make-before-break flush reads and writes of a type's state."""

    deferred: DeferredRemovals
    dirty: set[str]


class Carrier(Protocol):
    """A response: whether it carries upserts decides whether routing types must wait."""

    @property
    def resources(self) -> tuple[Any, ...]: ...


S = TypeVar("S", bound=Flushable)
R = TypeVar("R", bound=Carrier)


def flush_in_order(
    states: Mapping[TypeUrl, S],
    *,
    take: Callable[[S, Barrier | None], R | None],
    holds_removals: Callable[[TypeUrl, S], bool],
) -> tuple[R, ...]:
    """The responses one flush sends, make before break, shared by SotW and Delta.

    Upserts go in PUSH_ORDER; a routing type waits while a warming response carrying upserts
    is in flight (or went out earlier in this flush). For a type that `holds_removals`, a
    removal decided while routing changes are pending or unanswered is held back (`take` gets
    the barrier) and released, in reverse PUSH_ORDER, once those were answered."""
    responses: list[R] = []
    blocked = False
    warming = warming_in_flight(states)
    for type_url in PUSH_ORDER:
        state = states.get(type_url)
        if state is None or not state.pending():
            continue
        if blocked or state.in_flight is not None or (warming and type_url in ROUTING_TYPES):
            blocked = True
            continue
        defer: Barrier | None = None
        if holds_removals(type_url, state):
            barrier = routing_barrier(states)
            if not barrier_passed(states, barrier):
                defer = barrier
        response = take(state, defer)
        if response is not None:
            responses.append(response)
            warming = warming or (type_url in WARMING_TYPES and bool(response.resources))
    # Removals held back until the routing responses were answered, in reverse order.
    for type_url in reversed(PUSH_ORDER):
        state = states.get(type_url)
        if state is None or not state.deferred or state.in_flight is not None:
            continue
        if state.pending():
            continue  # its upserts are held back: the removals wait with them
        released = state.deferred.release(states)
        if not released:
            continue
        state.dirty.update(released)
        response = take(state, None)
        if response is not None:
            responses.append(response)
    return tuple(responses)


class TypeState(Flushable, Protocol):
    """What the shared stream logic reads of a type's state: its subscription, besides what
    make before break reads."""

    wildcard: bool
    names: set[str]


T = TypeVar("T", bound=TypeState)


class ProtocolStream(Generic[T, R]):
    """What the SotW and Delta state machines of one stream share: the per-type states (made
    at a type's first request), the stream's nonces, the subscriptions, cache changes marking
    names dirty, and one make-before-break flush (`flush_in_order`). A subclass says how a
    type's pending changes become a response (`_respond`) and whether a type's removals wait
    for the routing responses (`_holds_removals`)."""

    def __init__(self, cache: CacheView) -> None:
        self._cache = cache
        self._types: dict[TypeUrl, T] = {}
        self._nonces = Nonces()

    def subscribed(self, type_url: TypeUrl) -> tuple[bool, frozenset[str]]:
        """(wildcard, names) the client subscribes to for `type_url`."""
        state = self._types.get(type_url)
        if state is None:
            return False, frozenset()
        return state.wildcard, frozenset(state.names)

    def on_change(self, names: Mapping[TypeUrl, Collection[str]]) -> Step[R]:
        """The cache changed these names (upserted or removed)."""
        for type_url, changed in names.items():
            state = self._types.get(type_url)
            if state is not None:
                state.dirty.update(changed)
        return Step(responses=self._flush())

    def _flush(self) -> tuple[R, ...]:
        return flush_in_order(self._types, take=self._take, holds_removals=self._holds_removals)

    def _take(self, state: T, defer: Barrier | None) -> R | None:
        state.flushed += 1
        response = self._respond(state, defer)
        if response is None:
            state.answered = state.flushed  # nothing to wait for
        return response

    def _respond(self, state: T, defer: Barrier | None) -> R | None:
        raise NotImplementedError

    def _holds_removals(self, type_url: TypeUrl, state: T) -> bool:
        raise NotImplementedError


class _EndpointState(Protocol):
    held: HeldSet
    dirty: set[str]

    def relevant(self, name: str) -> bool: ...


def rewarm_endpoints(endpoints: _EndpointState | None, clusters: Iterable[Entry]) -> None:
    """Envoy keeps an added or changed cluster warming until it receives the cluster's
    ClusterLoadAssignment, even one it holds already, and does not ask for it in a way the
    server can tell apart (SotW: the same names again; Delta: nothing, when another cluster
    already subscribed to that name); otherwise it waits 15 s (initial_fetch_timeout). So
    after a cluster is added or changes, its endpoints are sent again in the same flush,
    right after the clusters. The assignment is the one the cluster's EDS service name
    (`Entry.endpoints`) names, which several clusters may share (the translator's variants
    of one service port): not necessarily the cluster's own name."""
    if endpoints is None:
        return
    for cluster in clusters:
        name = cluster.endpoints
        if name is not None and endpoints.relevant(name):
            endpoints.held.discard(name)
            endpoints.dirty.add(name)


class HeldSet:
    """The resources (name -> content version) a client holds for one type, as far as the
    server knows, with an order-independent digest updated in O(1) per change: the XOR of a
    hash of every (name, version). Equal sets give equal digests on every replica."""

    __slots__ = ("_digest", "_versions")

    def __init__(self) -> None:
        self._versions: dict[str, str] = {}
        self._digest = 0

    def get(self, name: str) -> str | None:
        return self._versions.get(name)

    def set(self, name: str, version: str, token: int | None = None) -> None:
        """Hold `name` at `version`; `token` is `item_token(name, version)` when known
        (cache entries carry it), else computed here."""
        old = self._versions.get(name)
        if old == version:
            return
        if old is not None:
            self._digest ^= item_token(name, old)
        self._versions[name] = version
        self._digest ^= item_token(name, version) if token is None else token

    def set_entry(self, entry: Entry) -> None:
        self.set(entry.name, entry.version, entry.token)

    def discard(self, name: str) -> None:
        old = self._versions.pop(name, None)
        if old is not None:
            self._digest ^= item_token(name, old)

    def clear(self) -> None:
        self._versions.clear()
        self._digest = 0

    def names(self) -> list[str]:
        return list(self._versions)

    @property
    def digest(self) -> str:
        return format(self._digest, "016x")

    def __contains__(self, name: object) -> bool:
        return name in self._versions

    def __len__(self) -> int:
        return len(self._versions)

    def __iter__(self) -> Iterator[str]:
        return iter(self._versions)


def digest_of_entries(entries: Iterable[Entry]) -> str:
    """The digest a `HeldSet` holding exactly these cache entries would have."""
    value = 0
    for entry in entries:
        value ^= entry.token
    return format(value, "016x")


def digest_of(items: dict[str, str]) -> str:
    """The digest a `HeldSet` holding exactly `items` (name -> version) would have."""
    value = 0
    for name, version in items.items():
        value ^= item_token(name, version)
    return format(value, "016x")
