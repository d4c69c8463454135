"""Gateway groups for bench.scale (`--gateway-groups N`): the loaded tenants split into N
groups by a name prefix, one xds replica and one Envoy per group, each replica configured with
`RIPPLE_XDS_GATEWAYS={"group-<k>": [<its prefixes>]}` over mTLS (certificates issued by
deploy/k8s/overlays/production/xds-certs.sh; the Envoy bootstrap is the stack's with the
production overlay's transport socket), so each holds its group's tenants only.

Per group it records the replica's start-up (start until ready: its tenants loaded), the
tenants it loaded, the seconds until its Envoy serves every host of the group (each answers
the backend's 200), how many of a sample of the other groups' hosts it serves (must be 0:
404), and the resident memory of the replica and of the Envoy. Everything started here is
stopped here.

Ports: each group takes ten from `ports_base` (ADS, health, the Envoy's HTTP, HTTPS and admin
listeners); bench.scale passes RIPPLE_PIPELINE_HEALTH_PORT + 100 (below 32768 on a second
stack)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp
import yaml

from bench.probe import Plan, get_status, open_files, wait_serving
from scripts.pipeline import Pipeline, PipelineError, _rss_mib, http_ready
from scripts.stack_env import REPO_DIR

CERTS_SCRIPT: Final = REPO_DIR / "deploy/k8s/overlays/production/xds-certs.sh"
BOOTSTRAP: Final = REPO_DIR / "stack/build/envoy/bootstrap.yaml"
TRUST_DOMAIN: Final = "ripple.bench"
SERVER_NAME: Final = "ripple-xds"  # the DNS SAN xds-certs.sh gives the server
FOREIGN_SAMPLE: Final = 50  # other groups' hosts asked of each Envoy (each must get 404)
READY_TIMEOUT_S: Final = 1800.0


def prefix_cover(lo: int, hi: int, width: int) -> list[str]:
    """The fewest decimal prefixes of `width`-digit numbers covering exactly [lo, hi)."""
    out: list[str] = []
    i = lo
    while i < hi:
        k = width
        while k > 0 and (i % 10**k or i + 10**k > hi):
            k -= 1
        out.append(str(i).zfill(width)[: width - k])
        i += 10**k
    return out


@dataclass(frozen=True, slots=True)
class Group:
    """Group k: the plan's tenants [first, end), the patterns naming them, its ports."""

    k: int
    first: int
    end: int
    patterns: tuple[str, ...]
    ports_base: int

    @property
    def gateway(self) -> str:
        return f"group-{self.k}"

    @property
    def ads(self) -> int:
        return self.ports_base

    @property
    def health(self) -> int:
        return self.ports_base + 1

    @property
    def http(self) -> int:
        return self.ports_base + 2

    @property
    def https(self) -> int:
        return self.ports_base + 3

    @property
    def admin(self) -> int:
        return self.ports_base + 4

    def holds(self, tenant_index: int) -> bool:
        return self.first <= tenant_index < self.end


def _stem_and_width(plan: Plan) -> tuple[str, int]:
    """The tenant names' fixed part and digit count (`probe-t`, 5)."""
    name = plan.tenant(0)
    stem = name.rstrip("0123456789")
    return stem, len(name) - len(stem)


def split(plan: Plan, groups: int, *, ports_base: int) -> list[Group]:
    """`groups` groups of consecutive tenants, each named by prefixes (`probe-t0*`)."""
    stem, width = _stem_and_width(plan)
    if plan.tenants > 10**width:
        raise ValueError(f"{plan.tenants} tenants do not fit {width}-digit tenant names")
    out = []
    for k in range(groups):
        first, end = k * plan.tenants // groups, (k + 1) * plan.tenants // groups
        patterns = tuple(f"{stem}{p}*" for p in prefix_cover(first, end, width))
        out.append(Group(k + 1, first, end, patterns, ports_base + 10 * k))
    return out


def hosts_by_group(plan: Plan, groups: Sequence[Group]) -> dict[int, list[str]]:
    """The loaded hosts of each group (by the tenant each Ingress is in)."""
    stem, _ = _stem_and_width(plan)
    out: dict[int, list[str]] = {g.k: [] for g in groups}
    for ns, _, host in plan.loaded():
        index = int(ns[len(stem) :])
        for g in groups:
            if g.holds(index):
                out[g.k].append(host)
    return out


# -- certificates and the Envoy bootstrap -------------------------------------------------


