"""Cost of one `GET /debug/nodes` (`ripple_xds.status`) on an xds replica: the document for
20,000 tenants held and 200 Delta streams, each with one push of 10 tenants' changes not ACKed
yet (10 lagging tenants per node). The render runs on the replica's event loop, so its time is
time the ADS streams wait. Prints the median of the runs and the document's size.

    python -m bench.status_view [--runs 15] [--json FILE.jsonl]
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from bench.harness import Measurement, cli, measure
from ripple_common.resources import Resource, TypeUrl
from ripple_common.store_contract import ChangeEntry
from ripple_xds.identity import GatewayPolicy
from ripple_xds.propagation import Propagation
from ripple_xds.snapshot import Entry, SnapshotCache
from ripple_xds.status import ReplicaState, render_status

TENANTS = 20_000
STREAMS = 200
LAGGING = 10


@dataclass(frozen=True, slots=True)
class _Push:
    type_url: TypeUrl
    nonce: str
    resources: tuple[Entry, ...]


def _state() -> ReplicaState:
    tracker = Propagation(ttl_s=300)
    versions = {f"tenant-{i:05d}": i % 7 + 1 for i in range(TENANTS)}
    cache = SnapshotCache()
    for i in range(LAGGING):
        tenant = f"tenant-{i:05d}"
        change = cache.apply(upserts=[Resource(TypeUrl.ROUTE, f"{tenant}/r", b"%d" % i)])
        tracker.applied(ChangeEntry(tenant=tenant, version=9), change)
    entries = tuple(
        e for i in range(LAGGING) if (e := cache.get(TypeUrl.ROUTE, f"tenant-{i:05d}/r"))
    )
    for n in range(STREAMS):
        stream = tracker.stream(mode="delta")
        stream.identify(f"gw-{n}")
        stream.gateway = "edge"
        stream.pushed(_Push(TypeUrl.ROUTE, f"n{n}", entries))
    return ReplicaState(
        streams=list(tracker.streams),
        versions=versions,
        policy=GatewayPolicy(),
        sla_s=5.0,
        now_ns=tracker.now(),
    )


def bench_render(runs: int) -> Measurement:
    state = _state()
    size = len(render_status(state)[1])
    print(f"document: {size / 1024:.0f} KiB", flush=True)
    return measure(
        f"debug/nodes {TENANTS} tenants x {STREAMS} streams",
        lambda: len(render_status(state)[1]) and 1,
        runs=runs,
    )


if __name__ == "__main__":
    sys.exit(cli(__doc__ or "", {"render": bench_render}))
