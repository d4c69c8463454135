"""`ripple replay` throughput: events/s replayed for one tenant with 10,000 events.

The tenant: 20 Services with their EndpointSlices and 40 Ingresses (one host each), then
endpoint flaps, Ingress edits and deletions/re-creations up to 10,000 events, plus a few
IngressClass (cluster-scoped) events. Measured through the command's own flow
(`ripple_cli.replay.command.execute`), output discarded:

- file-quiet: from an export file, final state only (`-q`: one translation at the end);
- file-steps: from an export file, every step translated and its diff rendered (the default);
- kafka-quiet: from a fresh topic of the local stack (needs `./dev up`; setup not timed).

.venv/bin/python -m bench.replay --runs 5
"""

from __future__ import annotations

import asyncio
import io
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.harness import Measurement, cli, measure
from ripple_cli.replay import export
from ripple_cli.replay.command import Environment, Request, execute
from ripple_cli.replay.model import LogRecord, Window
from ripple_common.envelope import CLUSTER_TENANT, Envelope, EventType
from ripple_translator.hosts import HostPolicy
from ripple_translator.translate import DEFAULT_CONTROLLER, ClassPolicy, TranslateOptions
from scripts.stack_env import load_stack_env

TENANT = "bench-tenant"
EVENTS = 10_000
SERVICES = 20
INGRESSES = 40
T0_MS = 1_764_000_000_000


def _envelope(
    kind: str, name: str, obj: dict[str, Any] | None, i: int, type_: EventType
) -> Envelope:
    cluster = kind == "IngressClass"
    return Envelope(
        type=type_,
        kind=kind,
        tenant=CLUSTER_TENANT if cluster else TENANT,
        namespace=None if cluster else TENANT,
        name=name,
        uid=f"uid-{kind}-{name}",
        resource_version=str(1000 + i),
        observed_at_ns=(T0_MS + i) * 1_000_000,
        object=None if type_ is EventType.DELETED else obj,
    )


def _service(n: int) -> dict[str, Any]:
    meta = {"name": f"svc{n}", "namespace": TENANT}
    return {"kind": "Service", "metadata": meta, "spec": {"ports": [{"name": "http", "port": 80}]}}


def _slice(n: int, generation: int) -> dict[str, Any]:
    addresses = [f"10.{n}.{generation % 250}.{k}" for k in range(1, 4)]
    return {
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"svc{n}-abc",
            "namespace": TENANT,
            "labels": {"kubernetes.io/service-name": f"svc{n}"},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in addresses],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }


def _ingress(n: int, generation: int) -> dict[str, Any]:
    backend = {"service": {"name": f"svc{n % SERVICES}", "port": {"number": 80}}}
    paths = [
        {"path": f"/v{generation % 5}", "pathType": "Prefix", "backend": backend},
        {"path": "/", "pathType": "Prefix", "backend": backend},
    ]
    return {
        "kind": "Ingress",
        "metadata": {
            "name": f"ing{n}",
            "namespace": TENANT,
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {
            "ingressClassName": "ripple",
            "rules": [{"host": f"h{n}.bench.test", "http": {"paths": paths}}],
        },
    }


def _class(controller: str) -> dict[str, Any]:
    return {
        "kind": "IngressClass",
        "metadata": {"name": "ripple"},
        "spec": {"controller": controller},
    }


def history() -> list[Envelope]:
    out: list[Envelope] = [
        _envelope("IngressClass", "ripple", _class(DEFAULT_CONTROLLER), 0, EventType.ADDED)
    ]
    for n in range(SERVICES):
        out.append(_envelope("Service", f"svc{n}", _service(n), len(out), EventType.ADDED))
        out.append(
            _envelope("EndpointSlice", f"svc{n}-abc", _slice(n, 0), len(out), EventType.ADDED)
        )
    for n in range(INGRESSES):
        out.append(_envelope("Ingress", f"ing{n}", _ingress(n, 0), len(out), EventType.ADDED))
    i = 0
    while len(out) < EVENTS:
        i += 1
        if i % 500 == 0:  # a cluster-scoped event now and then
            out.append(
                _envelope(
                    "IngressClass",
                    "ripple",
                    _class(DEFAULT_CONTROLLER),
                    len(out),
                    EventType.MODIFIED,
                )
            )
        elif i % 10 == 0:  # an Ingress deleted, re-created next time round
            n = i % INGRESSES
            gone = any(
                e.name == f"ing{n}" and e.type is EventType.DELETED for e in out[-INGRESSES:]
            )
            type_ = EventType.ADDED if gone else EventType.DELETED
            out.append(_envelope("Ingress", f"ing{n}", _ingress(n, i), len(out), type_))
        elif i % 3 == 0:
            n = i % INGRESSES
            out.append(
                _envelope("Ingress", f"ing{n}", _ingress(n, i), len(out), EventType.MODIFIED)
            )
        else:
            n = i % SERVICES
            out.append(
                _envelope(
                    "EndpointSlice", f"svc{n}-abc", _slice(n, i), len(out), EventType.MODIFIED
                )
            )
    return out[:EVENTS]


def records(topic: str = "ripple.events") -> Iterator[LogRecord]:
    for offset, env in enumerate(history()):
        yield LogRecord(
            topic=topic,
            partition=0,
            offset=offset,
            timestamp_ms=T0_MS + offset,
            key=env.key,
            value=env.to_bytes(),
        )


def _environment(bootstrap: str = "127.0.0.1:1", topic: str = "ripple.events") -> Environment:
    return Environment(
        bootstrap=bootstrap,
        topic=topic,
        redis_url="redis://127.0.0.1:1",
        prefix="ripple",
        options=TranslateOptions(classes=ClassPolicy()),
        sealer=None,
        host_policy=HostPolicy(),
    )


def _replay(request: Request, env: Environment) -> Callable[[], int]:
    def run() -> int:
        code = execute(request, env, out=io.StringIO(), err=io.StringIO())
        assert code == 0
        return EVENTS

    return run


def _file(runs: int, *, quiet: bool, name: str) -> Measurement:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "history.ndjson"
        with path.open("w") as out:
            export.write(records(), out)
        request = Request(tenants=(TENANT,), window=Window(), source_file=path, quiet=quiet)
        return measure(name, _replay(request, _environment()), runs=runs, warmup=1)


def bench_file_quiet(runs: int) -> Measurement:
    return _file(runs, quiet=True, name=f"replay.file.quiet x{EVENTS}")


def bench_file_steps(runs: int) -> Measurement:
    return _file(runs, quiet=False, name=f"replay.file.steps x{EVENTS}")


async def _produce(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name=topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    try:
        sends = [
            await producer.send(topic, value=r.value, key=r.key, partition=0) for r in records()
        ]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def _delete(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()


def bench_kafka_quiet(runs: int) -> Measurement:
    bootstrap = load_stack_env()["RIPPLE_KAFKA_BOOTSTRAP"]
    topic = f"bench-replay-{uuid.uuid4().hex[:8]}"
    asyncio.run(_produce(bootstrap, topic))
    try:
        request = Request(tenants=(TENANT,), window=Window(), quiet=True)
        env = _environment(bootstrap, topic)
        return measure(f"replay.kafka.quiet x{EVENTS}", _replay(request, env), runs=runs, warmup=1)
    finally:
        asyncio.run(_delete(bootstrap, topic))


if __name__ == "__main__":
    sys.exit(
        cli(
            __doc__ or "",
            {
                "file-quiet": bench_file_quiet,
                "file-steps": bench_file_steps,
                "kafka-quiet": bench_kafka_quiet,
            },
        )
    )
