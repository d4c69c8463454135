"""Every cluster Envoy adds gets its endpoints in the same push, also when its EDS service name
is one Envoy already holds (issue #15, "a 15 s stall").

Two Ingresses of one tenant on one new host and one Service, one of them with cookie affinity:
the translator makes a ring-hash variant of the Service port's cluster that shares its
ClusterLoadAssignment. Envoy already holds that assignment (the plain cluster uses it), so it
asks for nothing new; unless the server sends the assignment again with the new cluster, the
cluster warms until Envoy's 15 s initial-fetch timeout, and the host with it. A real Envoy, in
both ADS modes, against the xds process; the tenant is the translator's real output, written
to Redis as the translator writes it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ripple_common.resources import Resource, TypeUrl
from ripple_translator.store import RedisTenantStore
from ripple_xds.snapshot import Entry
from tests.conftest import StackEnv
from tests.integration.loopback import status
from tests.integration.xds import envoy_resources as er
from tests.integration.xds_service.support import (
    DEADLINE_S,
    HOST_A,
    PROPAGATION_S,
    A,
    Ports,
    XdsProcess,
    envoy_stats,
    stop_process,
    tenant_resources,
    until,
    write_tenant,
)
from tests.unit.translator import k8s

NEW_HOST = "sticky.eds.example.com"
MODES = {"delta": "DELTA_GRPC", "sotw": "GRPC"}


def tenant(backend_port: int, *, sticky_host: bool) -> list[Resource]:
    """Tenant A as the translator makes it: HOST_A to Service `web` (what the `xds` fixture
    wrote) and, with `sticky_host`, NEW_HOST with two Ingresses to `web`: `/` plain and
    `/sticky` with cookie affinity."""
    ingresses = [k8s.ingress(rules=[k8s.rule(HOST_A)], namespace=A)]
    if sticky_host:
        ingresses += [
            k8s.ingress("plain", rules=[k8s.rule(NEW_HOST)], namespace=A),
            k8s.ingress(
                "sticky",
                rules=[k8s.rule(NEW_HOST, k8s.path("/sticky"))],
                annotations=k8s.nginx(affinity="cookie", session_cookie_name="route"),
                namespace=A,
            ),
        ]
    translation = k8s.run(
        *ingresses,
        services=[k8s.service(namespace=A)],
        slices=[
            k8s.endpoint_slice(
                endpoints=[k8s.endpoint("127.0.0.1")],
                ports=[{"name": "http", "port": backend_port, "protocol": "TCP"}],
                namespace=A,
            )
        ],
        tenant=A,
    )
    assert not translation.diagnostics, translation.diagnostics
    return list(translation.resources)


def test_sticky_variant_shares_the_plain_clusters_endpoints(backend_port: int) -> None:
    """The precondition of the stall: the `xds` fixture's tenant A, then one new cluster whose
    EDS service name is an assignment Envoy holds already."""
    before = tenant(backend_port, sticky_host=False)
    assert set(before) == set(tenant_resources(A, [HOST_A], backend_port=backend_port))
    held = {r.name for r in before}
    after = tenant(backend_port, sticky_host=True)
    new_clusters = [r for r in after if r.name not in held and r.type_url is TypeUrl.CLUSTER]
    assert len(new_clusters) == 1, sorted(r.name for r in after)
    shared = Entry.of(new_clusters[0]).endpoints
    assert shared is not None
    assert shared != new_clusters[0].name
    assert shared in held


@contextmanager
def running_envoy(envoy_bin: str, *, api_type: str, ports: Ports, workdir: Path) -> Iterator[Path]:
    """A real Envoy doing ADS (`api_type`) to the xds process; yields its log. Started from
    the calling (main) thread: Envoy dies with the thread that started it."""
    config = workdir / "envoy.yaml"
    config.write_text(
        er.bootstrap(
            node_id="it-eds-gateway",
            admin_port=ports.admin,
            xds_port=ports.xds,
            api_type=api_type,
        )
    )
    log = workdir / "envoy.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [envoy_bin, "-c", str(config), "--disable-hot-restart", "--concurrency", "1"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield log
    finally:
        stop_process(proc)


@pytest.mark.parametrize("mode", list(MODES))
async def test_new_cluster_sharing_held_endpoints_serves_without_the_initial_fetch_timeout(
    *,
    mode: str,
    stack: StackEnv,
    xds: XdsProcess,
    store: RedisTenantStore,
    backend_port: int,
    ports: Ports,
    tmp_path: Path,
) -> None:
    with running_envoy(
        stack["RIPPLE_ENVOY_BIN"], api_type=MODES[mode], ports=ports, workdir=tmp_path
    ) as envoy_log:
        logs = [xds.log, envoy_log]

        async def serves(host: str, path: str = "/") -> bool:
            xds.check_alive()
            return await status(ports.http, path, host=host) == 200

        # Envoy holds the plain cluster of `web` and its endpoints (the `xds` fixture's tenant A,
        # which is `tenant(backend_port, sticky_host=False)`).
        await until(f"{HOST_A} -> 200", lambda: serves(HOST_A), logs=logs)

        await write_tenant(store, A, tenant(backend_port, sticky_host=True))
        # The stall lasted 15 s; wait longer than that so the failure shows how long it was.
        took = await until(
            f"{NEW_HOST}/sticky -> 200",
            lambda: serves(NEW_HOST, "/sticky"),
            logs=logs,
            within_s=DEADLINE_S,
        )
        timeouts = await envoy_stats(ports.admin, "init_fetch_timeout")
        warming = await envoy_stats(ports.admin, "cluster_manager.warming_clusters")
        assert any(name.endswith("~ring_hash.init_fetch_timeout") for name in timeouts), timeouts
        timed_out = {name: count for name, count in timeouts.items() if count}
        assert not timed_out, f"served after {took:.1f} s; init fetch timed out: {timed_out}"
        assert warming == {"cluster_manager.warming_clusters": 0}, warming
        assert took < PROPAGATION_S, f"{NEW_HOST} served after {took:.1f} s"
        assert await serves(NEW_HOST), "the plain Ingress of the new host"
        assert await serves(HOST_A)
