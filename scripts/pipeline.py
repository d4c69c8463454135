"""Run ripple's services against the local stack, as background processes.

    python -m scripts.pipeline up [--services xds,translator,watcher] [--translators 2]
                                  [--timeout 60]
    python -m scripts.pipeline status
    python -m scripts.pipeline down [--services ...]

The services' settings come from the stack's client settings (`$RIPPLE_RUN/env`: Kafka
bootstrap, Redis URL, kubeconfig, OTLP endpoint) plus a sealing key generated once and kept in
`$RIPPLE_RUN/pipeline/sealing.key` (the watcher seals TLS private keys with it, the translator
opens them and seals them again in the Secret resources it stores, the xds server opens
those). The translator runs as N instances (default 2) in one consumer group, named
`translator`, `translator-2`, ...; each instance's pid file and log live in
`$RIPPLE_RUN/pipeline/<instance>/`.

`up` is idempotent: an instance whose recorded process is alive is left alone. It starts xds,
the translators, watcher in that order (so nothing waits on a consumer that is not there) and
waits until each is ready: xds and watcher by their `/readyz`, the translators once the group's
partitions of the events topic are all owned, each instance owning some (their
`partition.assigned`/`revoked` log lines: a translator consumes nothing before each assigned
partition's tenants are loaded). A service that exits or is not ready in time fails `up` with
the tail of its log. `down` sends SIGTERM to each recorded process group (reverse order),
waits for a clean exit, then SIGKILLs.

Ports besides the stack's: RIPPLE_GATEWAY_HTTP_PORT and RIPPLE_GATEWAY_HTTPS_PORT (the gateway
Envoy's HTTP and HTTPS listeners, which xds configures; default 10080 and 10443) and
RIPPLE_PIPELINE_HEALTH_PORT (health endpoints: watcher at
it, xds at +1, translator n at +1+n; default 18081), for a second stack beside the first
(RIPPLE_RUN=/tmp/other plus the stack's RIPPLE_*_PORT variables).
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
from ripple_common.kafka_sizes import MAX_MESSAGE_BYTES
from scripts.stack_env import (
    REPO_DIR,
    cmdline,
    load_stack_env,
    pid_alive,
    run_dir,
)

SERVICES: Final = ("xds", "translator", "watcher")  # start order; stop is the reverse
GATEWAY_HTTP_PORT: Final = 10080
GATEWAY_HTTPS_PORT: Final = 10443
WATCHER_HEALTH_PORT: Final = 18081
XDS_HEALTH_PORT: Final = 18082
REDIS_PREFIX: Final = "ripple"
EVENTS_PARTITIONS: Final = 12  # the stack broker's num.partitions
DEFAULT_TRANSLATORS: Final = 2  # instances in the one consumer group


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
                # Messages as large as the watcher publishes (a ~1.5 MB object, compressed).
                sized = {"max.message.bytes": str(MAX_MESSAGE_BYTES)}
                # One replica per broker up to 3 (the HA profile: 3, with 2 in sync).
                replicas = min(3, len((await admin.describe_cluster())["brokers"]))
                if replicas == 3:
                    sized["min.insync.replicas"] = "2"
                new = NewTopic(
                    name=topic,
                    num_partitions=partitions,
                    replication_factor=replicas,
                    topic_configs=sized,
                )
                await admin.create_topics([new])
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


def group_complete(owned: Sequence[set[int]], partitions: int) -> bool:
    """One consumer group's members (their owned partitions) own every partition exactly
    once, and (while there are enough partitions) each member owns some: the rebalance that
    the last member's join started is over."""
    if not owned:
        return False
    union = set().union(*owned)
    if union != set(range(partitions)) or sum(len(o) for o in owned) != partitions:
        return False
    return len(owned) > partitions or all(owned)


def service_of(instance: str) -> str:
    """`translator-2` -> `translator`; `xds` -> `xds`."""
    return instance.split("-", 1)[0]


def instance_names(service: str, count: int = 1) -> list[str]:
    """The first instance keeps the service's name (and directory); the next are `<name>-<n>`."""
    return [service] + [f"{service}-{n}" for n in range(2, count + 1)]


