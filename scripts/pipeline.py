"""Run ripple's three services against the local stack, as background processes.

    python -m scripts.pipeline up [--services xds,translator,watcher] [--timeout 60]
    python -m scripts.pipeline status
    python -m scripts.pipeline down

The services' settings come from the stack's client settings (`$RIPPLE_RUN/env`: Kafka
bootstrap, Redis URL, kubeconfig, OTLP endpoint) plus a sealing key generated once and kept in
`$RIPPLE_RUN/pipeline/sealing.key` (the watcher seals TLS private keys with it, the translator
opens them). Each service's pid file and log live in `$RIPPLE_RUN/pipeline/<service>/`.

`up` is idempotent: a service whose recorded process is alive is left alone. It starts xds,
translator, watcher in that order (so nothing waits on a consumer that is not there) and waits
until each is ready: xds and watcher by their `/readyz`, the translator once it owns every
partition of the events topic (its `partition.assigned` log lines: it consumes nothing
before each assigned partition's tenants are loaded). A service that exits or is not ready in
time fails `up` with the tail of its log. `down` sends SIGTERM to each recorded process group
(reverse order), waits for a clean exit, then SIGKILLs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from ripple_common.envelope import EVENTS_TOPIC
from scripts.stack_env import (
    REPO_DIR,
    cmdline,
    load_stack_env,
    pid_alive,
    run_dir,
    stack_env_file,
)

SERVICES: Final = ("xds", "translator", "watcher")  # start order; stop is the reverse
GATEWAY_HTTP_PORT: Final = 10080
WATCHER_HEALTH_PORT: Final = 18081
XDS_HEALTH_PORT: Final = 18082
REDIS_PREFIX: Final = "ripple"
EVENTS_PARTITIONS: Final = 12  # the stack broker's num.partitions


class PipelineError(RuntimeError):
    """A service could not be started, or the stack's settings are missing."""


def _rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


