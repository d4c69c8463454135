from __future__ import annotations

import asyncio
import base64
import os

import pytest
from pydantic import SecretStr

from ripple_common.envelope import EventType
from ripple_common.sealing import Sealer
from ripple_watcher.__main__ import main
from ripple_watcher.kinds import GATEWAY, HTTP_ROUTE, INGRESS, NAMESPACE, TLS_SECRET, KindSpec
from ripple_watcher.leases import Elector
from ripple_watcher.service import ConfigError, WatcherGroup, sealer_from
from ripple_watcher.settings import WatcherSettings
from ripple_watcher.tenancy import TenantResolver
from ripple_watcher.watchloop import WatchOptions
from tests.unit.watcher.fakes import (
    FakeKindApi,
    RecordingSink,
    event,
    ingress,
    meta,
    namespace,
)
from tests.unit.watcher.test_leases import FakeLeaseApi
from tests.waiting import eventually

LABEL = "ripple.io/tenant"


class Cluster:
    """One fake API and one sink per kind."""

    def __init__(self, apis: dict[str, FakeKindApi]) -> None:
        self.apis = apis
        self.sinks: dict[str, RecordingSink] = {}
        self.order: list[str] = []

    def api_for(self, spec: KindSpec) -> FakeKindApi:
        return self.apis[spec.kind]

    def sink_for(self, spec: KindSpec) -> RecordingSink:
        return self.sinks.setdefault(spec.kind, RecordingSink())

    def group(self, specs: list[KindSpec]) -> WatcherGroup:
        return WatcherGroup(
            specs,
            api_for=self.api_for,
            sink_for=self.sink_for,
            resolver=TenantResolver(tenant_label=LABEL),
            sealer=Sealer(os.urandom(32)),
            options=WatchOptions(),
        )


async def test_namespaces_sync_before_other_kinds_resolve_tenants() -> None:
    cluster = Cluster(
        {
            "Namespace": FakeKindApi(listings=[("5", [namespace("shop", labels={LABEL: "acme"})])]),
            "Ingress": FakeKindApi(listings=[("6", [ingress("shop", "web")])]),
        }
    )
    stop = asyncio.Event()
    run = asyncio.create_task(cluster.group([NAMESPACE, INGRESS]).run(stop))
    await eventually(
        lambda: "Ingress" in cluster.sinks and len(cluster.sinks["Ingress"].envelopes) >= 2,
        within_s=2,
    )
    stop.set()
    await asyncio.wait_for(run, 2)
    assert cluster.sinks["Ingress"].summary()[1] == ("ADDED", "acme", "web")


async def test_relabelled_namespace_rekeys_objects_of_other_kinds() -> None:
    ingress_synced = asyncio.Event()
    cluster = Cluster(
        {
            "Namespace": FakeKindApi(
                listings=[("5", [namespace("shop")])],
                scripts=[
                    [
                        ingress_synced,
                        event("MODIFIED", namespace("shop", labels={LABEL: "acme"}, rv="7")),
                    ]
                ],
            ),
            "Ingress": FakeKindApi(listings=[("6", [ingress("shop", "web")])]),
        }
    )
    stop = asyncio.Event()
    group = cluster.group([NAMESPACE, INGRESS])
    run = asyncio.create_task(group.run(stop))
    await group.watcher("Ingress").synced.wait()
    ingress_synced.set()
    await eventually(lambda: len(cluster.sinks["Ingress"].envelopes) >= 5, within_s=2)
    stop.set()
    await asyncio.wait_for(run, 2)
    assert cluster.sinks["Ingress"].summary()[3:] == [
        ("DELETED", "shop", "web"),
        ("ADDED", "acme", "web"),
    ]


async def test_tenant_label_is_resolved_even_when_namespaces_are_not_published() -> None:
    cluster = Cluster(
        {
            "Namespace": FakeKindApi(listings=[("5", [namespace("shop", labels={LABEL: "acme"})])]),
            "Ingress": FakeKindApi(listings=[("6", [ingress("shop", "web")])]),
        }
    )
    stop = asyncio.Event()
    group = cluster.group([INGRESS])
    run = asyncio.create_task(group.run(stop))
    await group.watcher("Ingress").synced.wait()
    stop.set()
    await asyncio.wait_for(run, 2)
    assert cluster.sinks["Ingress"].summary()[1] == ("ADDED", "acme", "web")


async def test_stop_ends_the_watches_and_flushes_every_sink() -> None:
    cluster = Cluster(
        {
            "Namespace": FakeKindApi(listings=[("5", [])]),
            "Ingress": FakeKindApi(listings=[("6", [])]),
        }
    )
    stop = asyncio.Event()
    run = asyncio.create_task(cluster.group([NAMESPACE, INGRESS]).run(stop))
    await eventually(lambda: len(cluster.apis["Ingress"].watch_calls) == 1, within_s=2)
    stop.set()
    await asyncio.wait_for(run, 2)
    assert [s.flushes for s in cluster.sinks.values()] == [1, 1]


def test_watching_secrets_without_a_sealing_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="SEALING_KEY"):
        sealer_from(WatcherSettings(sealing_key=None), [TLS_SECRET])


