"""`ripple replay` against the real pipeline: kube-apiserver -> watcher -> Kafka -> translator ->
Redis (watcher and translator in this process, on a fresh topic and Redis prefix). A history of
changes to one tenant (a namespace) is written through it; the replay (a `ripple` process)
rebuilds exactly what the translator stored, reports a corrupted stored entry as a divergence,
and exports a history that replays from the file alone, secrets still sealed."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from pydantic import SecretStr

from ripple_common.lifecycle import Lifecycle
from ripple_common.resources import TypeUrl
from ripple_common.store_contract import KeyLayout
from ripple_translator.app import start_translator
from ripple_translator.partition_state import encode_key
from ripple_translator.settings import TranslatorSettings
from ripple_translator.store import RedisTenantStore
from tests import waiting
from tests.conftest import StackEnv
from tests.integration.translator_service.support import eventually_committed
from tests.integration.watcher.support import (
    KEY_PEM,
    Kube,
    delete_topic,
    endpoint,
    ingress,
    make_topic,
    running_watcher,
    unique,
    watcher_settings,
)

PARTITIONS = 2  # eventually_committed reads this many partitions


@dataclass(frozen=True, slots=True)
class History:
    topic: str
    tenant: str
    sealing_key: str
    env: dict[str, str]


@pytest.fixture
async def history(
    stack: StackEnv, redis_client: aioredis.Redis, prefix: str
) -> AsyncIterator[History]:
    """A tenant's history written through the pipeline, the translator settled on it."""
    bootstrap = stack["RIPPLE_KAFKA_BOOTSTRAP"]
    topic = await make_topic(bootstrap, partitions=PARTITIONS)
    key = base64.b64encode(os.urandom(32)).decode()
    group = f"it-replay-{uuid.uuid4().hex[:8]}"
    settings = TranslatorSettings(
        kafka_bootstrap=bootstrap,
        redis_url=stack["RIPPLE_REDIS_URL"],
        topic=topic,
        group_id=group,
        redis_prefix=prefix,
        poll_ms=50,
        watch_without_class=True,
        sealing_key=SecretStr(key),
    )
    store = RedisTenantStore(redis_client, layout=KeyLayout(prefix=prefix))
    lc = Lifecycle()
    try:
        async with Kube.connect(stack["KUBECONFIG"]) as kube:
            ns = await kube.namespace(unique("rp"))
            await kube.service(ns, "web")
            await kube.endpoint_slice(ns, "web-1", service="web")
            async with running_watcher(watcher_settings(stack, topic, sealing_key=key)):
                await start_translator(lc, settings)
                await kube.tls_secret(ns, "web-tls")
                await kube.net.create_namespaced_ingress(ns, tls_ingress("web", "a.replay.test"))
                await kube.ingress(ns, "other", host="b.replay.test")
                await kube.set_endpoint(ns, "web-1", ready=False, node="node-2")
                await kube.set_ingress_host(ns, "web", host="c.replay.test")
                await kube.delete_ingress(ns, "other")
                await kube.set_endpoint(ns, "web-1", ready=True, node="node-3")
                # The fence, written last: the slice's last change, told apart from its earlier
                # states (which the watcher publishes without the node) by a zone.
                await kube.discovery.patch_namespaced_endpoint_slice(
                    "web-1",
                    ns,
                    {"endpoints": [{**endpoint(ready=True, node="node-3"), "zone": "z"}]},
                )
                # Each kind is its own watch, ordered in itself only: every one of them is
                # through once the tenant's stored inputs hold its last change (the fence;
                # the Ingresses' last state; the others' only event), so every event of the
                # history is in Kafka before the committed offsets are read.
                expected = {
                    f"{kind}/{ns}/{name}"
                    for kind, name in [
                        ("Service", "web"),
                        ("EndpointSlice", "web-1"),
                        ("Secret", "web-tls"),
                        ("Ingress", "web"),
                    ]
                }

                async def stored() -> tuple[set[str], set[str], object]:
                    names = {
                        name for _, name in (await store.load_checkpoint(ns)).resource_versions
                    }
                    inputs = (await store.load_inputs(ns)).objects
                    fence = inputs.get(("EndpointSlice", ns, "web-1"), {}).get("endpoints")
                    return names, {encode_key(k) for k in inputs}, fence

                def final(state: tuple[set[str], set[str], object]) -> bool:
                    names, inputs, fence = state
                    served = f"{ns}/scope/c.replay.test" in names and not any(
                        "b.replay.test" in n or "a.replay.test" in n for n in names
                    )
                    fenced = isinstance(fence, list) and [e.get("zone") for e in fence] == ["z"]
                    return (
                        served
                        and fenced
                        and expected <= inputs
                        and not any("Ingress/" in k and k.endswith("/other") for k in inputs)
                    )

                await waiting.eventually(
                    stored, until=final, within_s=60, what="the history's last changes stored"
                )
                await eventually_committed(bootstrap, topic, group)
            env = {
                **os.environ,
                "RIPPLE_TRANSLATOR_KAFKA_BOOTSTRAP": bootstrap,
                "RIPPLE_TRANSLATOR_TOPIC": topic,
                "RIPPLE_TRANSLATOR_REDIS_URL": stack["RIPPLE_REDIS_URL"],
                "RIPPLE_TRANSLATOR_REDIS_PREFIX": prefix,
                "RIPPLE_TRANSLATOR_WATCH_WITHOUT_CLASS": "true",
                "RIPPLE_TRANSLATOR_SEALING_KEY": key,
            }
            yield History(topic=topic, tenant=ns, sealing_key=key, env=env)
    finally:
        lc.request_stop()
        await lc.aclose()
        await delete_topic(bootstrap, topic)


