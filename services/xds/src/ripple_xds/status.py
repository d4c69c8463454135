"""Which Envoy has which version: the per-node view one xds replica serves as JSON on its
health port (`GET /debug/nodes`), read by `ripple status`.

Built at request time from the propagation bookkeeping of the open streams (`propagation`:
what each stream was pushed and not yet ACKed, the newest version of each tenant it ACKed,
the version it NACKed with Envoy's error) and the tenant versions the replica holds from
Redis (the newest stored versions). Per stream:

- `scope`: the tenants its gateway may see, as configured (names, then `prefix*` patterns;
  None: all); `tenants`: how many of the held ones it sees; `current`: those neither lagging
  nor NACKed.
- `lagging`: tenants with a change pushed and not ACKed: the newest stored version, the last
  version the node ACKed here (None: none since it connected, it had the tenant from its
  initial state), since when (the oldest unACKed change's write to Redis, else its apply
  here) and for how long.
- `nacks`: tenants whose newest push the node rejected, with the type, Envoy's error text
  and how long the tenant has been behind (since the rejected version's write); cleared once
  a later version of the tenant is ACKed.
- `in_flight`/`oldest_in_flight_s`: responses not answered yet (a stalled Envoy shows here
  even for changes outside the tracking window).

A change applied before a stream opened reaches it in the initial state, which is not
tracked: a stream is taken as current for what it got at connect. Pure: no I/O."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from ripple_xds.identity import Gateway, GatewayPolicy
from ripple_xds.propagation import StreamPropagation

NS = 1_000_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaState:
    """What one replica's /debug/nodes reads, at request time."""

    streams: Collection[StreamPropagation]
    versions: Mapping[str, int]  # tenant -> newest version held (from Redis)
    policy: GatewayPolicy
    sla_s: float
    now_ns: int
    position: str = ""
    ready: bool = True


def _seconds(ns: int) -> float:
    return round(ns / NS, 6)


@dataclass(frozen=True, slots=True)
class Scope:
    """What a node of one gateway sees: its configured tenants (`patterns`, None: every
    tenant) and the held tenants among them (`visible`, None: every held one)."""

    patterns: list[str] | None = None
    visible: frozenset[str] | None = None

    @classmethod
    def of(cls, gateway: Gateway | None, held: Collection[str]) -> Scope:
        if gateway is None or gateway.tenants is None:
            return cls()
        return cls(patterns=gateway.patterns, visible=gateway.tenants_among(held))


def node_status(
    stream: StreamPropagation,
    *,
    versions: Mapping[str, int],
    scope: Scope,
    now_ns: int,
) -> dict[str, Any]:
    """One stream's entry (see the module doc)."""
    since: dict[str, int] = {}
    for change, _first_push_ns in stream.pending_changes():
        written = change.marks.written_ns or change.applied_ns
        since[change.tenant] = min(since.get(change.tenant, written), written)
    lagging = []
    for tenant in sorted(since):
        acked = stream.acked.get(tenant)
        lagging.append(
            {
                "tenant": tenant,
                "version": versions.get(tenant, 0),
                "acked_version": acked.version if acked is not None else None,
                "since": _seconds(since[tenant]),
                "lag_s": _seconds(max(now_ns - since[tenant], 0)),
            }
        )
    nacks = [
        {
            "tenant": tenant,
            "version": nack.version,
            "type": nack.type_url.short,
            "error": nack.error,
            "at": _seconds(nack.at_ns),
            "lag_s": _seconds(max(now_ns - nack.written_ns, 0)),
        }
        for tenant, nack in sorted(stream.nacked.items())
    ]
    behind = set(since) | set(stream.nacked)
    # Counted by set operations: one scrape costs O(tenants) per node at C speed.
    visible = versions.keys() if scope.visible is None else scope.visible
    seen = len(visible)
    seen_behind = len(behind & visible)
    in_flight = stream.in_flight()
    oldest = min((p.at_ns for p in in_flight), default=None)
    return {
        "node": stream.node,
        "gateway": stream.gateway,
        "mode": stream.mode,
        "scope": scope.patterns,
        "connected_s": _seconds(max(now_ns - stream.opened_ns, 0)),
        "tenants": seen,
        "current": seen - seen_behind,
        "in_flight": len(in_flight),
        "oldest_in_flight_s": None if oldest is None else _seconds(max(now_ns - oldest, 0)),
        "lagging": lagging,
        "nacks": nacks,
        "acked": {
            tenant: {"version": ack.version, "at": _seconds(ack.at_ns)}
            for tenant, ack in sorted(stream.acked.items())
        },
    }


def replica_status(state: ReplicaState) -> dict[str, Any]:
    """The whole /debug/nodes document of one replica."""
    streams = sorted(
        (s for s in state.streams if s.node), key=lambda s: (s.gateway, s.node, s.opened_ns)
    )
    # Once per gateway, not per stream: a prefix pattern is matched against every held tenant.
    scopes = {
        g: Scope.of(state.policy.gateways.get(g), state.versions.keys())
        for g in {s.gateway for s in streams}
    }
    return {
        "now": _seconds(state.now_ns),
        "sla_s": state.sla_s,
        "ready": state.ready,
        "position": state.position,
        "tenants": len(state.versions),
        "versions": dict(sorted(state.versions.items())),
        "nodes": [
            node_status(
                stream,
                versions=state.versions,
                scope=scopes[stream.gateway],
                now_ns=state.now_ns,
            )
            for stream in streams
        ],
    }


def render_status(state: ReplicaState) -> tuple[int, str]:
    """(status, JSON body) of GET /debug/nodes."""
    return 200, json.dumps(replica_status(state), separators=(",", ":")) + "\n"