async def ensure_topic(bootstrap: str, topic: str, partitions: int) -> tuple[int, bool]:
    """Create the events topic if missing: the translator's group gets partitions only once
    the topic exists, and the watcher may not have published yet. Returns the topic's
    partition count and whether it was made here."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    made = False
    try:
        if topic not in set(await admin.list_topics()):
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [NewTopic(name=topic, num_partitions=partitions, replication_factor=1)]
                )
                made = True
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return len(described[0]["partitions"]), made


def owned_partitions(log_lines: Iterable[str]) -> set[int]:
    """Partitions a translator owns after these log lines (assigned minus revoked)."""
    owned: set[int] = set()
    for line in log_lines:
        if '"partition.' not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == "partition.assigned":
            owned.add(int(record["partition"]))
        elif record.get("event") == "partition.revoked":
            owned.discard(int(record["partition"]))
    return owned


def http_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    module: str
    env: Mapping[str, str]
    readyz: str | None  # an HTTP readiness URL, or None: readiness by log line


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    name: str
    pid: int | None
    ready: bool
    rss_mib: float | None
    log: Path


class Pipeline:
    """The three services of one run directory; every bit of state is on disk."""

    def __init__(self, *, run: Path | None = None, stack_env: Mapping[str, str] | None = None):
        self.run = run or run_dir()
        self.dir = self.run / "pipeline"
        self._stack_env = dict(stack_env) if stack_env is not None else load_stack_env()

    # -- settings ----------------------------------------------------------------------------

    def _stack(self, key: str) -> str:
        try:
            return self._stack_env[key]
        except KeyError:
            raise PipelineError(
                f"{key} missing from {stack_env_file()}: start the stack with `stack/stack up`"
            ) from None

    def sealing_key(self) -> str:
        """The base64 AES-256 key shared by watcher and translator (made once, mode 0600)."""
        path = self.dir / "sealing.key"
        if not path.exists():
            self.dir.mkdir(parents=True, exist_ok=True)
            key = base64.b64encode(secrets.token_bytes(32)).decode()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(key + "\n")
        return path.read_text().strip()

    @property
    def gateway_port(self) -> int:
        return GATEWAY_HTTP_PORT

    @property
    def xds_listen(self) -> str:
        return f"127.0.0.1:{self._stack_env.get('RIPPLE_XDS_PORT', '18000')}"

    def specs(self) -> dict[str, ServiceSpec]:
        otlp = self._stack_env.get("RIPPLE_OTLP_ENDPOINT")
        key = self.sealing_key()

        def common(prefix: str) -> dict[str, str]:
            env = {f"{prefix}LOG_LEVEL": "INFO", f"{prefix}LOG_JSON": "true"}
            if otlp:
                env[f"{prefix}OTLP_ENDPOINT"] = otlp
            return env

        return {
            "xds": ServiceSpec(
                name="xds",
                module="ripple_xds",
                env={
                    **common("RIPPLE_XDS_"),
                    "RIPPLE_XDS_REDIS_URL": self._stack("RIPPLE_REDIS_URL"),
                    "RIPPLE_XDS_REDIS_PREFIX": REDIS_PREFIX,
                    "RIPPLE_XDS_LISTEN": self.xds_listen,
                    "RIPPLE_XDS_GATEWAY_HTTP_ADDRESS": "127.0.0.1",
                    "RIPPLE_XDS_GATEWAY_HTTP_PORT": str(GATEWAY_HTTP_PORT),
                    "RIPPLE_XDS_HEALTH_PORT": str(XDS_HEALTH_PORT),
                },
                readyz=f"http://127.0.0.1:{XDS_HEALTH_PORT}/readyz",
            ),
            "translator": ServiceSpec(
                name="translator",
                module="ripple_translator",
                env={
                    **common("RIPPLE_TRANSLATOR_"),
                    "RIPPLE_TRANSLATOR_KAFKA_BOOTSTRAP": self._stack("RIPPLE_KAFKA_BOOTSTRAP"),
                    "RIPPLE_TRANSLATOR_REDIS_URL": self._stack("RIPPLE_REDIS_URL"),
                    "RIPPLE_TRANSLATOR_REDIS_PREFIX": REDIS_PREFIX,
                    "RIPPLE_TRANSLATOR_SEALING_KEY": key,
                },
                readyz=None,
            ),
            "watcher": ServiceSpec(
                name="watcher",
                module="ripple_watcher",
                env={
                    **common("RIPPLE_WATCHER_"),
                    "RIPPLE_WATCHER_KUBECONFIG": self._stack("KUBECONFIG"),
                    "RIPPLE_WATCHER_KAFKA_BOOTSTRAP": self._stack("RIPPLE_KAFKA_BOOTSTRAP"),
                    "RIPPLE_WATCHER_SEALING_KEY": key,
                    "RIPPLE_WATCHER_HEALTH_HOST": "127.0.0.1",
                    "RIPPLE_WATCHER_HEALTH_PORT": str(WATCHER_HEALTH_PORT),
                },
                readyz=f"http://127.0.0.1:{WATCHER_HEALTH_PORT}/readyz",
            ),
        }

    # -- per-service state -------------------------------------------------------------------

    def service_dir(self, name: str) -> Path:
        return self.dir / name

    def log_path(self, name: str) -> Path:
        return self.service_dir(name) / "log"

    def pid(self, name: str) -> int | None:
        """The recorded pid, if that process is alive and is the service."""
        try:
            pid = int((self.service_dir(name) / "pid").read_text().strip())
        except (OSError, ValueError):
            return None
        if pid_alive(pid) and f"ripple_{name}" in cmdline(pid):
            return pid
        return None

    def is_running(self, name: str) -> bool:
        return self.pid(name) is not None

    def _log_start_offset(self, name: str) -> int:
        try:
            return int((self.service_dir(name) / "log.start").read_text())
        except (OSError, ValueError):
            return 0

    def ready(self, name: str) -> bool:
        if not self.is_running(name):
            return False
        spec = self.specs()[name]
        if spec.readyz is not None:
            return http_ready(spec.readyz)
        # One translator owns every partition once it has loaded their tenants; it consumes
        # nothing before that, so the first assignment alone is not ready.
        try:
            partitions = int((self.service_dir(name) / "partitions").read_text())
        except (OSError, ValueError):
            partitions = EVENTS_PARTITIONS
        return len(owned_partitions(self._log_since_start(name))) >= partitions

    def _log_since_start(self, name: str) -> list[str]:
        try:
            with self.log_path(name).open("rb") as f:
                f.seek(self._log_start_offset(name))
                return f.read().decode(errors="replace").splitlines()
        except OSError:
            return []

    def log_tail(self, name: str, lines: int = 30) -> str:
        try:
            text = self.log_path(name).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def status(self) -> list[ServiceStatus]:
        out = []
        for name in SERVICES:
            pid = self.pid(name)
            out.append(
                ServiceStatus(
                    name=name,
                    pid=pid,
                    ready=pid is not None and self.ready(name),
                    rss_mib=_rss_mib(pid) if pid is not None else None,
                    log=self.log_path(name),
                )
            )
        return out

    # -- up / down ---------------------------------------------------------------------------

    def up(
        self,
        services: Sequence[str] = SERVICES,
        *,
        timeout_s: float = 60.0,
        say: Callable[[str], None] = lambda _: None,
    ) -> list[str]:
        """Start what is not running, wait until ready; returns the services it started."""
        unknown = set(services) - set(SERVICES)
        if unknown:
            raise PipelineError(f"unknown services {sorted(unknown)} (known: {SERVICES})")
        specs = self.specs()
        if "translator" in services or "watcher" in services:
            bootstrap = self._stack("RIPPLE_KAFKA_BOOTSTRAP")
            count, made = asyncio.run(ensure_topic(bootstrap, EVENTS_TOPIC, EVENTS_PARTITIONS))
            if made:
                say(f"created topic {EVENTS_TOPIC} ({count} partitions)")
            self.service_dir("translator").mkdir(parents=True, exist_ok=True)
            (self.service_dir("translator") / "partitions").write_text(str(count))
        started = []
        for name in (s for s in SERVICES if s in services):
            if self.is_running(name):
                say(f"{name}: already running (pid {self.pid(name)})")
            else:
                t0 = time.monotonic()
                self._start(specs[name])
                started.append(name)
                try:
                    self._wait_ready(name, timeout_s=timeout_s)
                except PipelineError:
                    self.stop(name)
                    raise
                say(
                    f"{name}: ready in {(time.monotonic() - t0) * 1000:.0f} ms "
                    f"(pid {self.pid(name)}, log {self.log_path(name)})"
                )
        return started

    def _start(self, spec: ServiceSpec) -> None:
        d = self.service_dir(spec.name)
        d.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RIPPLE_")}
        env.update(spec.env)
        cmd = [sys.executable, "-m", spec.module]
        log_path = self.log_path(spec.name)
        with log_path.open("ab") as log:
            (d / "log.start").write_text(str(log.tell()))
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            log.write(f"\n==== {stamp} start: {' '.join(cmd)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                cmd,
                cwd=REPO_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: `down` signals the group
            )
        (d / "pid").write_text(f"{proc.pid}\n")

    def _wait_ready(self, name: str, *, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.ready(name):
            if not self.is_running(name):
                raise PipelineError(f"{name} exited during start; log:\n{self.log_tail(name)}")
            if time.monotonic() > deadline:
                raise PipelineError(
                    f"{name} not ready after {timeout_s:.0f}s; log:\n{self.log_tail(name)}"
                )
            time.sleep(0.1)

    def stop(self, name: str, *, timeout_s: float = 30.0) -> bool:
        """SIGTERM the service's process group, wait, SIGKILL; True if it was running."""
        pid = self.pid(name)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
        (self.service_dir(name) / "pid").unlink(missing_ok=True)
        return pid is not None

    def down(
        self, services: Sequence[str] = SERVICES, *, say: Callable[[str], None] = lambda _: None
    ) -> None:
        for name in reversed(SERVICES):
            if name in services and self.stop(name):
                say(f"{name}: stopped")