def test_sealing_key_from_settings_is_used() -> None:
    key = os.urandom(32)
    settings = WatcherSettings(sealing_key=SecretStr(base64.b64encode(key).decode()))
    sealer = sealer_from(settings, [TLS_SECRET])
    assert sealer is not None
    assert sealer.key_id == Sealer(key).key_id


def test_print_settings_does_not_reveal_the_sealing_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RIPPLE_WATCHER_SEALING_KEY", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0ISE=")
    assert main(["--print-settings"]) == 0
    out = capsys.readouterr().out
    assert "sealing_key" in out
    assert "c2VjcmV0" not in out


async def test_with_leases_only_the_leading_replica_publishes() -> None:
    leases = FakeLeaseApi()

    def replica(identity: str) -> tuple[Cluster, WatcherGroup]:
        cluster = Cluster(
            {
                "Namespace": FakeKindApi(listings=[("5", [namespace("shop")])]),
                "Ingress": FakeKindApi(listings=[("6", [ingress("shop", "web")])]),
            }
        )
        group = WatcherGroup(
            [INGRESS],
            api_for=cluster.api_for,
            sink_for=cluster.sink_for,
            resolver=TenantResolver(tenant_label=LABEL),
            sealer=None,
            options=WatchOptions(),
            elector_for=lambda spec: Elector(
                leases,
                name=f"w-{spec.kind.lower()}",
                identity=identity,
                duration_seconds=10,
                renew_interval_seconds=0.01,
            ),
        )
        return cluster, group

    (cluster_a, a), (cluster_b, b) = replica("a"), replica("b")
    stop = asyncio.Event()
    runs = [asyncio.create_task(a.run(stop))]
    await a.watcher("Ingress").synced.wait()
    runs.append(asyncio.create_task(b.run(stop)))
    assert b.feed is not None
    await b.feed.synced.wait()
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*runs), 2)
    assert len(cluster_a.sinks["Ingress"].envelopes) == 3
    assert cluster_b.sinks["Ingress"].envelopes == []
    assert b.health_routes()["/readyz"]()[0] == 200


async def test_optional_kind_is_ready_while_absent_and_publishes_once_served() -> None:
    """Gateway API kinds before and after their CRDs are installed (the integration test
    covers this against a real API only on a cluster that starts without the CRDs)."""
    crds_installed = asyncio.Event()

    async def available() -> bool:
        return crds_installed.is_set()

    gateway = {
        "metadata": meta("gw", namespace="shop", rv="6"),
        "spec": {"gatewayClassName": "ripple", "listeners": [{"name": "http", "port": 80}]},
        "status": {"conditions": [{"type": "Accepted", "status": "True"}]},
    }
    route = {
        "metadata": meta("web", namespace="shop", rv="7"),
        "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["a.example.test"]},
    }
    cluster = Cluster(
        {
            "Namespace": FakeKindApi(listings=[("5", [namespace("shop")])]),
            "Gateway": FakeKindApi(listings=[("8", [gateway])]),
            "HTTPRoute": FakeKindApi(listings=[("8", [route])]),
        }
    )
    for kind in ("Gateway", "HTTPRoute"):
        cluster.apis[kind].available = available  # type: ignore[method-assign]
    group = WatcherGroup(
        [NAMESPACE, GATEWAY, HTTP_ROUTE],
        api_for=cluster.api_for,
        sink_for=cluster.sink_for,
        resolver=TenantResolver(tenant_label=None),
        sealer=None,
        options=WatchOptions(absent_poll_seconds=0.001),
    )
    stop = asyncio.Event()
    run = asyncio.create_task(group.run(stop))
    await group.watcher("Namespace").synced.wait()
    await asyncio.sleep(0.05)  # many polls
    absent = [group.watcher(k) for k in ("Gateway", "HTTPRoute")]
    assert [(w.started, w.ready) for w in absent] == [(False, True), (False, True)]
    assert group.health_routes()["/readyz"]()[0] == 200
    assert [cluster.apis[k].list_calls for k in ("Gateway", "HTTPRoute")] == [0, 0]
    assert cluster.sinks["Gateway"].envelopes == cluster.sinks["HTTPRoute"].envelopes == []

    crds_installed.set()
    async with asyncio.timeout(2):
        for w in absent:
            await w.synced.wait()
    stop.set()
    await asyncio.wait_for(run, 2)
    (gw,) = cluster.sinks["Gateway"].of_type(EventType.ADDED)
    (rt,) = cluster.sinks["HTTPRoute"].of_type(EventType.ADDED)
    assert [(e.kind, e.tenant, e.namespace, e.name) for e in (gw, rt)] == [
        ("Gateway", "shop", "shop", "gw"),
        ("HTTPRoute", "shop", "shop", "web"),
    ]
    assert gw.object is not None
    assert rt.object is not None
    assert (gw.object["apiVersion"], gw.object["spec"]) == (
        "gateway.networking.k8s.io/v1",
        gateway["spec"],
    )
    assert "status" not in gw.object
    assert rt.object["spec"] == route["spec"]
