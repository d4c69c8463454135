"""The propagation histogram and `ripple sla` against the running pipeline.

A new Ingress in a fresh tenant is created and polled through the gateway Envoy until it
serves. The xds server's /metrics must then count the change's ACK in the tenant's bucket of
`ripple_xds_propagation_seconds` for every stage, and `ripple sla` (the installed command, as
an operator runs it) must report it from the metrics and from Jaeger's `xds.ack` spans, exit 0
against the 5 s SLA and 1 against an impossible one."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ripple_xds.propagation import STAGES, tenant_bucket
from scripts.demo import BACKEND_A, Kube, add_tenant, ingress_manifest, poll_until, serves, tenants
from scripts.pipeline import Pipeline
from tests.conftest import StackEnv
from tests.waiting import eventually

TENANT_BUCKETS = 8  # the xds default (RIPPLE_XDS_TENANT_BUCKETS)
RIPPLE = str(Path(sys.executable).with_name("ripple"))
EXPORT_TIMEOUT_S = 15.0  # spans are exported in batches (every 5 s by default)


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
    return body.decode()


def counts(text: str, bucket: int) -> dict[str, int]:
    """`ripple_xds_propagation_seconds_count` per stage in one tenant bucket."""
    out: dict[str, int] = {}
    pattern = re.compile(
        r'^ripple_xds_propagation_seconds_count\{stage="(\w+)",tenant_bucket="'
        + str(bucket)
        + r'"\} (\d+)$',
        re.MULTILINE,
    )
    for stage, value in pattern.findall(text):
        out[stage] = int(value)
    return out


def ripple_sla(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RIPPLE, "sla", *args], capture_output=True, text=True, timeout=60, check=False
    )


def table_count(output: str, stage: str) -> int:
    match = re.search(rf"^{stage}\s+(\d+)\s", output, re.MULTILINE)
    assert match is not None, output
    return int(match.group(1))


@pytest.mark.usefixtures("backend")
async def test_histogram_and_ripple_sla_see_a_change_acked(
    pipeline: Pipeline, kube: Kube, stack: StackEnv
) -> None:
    metrics_url = f"http://127.0.0.1:{pipeline.ports.xds_health}/metrics"
    _, app, _ = tenants()
    bucket = tenant_bucket(app.ns, TENANT_BUCKETS)
    await add_tenant(kube, app, services=[("web", BACKEND_A[1])])
    before = counts(await asyncio.to_thread(_scrape, metrics_url), bucket)

    t0 = time.monotonic()
    await kube.create_ingress(app.ns, ingress_manifest("web", app.host, [("/", "web")]))
    await poll_until(app.host, "/", port=pipeline.gateway_port, done=serves(BACKEND_A[0]), since=t0)

    # The ACK that made the route serve was counted in the tenant's bucket, every stage.
    async def scraped() -> dict[str, int]:
        return counts(await asyncio.to_thread(_scrape, metrics_url), bucket)

    after = await eventually(
        scraped,
        until=lambda after: all(after.get(s, 0) > before.get(s, 0) for s in STAGES),
        within_s=5,
        every_s=0.1,
        what=f"the propagation histogram counting the change (before: {before})",
    )
    text = await asyncio.to_thread(_scrape, metrics_url)
    assert "# TYPE ripple_xds_propagation_seconds histogram" in text
    assert re.search(r"^ripple_xds_propagation_acked_total [1-9]", text, re.MULTILINE), text

    # `ripple sla` from the metrics: within the 5 s SLA (exit 0), above an impossible one (1).
    ok = await asyncio.to_thread(
        ripple_sla, "--metrics", metrics_url, "--tenant-bucket", str(bucket), "--sla", "5"
    )
    print(ok.stdout)
    assert table_count(ok.stdout, "total") >= after["total"]
    assert "SLA 5 s on p99 total: ok" in ok.stdout
    # This change is judged by `total`. api_ack may honestly breach here: the shared
    # pipeline's watcher sees every namespace, so objects other tests made while it was not
    # running count from their API time when it starts. The exit code follows the verdicts.
    breached = "BREACH" in ok.stdout
    assert ok.returncode == (1 if breached else 0), ok.stdout + ok.stderr
    breach = await asyncio.to_thread(ripple_sla, "--metrics", metrics_url, "--sla", "0.000001")
    assert breach.returncode == 1, breach.stdout + breach.stderr
    assert "BREACH" in breach.stdout

    # `ripple sla` from Jaeger's xds.ack spans (exported in batches: wait for them).
    query_url = stack["RIPPLE_JAEGER_QUERY_URL"]
    jaeger = await eventually(
        lambda: asyncio.to_thread(
            ripple_sla, "--source", "jaeger", "--jaeger", query_url, "--lookback", "5m"
        ),
        until=lambda done: done.returncode == 0 and table_count(done.stdout, "total") >= 1,
        within_s=EXPORT_TIMEOUT_S,
        every_s=1,
        what="ripple sla finding xds.ack spans in Jaeger",
    )
    print(jaeger.stdout)