def tls_ingress(name: str, host: str) -> Any:
    manifest = ingress(name, host)
    manifest["spec"]["tls"] = [{"hosts": [host], "secretName": "web-tls"}]
    return manifest


async def ripple(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ripple_cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_replay_rebuilds_redis_flags_corruption_and_round_trips_files(
    history: History, redis_client: aioredis.Redis, prefix: str, tmp_path: Path
) -> None:
    tenant, env = history.tenant, history.env

    # The whole history, step by step: the events and the diffs they made.
    code, out, err = await ripple(env, "replay", tenant)
    assert code == 0, err
    assert "ADDED Ingress" in out
    assert "DELETED Ingress" in out
    assert "MODIFIED EndpointSlice" in out
    assert "added srds" in out
    assert "removed srds" in out
    assert "(content redacted" in out  # the TLS Secret changed, its key never printed
    assert "PRIVATE KEY" not in out

    # Replayed up to the stored offset: byte-identical to Redis.
    code, out, err = await ripple(env, "replay", tenant, "--compare", "-q")
    assert code == 0, out + err
    assert f"# compare {tenant}: identical to Redis" in out

    # Which events shaped a host's routes.
    code, out, err = await ripple(env, "replay", tenant, "--explain", "c.replay.test")
    assert code == 0, err
    explained = [line for line in out.splitlines() if line.startswith("@")]
    assert any("MODIFIED Ingress" in line and "/web" in line for line in explained), out
    assert not any("Ingress" in line and "/other" in line for line in explained), out

    # Export, then replay the file alone (no Kafka): the same state; secrets stay sealed.
    exported = tmp_path / "history.ndjson"
    code, _, err = await ripple(env, "replay", tenant, "--export", str(exported))
    assert code == 0, err
    text = exported.read_text()
    assert "ripple:aesgcm:v1:" in text
    assert base64.b64encode(KEY_PEM).decode() not in text
    assert "PRIVATE KEY" not in text
    kinds = {json.loads(line)["envelope"]["kind"] for line in text.splitlines()}
    assert {"Ingress", "Service", "EndpointSlice", "Secret"} <= kinds
    offline = {**env, "RIPPLE_TRANSLATOR_KAFKA_BOOTSTRAP": "127.0.0.1:1"}  # no Kafka there
    code, out, err = await ripple(
        offline, "replay", tenant, "--from-file", str(exported), "--compare", "-q"
    )
    assert code == 0, out + err
    assert f"# compare {tenant}: identical to Redis" in out

    # A deliberately corrupted stored entry is a divergence (exit code 1).
    layout = KeyLayout(prefix=prefix)
    await redis_client.hset(
        layout.resources(tenant, TypeUrl.ROUTE), f"{tenant}/routes", b"\x0a\x03bad"
    )
    code, out, err = await ripple(env, "replay", tenant, "--compare", "-q")
    assert code == 1, out + err
    assert f"# compare {tenant}: DIVERGED" in out
    assert f"changed rds {tenant}/routes" in out


async def test_replay_errors(history: History, stack: StackEnv, tmp_path: Path) -> None:
    env = history.env
    code, _, err = await ripple(env, "replay", "no-such-tenant-xyz")
    assert code == 2
    assert "unknown tenant 'no-such-tenant-xyz'" in err

    code, _, err = await ripple(env, "replay", "t", "--from-file", str(tmp_path / "missing"))
    assert code == 2
    assert "cannot read" in err

    newer = tmp_path / "newer.ndjson"
    line = {
        "topic": "x",
        "partition": 0,
        "offset": 0,
        "timestampMs": 1,
        "key": "t",
        "envelope": {"schema": 99, "type": "ADDED", "tenant": "t"},
    }
    newer.write_text(json.dumps(line) + "\n")
    code, _, err = await ripple(env, "replay", "t", "--from-file", str(newer))
    assert code == 2
    assert "schema version 99, newer than" in err

    # Retention: delete the partition's oldest records; a --since before them is refused.
    bootstrap = stack["RIPPLE_KAFKA_BOOTSTRAP"]
    code, out, _ = await ripple(env, "replay", history.tenant, "-q", "--export", "-")
    first = json.loads(out.splitlines()[0])
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        tp = TopicPartition(history.topic, first["partition"])
        await admin.delete_records({tp: RecordsToDelete(before_offset=first["offset"] + 1)})
    finally:
        await admin.close()
    code, _, err = await ripple(env, "replay", history.tenant, "--since", "2000-01-01T00:00:00Z")
    assert code == 2
    assert "before the retention horizon" in err
