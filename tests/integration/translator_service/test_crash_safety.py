"""Crash safety of `python -m ripple_translator` as real processes against the stack's Kafka
and Redis.

1. The process dies (the real translator wired with a crashing write hook,
   `crashing_translator.py`: `os._exit`, no drain, no commit, no close, like SIGKILL) right
   after a tenant version is durable in Redis and before its Kafka offset is committed. A
   restart resumes from the last commit and ends in exactly the state a translator that
   never crashed reaches: same resources (content versions), same tenant versions (the
   replayed events write nothing new), everything committed.
2. Two instances share the partitions; one is SIGKILLed; the other takes its partitions over
   (after the group's session timeout) and the tenants converge. Readiness and metrics come
   from each instance's health endpoint.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import Mapping

import redis.asyncio as aioredis

from ripple_common.lifecycle import Lifecycle
from ripple_translator.app import start_translator
from ripple_translator.settings import TranslatorSettings
from ripple_translator.store import Checkpoint, KeyLayout, RedisTenantStore
from tests.conftest import StackEnv
from tests.integration.loopback import free_port, http_get
from tests.integration.translator_service.conftest import PARTITIONS
from tests.integration.translator_service.crashing_translator import ABORT_EXIT_CODE
from tests.integration.translator_service.support import (
    A,
    B,
    class_envelope,
    committed,
    end_offsets,
    eventually,
    eventually_committed,
    names,
    produce,
)
from tests.unit.translator_service.support import deleted, event, ingress, service

Proc = asyncio.subprocess.Process


def process_env(
    stack: StackEnv, *, topic: str, group: str, prefix: str, **extra: str
) -> dict[str, str]:
    return {
        **os.environ,
        "RIPPLE_TRANSLATOR_KAFKA_BOOTSTRAP": stack["RIPPLE_KAFKA_BOOTSTRAP"],
        "RIPPLE_TRANSLATOR_REDIS_URL": stack["RIPPLE_REDIS_URL"],
        "RIPPLE_TRANSLATOR_TOPIC": topic,
        "RIPPLE_TRANSLATOR_GROUP_ID": group,
        "RIPPLE_TRANSLATOR_REDIS_PREFIX": prefix,
        "RIPPLE_TRANSLATOR_POLL_MS": "50",
        **{f"RIPPLE_TRANSLATOR_{k.upper()}": v for k, v in extra.items()},
    }


async def spawn(env: Mapping[str, str], *, module: str = "ripple_translator") -> Proc:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def stop(proc: Proc) -> str:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    return out.decode()


def content(cp: Checkpoint) -> dict[str, str]:
    return {f"{t.short} {n}": v for (t, n), v in cp.resource_versions.items()}


async def test_killed_between_the_write_and_the_commit_the_restart_ends_identical(
    stack: StackEnv, redis_client: aioredis.Redis, prefix: str, topic: str
) -> None:
    bootstrap = stack["RIPPLE_KAFKA_BOOTSTRAP"]
    group = f"it-tr-{uuid.uuid4().hex[:8]}"
    await produce(
        bootstrap,
        topic,
        [
            class_envelope(),
            event(A, service(A)),
            event(A, ingress(A, "web", "web.a.example.com")),
            event(A, ingress(A, "api", "api.a.example.com")),
            event(B, service(B)),
            event(B, ingress(B, "web", "web.b.example.com")),
            deleted(A, "Ingress", A, "api"),
        ],
    )
    store = RedisTenantStore(redis_client, layout=KeyLayout(prefix=prefix))

    crashing = await spawn(
        process_env(stack, topic=topic, group=group, prefix=prefix),
        module="tests.integration.translator_service.crashing_translator",
    )
    log = await stop_when_exited(crashing)
    assert crashing.returncode == ABORT_EXIT_CODE, log
    assert '"event": "test.abort_after_write"' in log
    crashed = next(
        json.loads(line)["tenant"] for line in log.splitlines() if "test.abort_after_write" in line
    )
    written = [await store.load_checkpoint(t) for t in (A, B)]
    durable = next(cp for cp in written if cp.tenant == crashed)
    assert durable.version == 1, "the version was written before the crash"
    assert durable.offset is not None
    commits = await committed(bootstrap, group)
    assert commits.get(durable.offset.partition, -1) < durable.offset.offset, (
        "the write's offset was not committed"
    )

    restarted = await spawn(process_env(stack, topic=topic, group=group, prefix=prefix))
    try:
        await eventually_committed(bootstrap, topic, group)
    finally:
        log = await stop(restarted)
    assert restarted.returncode == 0, log

    # The reference: a translator that never crashed, on the same topic, its own group/prefix.
    ref_prefix = f"{prefix}-ref"
    ref_group = f"{group}-ref"
    lc = Lifecycle()
    await start_translator(
        lc,
        TranslatorSettings(
            kafka_bootstrap=bootstrap,
            redis_url=stack["RIPPLE_REDIS_URL"],
            topic=topic,
            group_id=ref_group,
            redis_prefix=ref_prefix,
            poll_ms=50,
        ),
    )
    try:
        await eventually_committed(bootstrap, topic, ref_group)
    finally:
        await lc.aclose()
    reference = RedisTenantStore(redis_client, layout=KeyLayout(prefix=ref_prefix))
    try:
        for tenant in (A, B):
            got, want = await store.load_checkpoint(tenant), await reference.load_checkpoint(tenant)
            assert content(got) == content(want), tenant
            assert got.offset == want.offset
        assert f"{A}/scope/api.a.example.com" not in names(await store.load_checkpoint(A))
        # The replay of what the crashed write covered wrote no new version: if that write
        # covered all of its partition, the tenant is still at the version written then.
        ends = await end_offsets(bootstrap, topic)
        final = await store.load_checkpoint(crashed)
        if durable.offset.offset == ends[durable.offset.partition]:
            assert final.version == durable.version
        else:
            assert final.version == durable.version + 1
    finally:
        keys = [k async for k in redis_client.scan_iter(match=f"{ref_prefix}*")]
        if keys:
            await redis_client.delete(*keys)


async def stop_when_exited(proc: Proc) -> str:
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return out.decode()


def metric(port: int, name: str) -> float | None:
    try:
        code, body = http_get(port, "/metrics")
    except OSError:
        return None
    if code != 200:
        return None
    for line in body.splitlines():
        if line.startswith(f"ripple_translator_{name} "):
            return float(line.split()[1])
    return None


async def test_two_processes_share_partitions_one_is_killed_the_other_converges(
    stack: StackEnv, redis_client: aioredis.Redis, prefix: str, topic: str
) -> None:
    bootstrap = stack["RIPPLE_KAFKA_BOOTSTRAP"]
    group = f"it-tr-{uuid.uuid4().hex[:8]}"
    ports = [free_port(), free_port()]
    store = RedisTenantStore(redis_client, layout=KeyLayout(prefix=prefix))
    await produce(bootstrap, topic, [class_envelope(), event(A, service(A)), event(B, service(B))])
    procs = [
        await spawn(
            process_env(stack, topic=topic, group=group, prefix=prefix, health_port=str(port))
        )
        for port in ports
    ]
    try:

        async def split() -> bool:
            owned = [await asyncio.to_thread(metric, p, "partitions_owned") for p in ports]
            return owned == [1.0, 1.0]

        await eventually(split, timeout_s=60)
        for port in ports:
            code, _ = await asyncio.to_thread(http_get, port, "/readyz")
            assert code == 200
        await produce(
            bootstrap,
            topic,
            [
                event(A, ingress(A, "one", "one.a.example.com")),
                event(B, ingress(B, "one", "one.b.example.com")),
            ],
        )

        async def served(tenant: str, host: str) -> bool:
            return f"{tenant}/scope/{host}" in names(await store.load_checkpoint(tenant))

        await eventually(lambda: served(A, "one.a.example.com"))
        await eventually(lambda: served(B, "one.b.example.com"))

        procs[0].kill()  # SIGKILL: no revoke, no commit, no leave-group
        await procs[0].wait()
        await produce(
            bootstrap,
            topic,
            [
                event(A, ingress(A, "two", "two.a.example.com")),
                event(B, ingress(B, "two", "two.b.example.com")),
            ],
        )

        async def taken_over() -> bool:
            return await asyncio.to_thread(metric, ports[1], "partitions_owned") == PARTITIONS

        await eventually(taken_over, timeout_s=60)
        await eventually(lambda: served(A, "two.a.example.com"))
        await eventually(lambda: served(B, "two.b.example.com"))
        await eventually_committed(bootstrap, topic, group)
        versions = await asyncio.to_thread(metric, ports[1], "versions_total")
        assert versions is not None
        assert versions >= 1
    finally:
        logs = [await stop(p) for p in procs]
    assert procs[1].returncode == 0, logs[1]
    assert await committed(bootstrap, group) == await end_offsets(bootstrap, topic)
    # one version per change whoever wrote it: services + ingress "one" + ingress "two"
    for tenant in (A, B):
        assert (await store.load_checkpoint(tenant)).version in (2, 3)
