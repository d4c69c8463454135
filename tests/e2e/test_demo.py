"""The demo (`python -m scripts.demo`, the README's first command) as a user runs it: one
pass with a time limit, then Ctrl-C in the middle of a second run. Both must print a row per
change, see no errors in the background traffic, and leave no demo namespace behind.

The pipeline fixture starts the services first, so the demo finds them running and leaves
them alone (its own start and stop of the services is what `./dev up` exercises)."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import time

import pytest
from kubernetes_asyncio import client

from scripts.demo import Kube
from scripts.pipeline import Pipeline
from scripts.stack_env import REPO_DIR

ROW = re.compile(r"^\s*(\d+)\s+[\d.]+s\s+(demo-[0-9a-f]+)-\w+\s")


async def _demo(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scripts.demo",
        *args,
        cwd=REPO_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def _leftover_namespaces(kube: Kube, prefix: str) -> list[str]:
    names = [ns.metadata.name for ns in (await client.CoreV1Api(kube.api).list_namespace()).items]
    return [n for n in names if n.startswith(prefix)]


def _rows(out: str) -> list[re.Match[str]]:
    return [m for line in out.splitlines() if (m := ROW.match(line))]


@pytest.mark.usefixtures("backend")
async def test_one_pass_with_a_time_limit(pipeline: Pipeline, kube: Kube) -> None:
    t0 = time.monotonic()
    proc = await _demo("--duration", "1")
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    text = out.decode()
    assert proc.returncode == 0, text
    rows = _rows(text)
    # 3 new tenants, the broken Ingress, then one pass of 6 changes (1 s is less than a pass).
    assert [int(m.group(1)) for m in rows] == list(range(1, 11)), text
    assert "ERRORS" not in text
    assert re.search(r"background traffic: [1-9]\d* requests, 0 errors", text), text
    assert "/api/traces?" in text
    assert pipeline.is_running("translator-2")  # found running, left running
    assert not await _leftover_namespaces(kube, rows[0].group(2))
    print(f"demo --duration 1: {time.monotonic() - t0:.1f} s")


@pytest.mark.usefixtures("backend")
async def test_ctrl_c_stops_cleans_up_and_summarises(pipeline: Pipeline, kube: Kube) -> None:
    proc = await _demo("--duration", "120")
    assert proc.stdout is not None
    seen: list[str] = []
    async with asyncio.timeout(90):
        while not any("switch / to Service v2" in line for line in seen):
            line = (await proc.stdout.readline()).decode()
            assert line, "".join(seen)
            seen.append(line)
    proc.send_signal(signal.SIGINT)
    rest, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    text = "".join(seen) + rest.decode()
    assert proc.returncode == 130, text
    assert "interrupted" in text
    assert re.search(r"\d+ changes; API -> served through Envoy", text), text
    assert "ERRORS" not in text
    rows = _rows(text)
    assert not await _leftover_namespaces(kube, rows[0].group(2))
    assert pipeline.is_running("xds")  # the demo stops only what it started
