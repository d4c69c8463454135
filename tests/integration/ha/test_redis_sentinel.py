"""The Redis Sentinel path live: a master, a replica and three Sentinels (the redis-server the
stack uses, on free loopback ports below 32768), ripple's client factory given the Sentinel
URL, the translator's store writing tenant versions; the master SIGKILLed; after the
failover the same client keeps writing to the promoted replica: versions go on from the last
one, none lost, none written twice.

Redis replicates asynchronously: a write the master acknowledged and had not yet sent to its
replica is lost with it (docs/deploy.md "HA topology"). So the kill comes after the replica
has everything (WAIT on the master), and the test proves the client and the store's atomic
versions across the failover, not a replication guarantee Redis does not make."""

from __future__ import annotations

import random
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from ripple_common.redis_client import TRANSIENT_ERRORS, parse_redis_url, redis_client
from ripple_common.resources import Resource, TypeUrl
from ripple_common.store_contract import KeyLayout
from ripple_translator.store import KafkaOffset, RedisTenantStore
from ripple_translator.store.model import VersionConflictError
from tests.waiting import eventually

MASTER_NAME = "ripple"
TENANT = "sentinel-t"
BEFORE, AFTER = 20, 20  # versions written before the kill and after it


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int, low: int = 25000, high: int = 32000) -> list[int]:
    """`count` consecutive free ports in [low, high)."""
    for _ in range(200):
        base = random.randrange(low, high - count)
        if all(_free(base + i) for i in range(count)):
            return [base + i for i in range(count)]
    pytest.fail(f"no {count} free ports between {low} and {high}")


@dataclass(slots=True)
class SentinelSet:
    """A master, one replica and three Sentinels, each a redis-server process of ours."""

    dir: Path
    master: int
    replica: int
    sentinels: list[int]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        nodes = ",".join(f"127.0.0.1:{p}" for p in self.sentinels)
        return f"redis+sentinel://{nodes}/{MASTER_NAME}"

    def _start(self, name: str, args: list[str]) -> None:
        log = (self.dir / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            ["redis-server", *args], cwd=self.dir, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        log.close()

    def start(self) -> None:
        common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self._start("master", ["--port", str(self.master), *common])
        self._start(
            "replica",
            ["--port", str(self.replica), *common, "--replicaof", "127.0.0.1", str(self.master)],
        )
        for i, port in enumerate(self.sentinels):
            conf = self.dir / f"sentinel-{i}.conf"  # a Sentinel rewrites its own config file
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
                f"sentinel failover-timeout {MASTER_NAME} 5000\n"
            )
            self._start(f"sentinel-{i}", [str(conf), "--sentinel"])

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelSet]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (stack/stack up installs it)")
    ports = free_ports(5)
    group = SentinelSet(tmp_path, ports[0], ports[1], ports[2:])
    try:
        group.start()
        yield group
    finally:
        group.stop()


async def _node(port: int) -> aioredis.Redis:
    return aioredis.Redis(host="127.0.0.1", port=port, socket_timeout=2)


async def command(client: aioredis.Redis, *args: object) -> Any:
    """A raw command (redis-py's `execute_command` is untyped); replies parsed by redis-py."""
    return await client.execute_command(*args)  # type: ignore[no-untyped-call]


async def sentinel_sees(client: aioredis.Redis) -> tuple[int, int]:
    """The replicas and the other Sentinels a Sentinel knows of."""
    fields = await command(client, "SENTINEL", "MASTER", MASTER_NAME)
    return int(fields[b"num-slaves"]), int(fields[b"num-other-sentinels"])


async def wait_until_monitored(group: SentinelSet, *, timeout_s: float = 20.0) -> None:
    """Each Sentinel knows the replica and the two other Sentinels (else no quorum or no
    replica to promote), each within `timeout_s`."""
    for port in group.sentinels:
        client = await _node(port)
        try:
            await eventually(
                partial(sentinel_sees, client),
                until=lambda seen: seen[0] >= 1 and seen[1] >= 2,
                within_s=timeout_s,
                every_s=0.1,
                ignoring=TRANSIENT_ERRORS,
                what=f"Sentinel {port} seeing the replica and two other Sentinels "
                "(as (replicas, other Sentinels))",
            )
        finally:
            await client.aclose()


async def replicated(group: SentinelSet) -> None:
    """Everything the master holds is on the replica: WAIT after a write of our own (the
    replication stream is ordered, so the replica has every earlier write too)."""
    client = await _node(group.master)
    try:
        await client.set(f"sentinel-test-marker-{uuid.uuid4().hex}", b"1", ex=60)
        acked = await command(client, "WAIT", 1, 5000)
    finally:
        await client.aclose()
    assert int(acked) == 1, "the replica did not acknowledge the master's writes"


def at(offset: int) -> KafkaOffset:
    return KafkaOffset(topic="ripple.events", partition=0, offset=offset)


async def write_next(store: RedisTenantStore, version: int, *, timeout_s: float = 30.0) -> int:
    """Write version `version + 1` (one resource named after it), riding out the failover:
    a write whose answer was lost is read back from the checkpoint, never written twice."""
    target = version + 1

    async def write() -> int:
        try:
            return await store.write_version(
                TENANT, [Resource(TypeUrl.CLUSTER, f"c{target}", f"v{target}".encode())], [],
                offset=at(target), expected_version=version, trace_fields={},
            )  # fmt: skip
        except VersionConflictError:
            stored = (await store.load_checkpoint(TENANT)).version
            if stored == target:  # the lost answer's write was applied
                return target
            raise

    return await eventually(
        write,
        within_s=timeout_s,
        every_s=0.2,
        ignoring=TRANSIENT_ERRORS,
        what=f"version {target} written",
    )


async def test_versions_go_on_across_a_sentinel_failover(sentinels: SentinelSet) -> None:
    assert parse_redis_url(sentinels.url).kind == "sentinel"
    await wait_until_monitored(sentinels)
    client = redis_client(sentinels.url)
    layout = KeyLayout(prefix=f"sentinel-{uuid.uuid4().hex[:8]}")
    store = RedisTenantStore(client, layout=layout)
    try:
        version = 0
        for _ in range(BEFORE):
            version = await write_next(store, version)
        assert version == BEFORE
        await replicated(sentinels)

        killed = time.monotonic()
        sentinels.kill("master")
        version = await write_next(store, version)  # waits out the failover
        failover_s = time.monotonic() - killed
        for _ in range(AFTER - 1):
            version = await write_next(store, version)

        assert version == BEFORE + AFTER
        checkpoint = await store.load_checkpoint(TENANT)
        assert (checkpoint.version, checkpoint.offset) == (BEFORE + AFTER, at(BEFORE + AFTER))
        names = await client.hkeys(layout.resources(TENANT, TypeUrl.CLUSTER))
        assert sorted(names) == sorted(f"c{v}".encode() for v in range(1, BEFORE + AFTER + 1))
        # The client now talks to the promoted replica, as the Sentinels say.
        sentinel = await _node(sentinels.sentinels[0])
        try:
            _, port = await command(sentinel, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
        finally:
            await sentinel.aclose()
        assert int(port) == sentinels.replica
        assert failover_s < 30, f"the failover took {failover_s:.1f} s"
    finally:
        await client.aclose()
