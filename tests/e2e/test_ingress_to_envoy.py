"""Ingress -> watcher -> Kafka -> translator -> Redis -> xds -> the stack's gateway Envoy.

Real objects in kube-apiserver, real HTTP through Envoy (127.0.0.1:10080, routed by Host) to
the test backends in the `ripple-be` network namespace: a new host turns 404 -> 200, a new path
serves from another Service, a deleted Ingress turns 404 again, while a second tenant keeps
serving and a third tenant's broken Ingress blocks nothing. The propagation times are printed
(run with -s to see them) and attached to the test report as properties.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from scripts.demo import (
    BACKEND_A,
    BACKEND_B,
    USE_REGEX,
    Answer,
    Kube,
    Poll,
    Prober,
    Stored,
    Tenant,
    add_tenant,
    http_get,
    ingress_manifest,
    not_found,
    poll_until,
    serves,
    tenants,
)
from scripts.pipeline import Pipeline
from tests.waiting import eventually

SLA_S = 5.0
# Any answer other than 200/404 while a change propagates fails the step. A 503 `no_cluster`
# (`http.ripple-http.no_cluster`) would mean ripple_xds broke make-before-break: a route
# applied before its new Cluster warmed (CDS + EDS ACKed), or a Cluster removed before the
# route that used it was updated.


async def _diagnose(stored: Stored, pipeline: Pipeline, tenant: Tenant) -> str:
    """Where the change stopped: in Redis (translator side) or after it (xds/Envoy side)."""
    names = sorted(await stored.names(tenant.ns))
    return (
        f"translator stored for {tenant.ns}: {names}\n"
        f"--- translator log ---\n{pipeline.log_tail('translator', 10)}\n"
        f"--- xds log ---\n{pipeline.log_tail('xds', 10)}"
    )


@dataclass(frozen=True, slots=True)
class Steps:
    """Times each step: from `since` to the first answer `done` accepts, within the SLA."""

    port: int
    stored: Stored
    pipeline: Pipeline
    record: Callable[[str, object], None]

    async def timed(
        self,
        step: str,
        tenant: Tenant,
        path: str,
        *,
        done: Callable[[Answer], bool],
        since: float,
    ) -> Poll:
        """Answers other than 200/404 while the change propagates fail the step."""
        try:
            poll = await poll_until(tenant.host, path, port=self.port, done=done, since=since)
        except TimeoutError as exc:
            pytest.fail(f"{step}: {exc}\n{await _diagnose(self.stored, self.pipeline, tenant)}")
        print(f"e2e {step}: {poll.elapsed_s * 1000:.0f} ms ({poll.answers} GETs, {poll.seen})")
        self.record(f"{step}_ms", round(poll.elapsed_s * 1000, 1))
        assert poll.elapsed_s < SLA_S, f"{step} took {poll.elapsed_s:.2f} s"
        self.record(f"{step}_errors", len(poll.errors))
        if poll.errors:
            shown = [(a.status, a.body[:80]) for a in poll.errors]
            pytest.fail(f"{step}: answers other than 200/404 during the change: {shown}")
        return poll


@pytest.mark.usefixtures("backend")
async def test_ingress_changes_reach_envoy(
    pipeline: Pipeline,
    kube: Kube,
    stored: Stored,
    record_property: Callable[[str, object], None],
) -> None:
    port = pipeline.gateway_port
    steady, app, broken = tenants()
    steps = Steps(port, stored, pipeline, record_property)

    # A second tenant serves first, and is probed for the whole test.
    t0 = time.monotonic()
    await add_tenant(kube, steady, services=[("web", BACKEND_A[1])])
    await kube.create_ingress(steady.ns, ingress_manifest("web", steady.host, [("/", "web")]))
    await steps.timed("steady_first_200", steady, "/", done=serves(BACKEND_A[0]), since=t0)
    prober = Prober(steady.host, BACKEND_A[0], port=port)
    prober.start()
    try:
        # New tenant: 404 before its Ingress, then the backend's answer.
        await add_tenant(kube, app, services=[("web", BACKEND_A[1]), ("v2", BACKEND_B[1])])
        assert (await http_get(app.host, port=port)).status == 404
        t0 = time.monotonic()
        await kube.create_ingress(app.ns, ingress_manifest("web", app.host, [("/", "web")]))
        first = await steps.timed("create_to_200", app, "/", done=serves(BACKEND_A[0]), since=t0)
        assert f"host={app.host} ".encode() in first.last.body  # the backend saw the Host

        # A new path to another Service (another backend port).
        t0 = time.monotonic()
        await kube.replace_ingress(
            app.ns, ingress_manifest("web", app.host, [("/", "web"), ("/v2", "v2")])
        )
        await steps.timed(
            "add_path_to_200",
            app,
            "/v2",
            done=serves(BACKEND_B[0]),
            since=t0,
        )
        assert (await http_get(app.host, "/", port=port)).shows(BACKEND_A[0])

        # A broken Ingress in a third tenant is diagnosed and blocks nobody.
        await add_tenant(kube, broken, services=[("web", BACKEND_A[1])])
        await kube.create_ingress(
            broken.ns,
            ingress_manifest(
                "bad",
                broken.host,
                [("/(unclosed", "web")],
                path_type="ImplementationSpecific",
                annotations={USE_REGEX: "true"},
            ),
        )
        needle = f"{broken.ns}/bad InvalidPath"
        await eventually(
            lambda: needle in pipeline.log_tail("translator", 2000),
            within_s=5,
            every_s=0.1,
            what=f"{needle!r} in the translator's log",
        )
        assert (await http_get(app.host, "/", port=port)).shows(BACKEND_A[0])
        assert (await http_get(app.host, "/v2", port=port)).shows(BACKEND_B[0])
        assert (await http_get(broken.host, port=port)).status == 404
        t0 = time.monotonic()
        # Changes queued behind it still propagate: the app tenant's Ingress goes away.
        await kube.delete_ingress(app.ns, "web")
        await steps.timed("delete_to_404", app, "/", done=not_found, since=t0)
        assert (await http_get(broken.host, port=port)).status == 404
        assert (await http_get(steady.host, port=port)).shows(BACKEND_A[0])
    finally:
        await prober.stop()
    print(f"e2e steady prober: {prober.ok} good, {len(prober.failures)} failures")
    record_property("steady_probes_ok", prober.ok)
    assert prober.ok > 0
    assert not prober.failures, f"steady tenant failed while others changed: {prober.failures}"
