"""Per-request cost of the gateway's scope key filter (wildcard hosts), with a real Envoy.

One Envoy (`RIPPLE_ENVOY_BIN`, `--concurrency 1`) with two listeners over the same inline
scopes (an exact host `a.foo.test` and a wildcard `*.foo.test`, direct responses):

- `baseline`: scope key from `:authority`, no Lua filter (ripple before wildcard hosts);
- `lua`: scope key from `x-ripple-scope`, set by `ripple_xds.scope_key`'s Lua filter.

Each run sends N keep-alive GETs (8 concurrent, aiohttp) and reads the Envoy process's CPU time
from /proc before and after (Envoy's CPU seconds per run, the client excluded; the `us/op`
column is Envoy CPU microseconds per request). Medians of the runs are reported.

    RIPPLE_ENVOY_BIN=... python -m bench.scope_key [--runs 15] [--json FILE.jsonl]
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from google.protobuf import json_format

from bench.harness import Measurement, cli, summarize
from ripple_common.gateway_contract import ROUTER_FILTER, SCOPE_FILTER, SCOPE_KEY_HEADER, SERVED_KEY
from ripple_xds.scope_key import scope_filter_config

REQUESTS = 10000
CONCURRENCY = 8
CASES = {
    "baseline_exact": ("baseline", "a.foo.test"),
    "lua_exact": ("lua", "a.foo.test"),
    "lua_wildcard": ("lua", "x.foo.test"),
    "lua_unknown_404": ("lua", "x.nothing.test"),
}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scope(key: str, body: str) -> dict[str, Any]:
    vhost = {
        "name": key,
        "domains": [key],
        "metadata": {"filter_metadata": {SCOPE_FILTER: {SERVED_KEY: True}}},
        "routes": [
            {
                "name": "ok",
                "match": {"prefix": "/"},
                "direct_response": {"status": 200, "body": {"inline_string": body}},
            }
        ],
    }
    return {
        "name": f"scope-{key}",
        "key": {"fragments": [{"string_key": key}]},
        "route_configuration": {
            "name": f"rc-{key}",
            "ignore_port_in_host_matching": True,
            "virtual_hosts": [vhost],
        },
    }


def _listener(name: str, port: int, *, lua: bool) -> dict[str, Any]:
    filters: list[dict[str, Any]] = []
    if lua:
        config = json_format.MessageToDict(scope_filter_config())
        config["@type"] = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"
        filters.append({"name": SCOPE_FILTER, "typed_config": config})
    filters.append(
        {
            "name": ROUTER_FILTER,
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
            },
        }
    )
    extractor = {
        "name": SCOPE_KEY_HEADER if lua else ":authority",
        "element_separator": ":",
        "index": 0,
    }
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network."
        "http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": name,
        "scoped_routes": {
            "name": name,
            "scope_key_builder": {"fragments": [{"header_value_extractor": extractor}]},
            "scoped_route_configurations_list": {
                "scoped_route_configurations": [
                    _scope("a.foo.test", "exact"),
                    _scope("*.foo.test", "wildcard"),
                ]
            },
        },
        "http_filters": filters,
    }
    return {
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [
            {
                "filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                ]
            }
        ],
    }


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _load(port: int, host: str, n: int) -> None:
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(k: int) -> None:
            for _ in range(k):
                async with session.get(f"http://127.0.0.1:{port}/", headers={"Host": host}) as r:
                    await r.read()

        await asyncio.gather(*(worker(n // CONCURRENCY) for _ in range(CONCURRENCY)))


def main() -> int:
    envoy = os.environ.get("RIPPLE_ENVOY_BIN")
    if not envoy:
        sys.exit("set RIPPLE_ENVOY_BIN (the stack's env file has it)")
    ports = {"baseline": _port(), "lua": _port()}
    config = {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": _port()}}},
        "static_resources": {
            "listeners": [_listener(k, p, lua=(k == "lua")) for k, p in ports.items()]
        },
    }
    with tempfile.TemporaryDirectory() as tmp, Path(tmp, "envoy.log").open("w") as log:
        path = Path(tmp, "envoy.json")
        path.write_text(json.dumps(config))
        cmd = [envoy, "-c", str(path), "--disable-hot-restart", "--concurrency", "1"]
        proc = subprocess.Popen(
            [*cmd, "--base-id", str(_port()), "-l", "warning"], stdout=log, stderr=log
        )
        try:
            for port in ports.values():
                _wait_listening(port, proc, Path(tmp, "envoy.log"))
            return cli(__doc__ or "", _benches(proc.pid, ports))
        finally:
            proc.terminate()
            proc.wait(10)


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                sys.exit(f"envoy did not start: {log.read_text()}")
            time.sleep(0.05)


def _benches(pid: int, ports: dict[str, int]) -> dict[str, Callable[[int], Measurement]]:
    def bench(case: str) -> Callable[[int], Measurement]:
        listener, host = CASES[case]

        def run(runs: int) -> Measurement:
            asyncio.run(_load(ports[listener], host, 200))  # warm up
            samples = []
            for _ in range(runs):
                before = _cpu_s(pid)
                asyncio.run(_load(ports[listener], host, REQUESTS))
                samples.append(_cpu_s(pid) - before)
            rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf(
                "SC_PAGE_SIZE"
            )
            return summarize(
                f"scope_key.{case}", samples, ops=REQUESTS, rss_mib=rss / 2**20, unit="cpu_s"
            )

        return run

    return {case: bench(case) for case in CASES}


if __name__ == "__main__":
    sys.exit(main())
