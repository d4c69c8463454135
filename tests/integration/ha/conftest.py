"""The HA profile for the fault tests: `stack/stack --ha up` on its own free ports and run
directory (/tmp/ripple-ha-<pid>), stopped and deleted after the session; or, when
RIPPLE_HA_RUN names the run directory of a running HA profile, that one (left running)."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts.stack_env import REPO_DIR, load_stack_env

STACK = REPO_DIR / "stack" / "stack"


@dataclass(frozen=True, slots=True)
class HaStack:
    """A running HA profile: its run dir, client settings and the env `stack/stack` needs to
    address it (ports, RIPPLE_RUN) for a restart of a node the test killed."""

    run: Path
    env: dict[str, str]
    stack_env: dict[str, str]

    @property
    def bootstrap(self) -> str:
        return self.env["RIPPLE_KAFKA_BOOTSTRAP"]

    @property
    def redis_url(self) -> str:
        return self.env["RIPPLE_REDIS_URL"]

    def pid(self, name: str) -> int:
        """The recorded pid of one node: kafka_ha-<i> or redis_cluster-<i>."""
        return int((self.run / name / "pid").read_text())

    def up(self) -> None:
        """`stack/stack --ha up`: starts what is not running (a node a test killed)."""
        _stack(self.stack_env, "up")


def _stack(env: dict[str, str], *args: str) -> None:
    proc = subprocess.run(
        [str(STACK), "--ha", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode:
        pytest.fail(f"stack/stack --ha {' '.join(args)} failed:\n{proc.stderr[-4000:]}")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_range(low: int, high: int, ports: list[int]) -> int:
    """A base port in [low, high) such that base + each of `ports` is free."""
    for _ in range(200):
        base = random.randrange(low, high)
        if all(_free(base + p) for p in ports):
            return base
    pytest.fail(f"no free ports between {low} and {high}")


@pytest.fixture(scope="session")
def ha_stack() -> Iterator[HaStack]:
    given = os.environ.get("RIPPLE_HA_RUN")
    if given:
        run = Path(given)
        env = load_stack_env(run)
        if not env:
            pytest.fail(f"RIPPLE_HA_RUN={given} holds no env file: run `stack/stack --ha up`")
        # The ports are the ones that profile was started with (from its env file).
        nodes = env["RIPPLE_REDIS_CLUSTER_NODES"].split(",")
        brokers = env["RIPPLE_KAFKA_BOOTSTRAP"].split(",")
        stack_env = {
            "RIPPLE_RUN": str(run),
            "RIPPLE_REDIS_CLUSTER_PORT": nodes[0].rsplit(":", 1)[1],
            "RIPPLE_KAFKA_HA_PORT": brokers[0].rsplit(":", 1)[1],
            "RIPPLE_KAFKA_HA_CONTROLLER_PORT": env["RIPPLE_KAFKA_HA_CONTROLLER_PORT"],
        }
        yield HaStack(run=run, env=env, stack_env=stack_env)
        return
    run = Path(f"/tmp/ripple-ha-{os.getpid()}")
    # Redis: 6 node ports and their cluster bus ports (+10000), all below 32768.
    redis_base = _free_range(7000, 12000, [*range(6), *range(10000, 10006)])
    kafka_base = _free_range(20000, 22000, [*range(3), *range(100, 103)])
    stack_env = {
        "RIPPLE_RUN": str(run),
        "RIPPLE_REDIS_CLUSTER_PORT": str(redis_base),
        "RIPPLE_KAFKA_HA_PORT": str(kafka_base),
        "RIPPLE_KAFKA_HA_CONTROLLER_PORT": str(kafka_base + 100),
    }
    try:
        _stack(stack_env, "up")
        yield HaStack(run=run, env=load_stack_env(run), stack_env=stack_env)
    finally:
        subprocess.run(
            [str(STACK), "--ha", "down"],
            env={**os.environ, **stack_env},
            capture_output=True,
            timeout=300,
            check=False,
        )
        shutil.rmtree(run, ignore_errors=True)