def _say(text: str) -> None:
    print(f"[pipeline {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.pipeline", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the services that are not running, wait until ready")
    up.add_argument("--services", default=",".join(SERVICES), help="comma-separated subset")
    up.add_argument("--timeout", type=float, default=60.0, help="readiness timeout per service")
    down = sub.add_parser("down", help="stop the services (SIGTERM by recorded pid)")
    down.add_argument("--services", default=",".join(SERVICES), help="comma-separated subset")
    sub.add_parser("status", help="pid, readiness and memory of each service")
    args = parser.parse_args(argv)

    pipeline = Pipeline()
    try:
        if args.command == "up":
            pipeline.up(
                [s for s in args.services.split(",") if s], timeout_s=args.timeout, say=_say
            )
            _say(f"pipeline up; gateway at http://127.0.0.1:{pipeline.gateway_port}/")
        elif args.command == "down":
            pipeline.down([s for s in args.services.split(",") if s], say=_say)
        else:
            all_ready = True
            print(f"{'SERVICE':<11}{'STATE':<9}{'PID':<9}{'RSS_MIB':<9}LOG")
            for st in pipeline.status():
                state = "ready" if st.ready else ("up" if st.pid else "down")
                all_ready = all_ready and st.ready
                rss = f"{st.rss_mib:.0f}" if st.rss_mib is not None else "-"
                print(f"{st.name:<11}{state:<9}{st.pid or '-'!s:<9}{rss:<9}{st.log}")
            return 0 if all_ready else 1
    except PipelineError as exc:
        _say(f"ERROR: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
