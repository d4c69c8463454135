"""Encode/decode cost of the event envelope (the per-event CPU floor of watcher and translator).

uv run python -m bench.envelope_codec --runs 15
"""

from __future__ import annotations

import sys

from bench.harness import Measurement, cli, measure
from ripple_common.envelope import Envelope, EventType

BATCH = 2_000


def _ingress(i: int) -> dict[str, object]:
    host = f"app{i}.tenant{i % 50}.example.test"
    path = {
        "path": "/",
        "pathType": "Prefix",
        "backend": {"service": {"name": "web", "port": {"number": 80}}},
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": f"app{i}", "namespace": f"tenant{i % 50}", "uid": f"uid-{i}"},
        "spec": {"rules": [{"host": host, "http": {"paths": [path]}}]},
    }


def _envelopes() -> list[Envelope]:
    return [
        Envelope(
            type=EventType.MODIFIED,
            kind="Ingress",
            tenant=f"tenant{i % 50}",
            namespace=f"tenant{i % 50}",
            name=f"app{i}",
            uid=f"uid-{i}",
            resource_version=str(1000 + i),
            observed_at_ns=1_700_000_000_000_000_000 + i,
            object=_ingress(i),
        )
        for i in range(BATCH)
    ]


def bench_encode(runs: int) -> Measurement:
    envs = _envelopes()
    return measure("envelope.encode x2000", lambda: len([e.to_bytes() for e in envs]), runs=runs)


def bench_decode(runs: int) -> Measurement:
    raws = [e.to_bytes() for e in _envelopes()]
    return measure(
        "envelope.decode x2000", lambda: len([Envelope.from_bytes(r) for r in raws]), runs=runs
    )


if __name__ == "__main__":
    sys.exit(cli(__doc__ or "", {"encode": bench_encode, "decode": bench_decode}))
