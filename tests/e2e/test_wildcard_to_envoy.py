"""A wildcard Ingress host through the whole pipeline to the stack's gateway Envoy.

Tenant `wild` serves `*.w-<id>.e2e.test` from backend A; tenant `exact` serves the exact host
`b.w-<id>.e2e.test` from backend B. The wildcard serves any one label under its suffix, the
other tenant's exact host stays with that tenant (also for paths it does not route), and when
the exact Ingress goes away the host falls back to the wildcard.
"""

from __future__ import annotations

import time
import uuid

import pytest

from scripts.demo import (
    BACKEND_A,
    BACKEND_B,
    HOST_SUFFIX,
    Kube,
    Tenant,
    add_tenant,
    http_get,
    ingress_manifest,
    poll_until,
    serves,
)
from scripts.pipeline import Pipeline

SLA_S = 5.0


@pytest.mark.usefixtures("backend")
async def test_wildcard_host_serves_and_never_takes_another_tenants_exact_host(
    pipeline: Pipeline, kube: Kube
) -> None:
    port = pipeline.gateway_port
    rid = uuid.uuid4().hex[:8]
    suffix = f"w-{rid}.{HOST_SUFFIX}"
    wild = Tenant(f"e2e-{rid}-wild", f"*.{suffix}")
    exact = Tenant(f"e2e-{rid}-exact", f"b.{suffix}")
    await add_tenant(kube, wild, services=[("web", BACKEND_A[1])])
    await add_tenant(kube, exact, services=[("web", BACKEND_B[1])])

    # The exact host first, routing /only: the wildcard must not take its other paths later.
    await kube.create_ingress(exact.ns, ingress_manifest("web", exact.host, [("/only", "web")]))
    await poll_until(exact.host, "/only", port=port, done=serves(BACKEND_B[0]), since=0)

    t0 = time.monotonic()
    await kube.create_ingress(wild.ns, ingress_manifest("web", wild.host, [("/", "web")]))
    poll = await poll_until(f"a.{suffix}", "/", port=port, done=serves(BACKEND_A[0]), since=t0)
    print(f"e2e wildcard create_to_200: {poll.elapsed_s * 1000:.0f} ms")
    assert poll.elapsed_s < SLA_S
    assert f"host=a.{suffix} ".encode() in poll.last.body  # the backend saw the Host

    assert (await http_get(f"other.{suffix}", "/x", port=port)).shows(BACKEND_A[0])
    assert (await http_get(exact.host, "/only", port=port)).shows(BACKEND_B[0])
    assert (await http_get(exact.host, "/", port=port)).status == 404  # exact owner's 404
    assert (await http_get(f"c.a.{suffix}", "/", port=port)).status == 404  # one label only
    assert (await http_get(suffix, "/", port=port)).status == 404

    # The exact Ingress goes away: its host falls back to the wildcard.
    t0 = time.monotonic()
    await kube.delete_ingress(exact.ns, "web")
    await poll_until(exact.host, "/", port=port, done=serves(BACKEND_A[0]), since=t0)