def issue_certificates(directory: Path, groups: Sequence[Group]) -> dict[str, Path]:
    """One CA, the server's certificate and each group's client certificate (URI SAN
    spiffe://ripple.bench/gateway/group-<k>), by xds-certs.sh; returns the files by name:
    ca.crt, xds.crt, xds.key, group-<k>.crt, group-<k>.key."""
    directory.mkdir(parents=True, exist_ok=True)
    for group in groups:
        subprocess.run(
            ["sh", str(CERTS_SCRIPT), str(directory), TRUST_DOMAIN, group.gateway],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        for ext in ("crt", "key"):
            shutil.move(directory / f"gateway.{ext}", directory / f"{group.gateway}.{ext}")
    return {p.name: p for p in directory.iterdir() if p.suffix in (".crt", ".key")}


def envoy_bootstrap(group: Group, files: dict[str, Path]) -> str:
    """The stack's gateway bootstrap for `group`: its admin and ADS ports, node cluster = its
    gateway, and mTLS to the replica (client certificate of the group, server `ripple-xds`)."""
    text = BOOTSTRAP.read_text()
    text = text.replace("@ADMIN_PORT@", str(group.admin)).replace("@XDS_PORT@", str(group.ads))
    config = yaml.safe_load(text)
    config["node"] = {"id": f"scale-{group.gateway}", "cluster": group.gateway}
    (xds,) = [c for c in config["static_resources"]["clusters"] if c["name"] == "xds"]
    xds["transport_socket"] = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
            "UpstreamTlsContext",
            "sni": SERVER_NAME,
            "common_tls_context": {
                "alpn_protocols": ["h2"],
                "tls_certificates": [
                    {
                        "certificate_chain": {"filename": str(files[f"{group.gateway}.crt"])},
                        "private_key": {"filename": str(files[f"{group.gateway}.key"])},
                    }
                ],
                "validation_context": {
                    "trusted_ca": {"filename": str(files["ca.crt"])},
                    "match_typed_subject_alt_names": [
                        {"san_type": "DNS", "matcher": {"exact": SERVER_NAME}}
                    ],
                },
            },
        },
    }
    return yaml.safe_dump(config, sort_keys=False)


# -- processes ----------------------------------------------------------------------------


def xds_env(pipeline: Pipeline, group: Group, files: dict[str, Path]) -> dict[str, str]:
    """The pipeline's xds settings, on the group's ports, over mTLS, for the group only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIPPLE_")}
    env.update(pipeline.specs()["xds"].env)
    env.pop("RIPPLE_XDS_INSECURE_DEV_SECRETS", None)
    env.pop("RIPPLE_XDS_OTLP_ENDPOINT", None)
    env.update(
        {
            "RIPPLE_XDS_LISTEN": f"127.0.0.1:{group.ads}",
            "RIPPLE_XDS_HEALTH_PORT": str(group.health),
            "RIPPLE_XDS_GATEWAY_HTTP_PORT": str(group.http),
            "RIPPLE_XDS_GATEWAY_HTTPS_PORT": str(group.https),
            "RIPPLE_XDS_TLS_CERT_FILE": str(files["xds.crt"]),
            "RIPPLE_XDS_TLS_KEY_FILE": str(files["xds.key"]),
            "RIPPLE_XDS_TLS_CLIENT_CA_FILE": str(files["ca.crt"]),
            "RIPPLE_XDS_GATEWAYS": json.dumps({group.gateway: list(group.patterns)}),
        }
    )
    return env


@contextmanager
def process(
    argv: Sequence[str], *, env: dict[str, str] | None, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`argv` running (output to `log`) until the block ends: SIGTERM, then SIGKILL."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv),
            cwd=REPO_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(what: str, url: str, proc: subprocess.Popen[bytes], log: Path) -> float:
    """Seconds until `url` answers 2xx; PipelineError when `proc` exits or it takes too long."""
    started = time.monotonic()
    while not http_ready(url):
        if proc.poll() is not None:
            raise PipelineError(f"{what} exited with {proc.returncode}; log: {log}")
        if time.monotonic() - started > READY_TIMEOUT_S:
            raise PipelineError(f"{what} not ready in {READY_TIMEOUT_S} s; log: {log}")
        time.sleep(0.05)
    return time.monotonic() - started


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    started = time.monotonic()
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            pass
        if proc.poll() is not None:
            raise PipelineError(f"Envoy exited with {proc.returncode}; log: {log}")
        if time.monotonic() - started > READY_TIMEOUT_S:
            raise PipelineError(f"no listener on {port} in {READY_TIMEOUT_S} s; log: {log}")
        time.sleep(0.05)


def _prefixed(say: Callable[[str], None], prefix: str) -> Callable[[str], None]:
    def said(text: str) -> None:
        say(f"{prefix}: {text.strip()}")

    return said


def _metric(port: int, name: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            key, _, value = line.rpartition(" ")
            if key == name:
                return float(value)
    return None


async def _served_count(port: int, hosts: Sequence[str]) -> int:
    """How many of `hosts` the gateway on `port` answers with the backend's 200."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=8)) as session:
        codes = await asyncio.gather(*(get_status(session, port, h) for h in hosts))
    return sum(code == 200 for code in codes)