@dataclass(frozen=True, slots=True, kw_only=True)
class Ports:
    """The local ports the pipeline uses besides the stack's: the gateway Envoy's HTTP and
    HTTPS listeners (which xds configures) and the services' health endpoints (watcher at the base,
    xds at base + 1, translator instance n at base + 1 + n)."""

    gateway_http: int = GATEWAY_HTTP_PORT
    gateway_https: int = GATEWAY_HTTPS_PORT
    health_base: int = WATCHER_HEALTH_PORT

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Ports:
        """RIPPLE_GATEWAY_HTTP(S)_PORT and RIPPLE_PIPELINE_HEALTH_PORT, for a second stack."""
        return cls(
            gateway_http=int(environ.get("RIPPLE_GATEWAY_HTTP_PORT", GATEWAY_HTTP_PORT)),
            gateway_https=int(environ.get("RIPPLE_GATEWAY_HTTPS_PORT", GATEWAY_HTTPS_PORT)),
            health_base=int(environ.get("RIPPLE_PIPELINE_HEALTH_PORT", WATCHER_HEALTH_PORT)),
        )

    @property
    def watcher_health(self) -> int:
        return self.health_base

    @property
    def xds_health(self) -> int:
        return self.health_base + 1

    def translator_health(self, n: int) -> int:
        return self.health_base + 1 + n


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str  # the instance: xds, translator, translator-2, watcher
    module: str
    env: Mapping[str, str]
    readyz: str | None  # an HTTP readiness URL, or None: readiness by log line

    @property
    def service(self) -> str:
        return service_of(self.name)


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    name: str
    pid: int | None
    ready: bool
    rss_mib: float | None
    log: Path