def run_groups(
    pipeline: Pipeline,
    plan: Plan,
    *,
    groups: int,
    envoy_bin: str,
    ports_base: int,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Start every group's replica and Envoy, wait until each Envoy serves its group's hosts,
    measure, stop them all. The result of each group under "group-<k>"."""
    split_groups = split(plan, groups, ports_base=ports_base)
    hosts = hosts_by_group(plan, split_groups)
    directory = pipeline.dir / "gateway-groups"
    shutil.rmtree(directory, ignore_errors=True)
    files = issue_certificates(directory / "pki", split_groups)
    rng = random.Random(17)
    out: dict[str, Any] = {}
    with ExitStack() as stack:
        for group in split_groups:  # one at a time: each start-up measured on its own
            log = directory / f"xds-{group.gateway}.log"
            t0 = time.monotonic()
            proc = stack.enter_context(
                process(
                    [sys.executable, "-m", "ripple_xds"],
                    env=xds_env(pipeline, group, files),
                    log=log,
                )
            )
            url = f"http://127.0.0.1:{group.health}/readyz"
            ready_s = _wait_ready(f"xds {group.gateway}", url, proc, log)
            say(f"{group.gateway}: xds ready in {ready_s:.1f} s ({list(group.patterns)})")
            out[group.gateway] = {
                "patterns": list(group.patterns),
                "tenants": group.end - group.first,
                "ingresses": len(hosts[group.k]),
                "xds_ready_s": round(time.monotonic() - t0, 2),
                "xds_tenants_loaded": _metric(group.health, "ripple_xds_tenants_loaded"),
                "xds_pid": proc.pid,
            }
        envoys: dict[int, subprocess.Popen[bytes]] = {}
        for group in split_groups:
            config = directory / f"envoy-{group.gateway}.yaml"
            config.write_text(envoy_bootstrap(group, files))
            envoys[group.k] = stack.enter_context(
                process(
                    [
                        envoy_bin,
                        "-c",
                        str(config),
                        "--concurrency",
                        "1",
                        "--use-dynamic-base-id",
                        "--log-level",
                        "warn",
                    ],
                    env=None,
                    log=directory / f"envoy-{group.gateway}.log",
                )
            )
        t0 = time.monotonic()
        for group in split_groups:
            # Until its HTTP listener (from LDS) exists, every request fails to connect.
            _wait_listening(group.http, envoys[group.k], directory / f"envoy-{group.gateway}.log")
            errors: list[dict[str, Any]] = []
            asyncio.run(
                wait_serving(
                    group.http,
                    hosts[group.k],
                    since=t0,
                    timeout_s=READY_TIMEOUT_S,
                    errors=errors,
                    say=_prefixed(say, group.gateway),
                )
            )
            others = [h for k, hs in hosts.items() if k != group.k for h in hs]
            foreign = rng.sample(others, min(FOREIGN_SAMPLE, len(others)))
            entry = out[group.gateway]
            entry["envoy_serving_s"] = round(time.monotonic() - t0, 2)
            entry["serve_errors"] = len(errors)
            entry["foreign_sampled"] = len(foreign)
            entry["foreign_served"] = asyncio.run(_served_count(group.http, foreign))
            say(
                f"{group.gateway}: Envoy serves its {len(hosts[group.k]):,} hosts "
                f"after {entry['envoy_serving_s']} s; {entry['foreign_served']} of "
                f"{len(foreign)} other groups' hosts served"
            )
        time.sleep(2)  # let the replicas settle after the last ACKs
        for group in split_groups:
            entry = out[group.gateway]
            entry["xds_rss_mib"] = _rss(int(entry.pop("xds_pid")))
            entry["envoy_rss_mib"] = _rss(envoys[group.k].pid)
            entry["envoy_open_files"] = open_files(envoys[group.k].pid)
    return out


def _rss(pid: int) -> float | None:
    mib = _rss_mib(pid)
    return None if mib is None else round(mib, 1)