class Pipeline:
    """The services of one run directory (xds, `translators` translator instances in one
    consumer group, watcher); every bit of state is on disk."""

    def __init__(
        self,
        *,
        run: Path | None = None,
        stack_env: Mapping[str, str] | None = None,
        translators: int = DEFAULT_TRANSLATORS,
        ports: Ports | None = None,
    ):
        if translators < 1:
            raise PipelineError(f"translators must be at least 1, got {translators}")
        self.run = run or run_dir()
        self.dir = self.run / "pipeline"
        self._stack_env = dict(stack_env) if stack_env is not None else load_stack_env(run)
        self.translators = translators
        self.ports = ports or Ports.from_env(os.environ)
        # What this object started: until it has exec'd, a child's /proc cmdline is still
        # ours, so the recorded pid does not look like the service yet.
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    # -- settings ----------------------------------------------------------------------------

    def _stack(self, key: str) -> str:
        try:
            return self._stack_env[key]
        except KeyError:
            raise PipelineError(
                f"{key} missing from {self.run / 'env'}: start the stack with `stack/stack up`"
            ) from None

    def sealing_key(self) -> str:
        """The base64 AES-256 key shared by watcher, translator and xds (made once, mode
        0600)."""
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
        return self.ports.gateway_http

    @property
    def xds_listen(self) -> str:
        return f"127.0.0.1:{self._stack_env.get('RIPPLE_XDS_PORT', '18000')}"

    def instances(self) -> list[str]:
        """The configured instances in start order."""
        return [
            name
            for service in SERVICES
            for name in instance_names(service, self.translators if service == "translator" else 1)
        ]

    def specs(self) -> dict[str, ServiceSpec]:
        otlp = self._stack_env.get("RIPPLE_OTLP_ENDPOINT")
        key = self.sealing_key()
        ports = self.ports

        def common(prefix: str) -> dict[str, str]:
            env = {f"{prefix}LOG_LEVEL": "INFO", f"{prefix}LOG_JSON": "true"}
            if otlp:
                env[f"{prefix}OTLP_ENDPOINT"] = otlp
            return env

        specs = {
            "xds": ServiceSpec(
                name="xds",
                module="ripple_xds",
                env={
                    **common("RIPPLE_XDS_"),
                    "RIPPLE_XDS_REDIS_URL": self._stack("RIPPLE_REDIS_URL"),
                    "RIPPLE_XDS_REDIS_PREFIX": REDIS_PREFIX,
                    "RIPPLE_XDS_LISTEN": self.xds_listen,
                    "RIPPLE_XDS_GATEWAY_HTTP_ADDRESS": "127.0.0.1",
                    "RIPPLE_XDS_GATEWAY_HTTP_PORT": str(ports.gateway_http),
                    "RIPPLE_XDS_GATEWAY_HTTPS_PORT": str(ports.gateway_https),
                    "RIPPLE_XDS_HEALTH_PORT": str(ports.xds_health),
                    "RIPPLE_XDS_SEALING_KEY": key,
                    # The stack's Envoy speaks plaintext ADS on loopback; without the flag the
                    # xds server would serve it no secrets (no HTTPS). Development only.
                    "RIPPLE_XDS_INSECURE_DEV_SECRETS": "true",
                },
                readyz=f"http://127.0.0.1:{ports.xds_health}/readyz",
            ),
        }
        for n, name in enumerate(self._translator_names(), start=1):
            specs[name] = ServiceSpec(
                name=name,
                module="ripple_translator",
                env={
                    **common("RIPPLE_TRANSLATOR_"),
                    "RIPPLE_TRANSLATOR_KAFKA_BOOTSTRAP": self._stack("RIPPLE_KAFKA_BOOTSTRAP"),
                    "RIPPLE_TRANSLATOR_REDIS_URL": self._stack("RIPPLE_REDIS_URL"),
                    "RIPPLE_TRANSLATOR_REDIS_PREFIX": REDIS_PREFIX,
                    "RIPPLE_TRANSLATOR_SEALING_KEY": key,
                    # Every instance joins the one group (the setting's default group id),
                    # as a static member named after it (a restart keeps its partitions);
                    # the stack's broker accepts a 3 s session (group.min.session.timeout.ms
                    # 2000), so a killed translator's partitions move within about 3 s.
                    "RIPPLE_TRANSLATOR_GROUP_INSTANCE_ID": name,
                    "RIPPLE_TRANSLATOR_SESSION_TIMEOUT_MS": "3000",
                    "RIPPLE_TRANSLATOR_HEALTH_PORT": str(ports.translator_health(n)),
                },
                readyz=None,
            )
        specs["watcher"] = ServiceSpec(
            name="watcher",
            module="ripple_watcher",
            env={
                **common("RIPPLE_WATCHER_"),
                "RIPPLE_WATCHER_KUBECONFIG": self._stack("KUBECONFIG"),
                "RIPPLE_WATCHER_KAFKA_BOOTSTRAP": self._stack("RIPPLE_KAFKA_BOOTSTRAP"),
                "RIPPLE_WATCHER_SEALING_KEY": key,
                "RIPPLE_WATCHER_HEALTH_HOST": "127.0.0.1",
                "RIPPLE_WATCHER_HEALTH_PORT": str(ports.watcher_health),
            },
            readyz=f"http://127.0.0.1:{ports.watcher_health}/readyz",
        )
        return specs

    def _translator_names(self) -> list[str]:
        """The configured translator instances, plus any other that is running from an
        earlier `up` with more of them (so `status` and `down` see it)."""
        names = instance_names("translator", self.translators)
        if self.dir.is_dir():
            extra = [
                d.name
                for d in self.dir.iterdir()
                if d.name.startswith("translator-") and d.name not in names
            ]
            names += sorted((n for n in extra if self.is_running(n)), key=_instance_number)
        return names

    # -- per-instance state ------------------------------------------------------------------

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
        if pid_alive(pid) and f"ripple_{service_of(name)}" in cmdline(pid):
            return pid
        return None

    def is_running(self, name: str) -> bool:
        return self.pid(name) is not None

    def _log_start_offset(self, name: str) -> int:
        try:
            return int((self.service_dir(name) / "log.start").read_text())
        except (OSError, ValueError):
            return 0

    def _partitions(self) -> int:
        try:
            return int((self.service_dir("translator") / "partitions").read_text())
        except (OSError, ValueError):
            return EVENTS_PARTITIONS

    def _alive(self, name: str) -> bool:
        proc = self._procs.get(name)
        if proc is not None:
            return proc.poll() is None
        return self.is_running(name)

    def translators_ready(self) -> bool:
        """Every translator instance (the configured ones and any other running) is alive and,
        as one group, they own every partition, each some: the rebalance the last one's join
        started is over and each loaded its tenants (a translator logs an assignment once the
        partition's tenants are loaded)."""
        members = self._translator_names()
        if not all(self._alive(n) for n in members):
            return False
        owned = [owned_partitions(self._log_since_start(n)) for n in members]
        return group_complete(owned, self._partitions())

    def ready(self, name: str) -> bool:
        if not self.is_running(name):
            return False
        if service_of(name) == "translator":
            return self.translators_ready()
        spec = self.specs()[name]
        return spec.readyz is not None and http_ready(spec.readyz)

    def _log_since_start(self, name: str) -> list[str]:
        try:
            with self.log_path(name).open("rb") as f:
                f.seek(self._log_start_offset(name))
                return f.read().decode(errors="replace").splitlines()
        except OSError:
            return []

    def log_tail(self, name: str, lines: int = 30) -> str:
        """The last `lines` of an instance's log; for `translator`, of every instance's log
        (one after the other), since a tenant may be owned by any of them."""
        names = self._translator_names() if name == "translator" else [name]
        tails = []
        for instance in names:
            try:
                text = self.log_path(instance).read_text(errors="replace")
            except OSError:
                continue
            tails.append("\n".join(text.splitlines()[-lines:]))
        return "\n".join(tails) if tails else "(no log)"

    def status(self) -> list[ServiceStatus]:
        out = []
        for name in self._ordered(SERVICES):
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

    def _ordered(self, names: Iterable[str]) -> list[str]:
        """Instances named (a service's name means all its instances), in start order."""
        wanted = set(names)
        out = []
        for service in SERVICES:
            group = self._translator_names() if service == "translator" else [service]
            out += [n for n in group if service in wanted or n in wanted]
        return out

    # -- up / down ---------------------------------------------------------------------------

    def up(
        self,
        services: Sequence[str] = SERVICES,
        *,
        timeout_s: float = 60.0,
        say: Callable[[str], None] = lambda _: None,
    ) -> list[str]:
        """Start what is not running, wait until ready; returns the instances it started.
        Translator instances start together, then wait for the group to settle."""
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
        started: list[str] = []
        for service in (s for s in SERVICES if s in services):
            names = [n for n in self.instances() if service_of(n) == service]
            t0 = time.monotonic()
            batch = []
            for name in names:
                if self.is_running(name):
                    say(f"{name}: already running (pid {self.pid(name)})")
                else:
                    self._start(specs[name])
                    batch.append(name)
            started += batch
            try:
                for name in batch:
                    self._wait_ready(name, timeout_s=timeout_s)
            except PipelineError:
                for name in reversed(batch):
                    self.stop(name)
                raise
            for name in batch:
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
        self._procs[spec.name] = proc

    def _wait_ready(self, name: str, *, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.ready(name):
            if not self._alive(name):
                raise PipelineError(f"{name} exited during start; log:\n{self._tail(name)}")
            if time.monotonic() > deadline:
                raise PipelineError(
                    f"{name} not ready after {timeout_s:.0f}s; log:\n{self._tail(name)}"
                )
            time.sleep(0.1)

    def _tail(self, name: str, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path(name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, name: str, *, timeout_s: float = 30.0) -> bool:
        """SIGTERM the instance's process group, wait, SIGKILL; True if it was running."""
        pid = self.pid(name)
        proc = self._procs.get(name)
        if pid is None and proc is not None and proc.poll() is None:
            pid = proc.pid  # started here, not exec'd yet
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
        proc = self._procs.pop(name, None)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)  # reap our child
        (self.service_dir(name) / "pid").unlink(missing_ok=True)
        return pid is not None

    def down(
        self, services: Sequence[str] = SERVICES, *, say: Callable[[str], None] = lambda _: None
    ) -> None:
        """Stop the named services (every instance) or instances, in reverse start order."""
        for name in reversed(self._ordered(services)):
            if self.stop(name):
                say(f"{name}: stopped")


def _instance_number(name: str) -> int:
    _, _, n = name.partition("-")
    return int(n) if n.isdigit() else 1


def _say(text: str) -> None:
    print(f"[pipeline {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.pipeline", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the services that are not running, wait until ready")
    up.add_argument("--services", default=",".join(SERVICES), help="comma-separated subset")
    up.add_argument("--timeout", type=float, default=60.0, help="readiness timeout per service")
    up.add_argument(
        "--translators",
        type=int,
        default=DEFAULT_TRANSLATORS,
        help=f"translator instances in the group (default {DEFAULT_TRANSLATORS})",
    )
    down = sub.add_parser("down", help="stop the services (SIGTERM by recorded pid)")
    down.add_argument("--services", default=",".join(SERVICES), help="comma-separated subset")
    sub.add_parser("status", help="pid, readiness and memory of each service")
    args = parser.parse_args(argv)

    try:
        pipeline = Pipeline(translators=getattr(args, "translators", DEFAULT_TRANSLATORS))
        if args.command == "up":
            pipeline.up(
                [s for s in args.services.split(",") if s], timeout_s=args.timeout, say=_say
            )
            _say(f"pipeline up; gateway at http://127.0.0.1:{pipeline.gateway_port}/")
        elif args.command == "down":
            pipeline.down([s for s in args.services.split(",") if s], say=_say)
        else:
            all_ready = True
            print(f"{'SERVICE':<14}{'STATE':<9}{'PID':<9}{'RSS_MIB':<9}LOG")
            for st in pipeline.status():
                state = "ready" if st.ready else ("up" if st.pid else "down")
                all_ready = all_ready and st.ready
                rss = f"{st.rss_mib:.0f}" if st.rss_mib is not None else "-"
                print(f"{st.name:<14}{state:<9}{st.pid or '-'!s:<9}{rss:<9}{st.log}")
            return 0 if all_ready else 1
    except PipelineError as exc:
        _say(f"ERROR: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
