"""The pure parts of the local-run scripts: the services' settings built from the stack's,
the shared sealing key, pid ownership, the translator group's readiness, the test backend's
arguments and answers, the demo's table and the probe benchmark's figures."""

from __future__ import annotations

import argparse
import base64
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bench.probe import (
    README_BEGIN,
    README_END,
    Plan,
    percentiles,
    readme_table,
    replace_block,
)
from ripple_common.sealing import Sealer
from scripts.demo import Answer, Change, Traffic, ingress_manifest, jaeger_links, summary
from scripts.netns_backend import Listener, body_for
from scripts.pipeline import (
    GATEWAY_HTTP_PORT,
    SERVICES,
    Pipeline,
    PipelineError,
    Ports,
    group_complete,
    instance_names,
    owned_partitions,
    service_of,
)

STACK = {
    "RIPPLE_XDS_PORT": "18000",
    "RIPPLE_REDIS_URL": "redis://127.0.0.1:16379/0",
    "KUBECONFIG": "/run/kubeconfig",
    "RIPPLE_KAFKA_BOOTSTRAP": "127.0.0.1:19092",
    "RIPPLE_OTLP_ENDPOINT": "http://127.0.0.1:14317",
}


def test_each_service_gets_its_settings_from_the_stack(tmp_path: Path) -> None:
    specs = Pipeline(run=tmp_path, stack_env=STACK, translators=1).specs()
    assert set(specs) == set(SERVICES)
    xds, tr, w = specs["xds"].env, specs["translator"].env, specs["watcher"].env
    assert xds["RIPPLE_XDS_LISTEN"] == "127.0.0.1:18000"
    assert xds["RIPPLE_XDS_GATEWAY_HTTP_PORT"] == str(GATEWAY_HTTP_PORT)
    assert xds["RIPPLE_XDS_REDIS_PREFIX"] == tr["RIPPLE_TRANSLATOR_REDIS_PREFIX"]
    assert (
        xds["RIPPLE_XDS_REDIS_URL"]
        == tr["RIPPLE_TRANSLATOR_REDIS_URL"]
        == STACK["RIPPLE_REDIS_URL"]
    )
    assert w["RIPPLE_WATCHER_KUBECONFIG"] == "/run/kubeconfig"
    assert w["RIPPLE_WATCHER_KAFKA_BOOTSTRAP"] == tr["RIPPLE_TRANSLATOR_KAFKA_BOOTSTRAP"]
    assert all(
        e[k] == STACK["RIPPLE_OTLP_ENDPOINT"] for e in (xds, tr, w) for k in e if "OTLP" in k
    )
    # Every env var of a service carries that service's prefix.
    for spec in specs.values():
        assert all(k.startswith(f"RIPPLE_{spec.service.upper()}_") for k in spec.env)


def test_translator_instances_share_everything_but_their_health_port_and_member_id(
    tmp_path: Path,
) -> None:
    pipeline = Pipeline(run=tmp_path, stack_env=STACK, translators=3)
    specs = pipeline.specs()
    names = ["xds", "translator", "translator-2", "translator-3", "watcher"]
    assert pipeline.instances() == names
    assert list(specs) == names
    first, *others = (specs[n] for n in names[1:4])
    assert all(spec.module == "ripple_translator" and spec.readyz is None for spec in others)
    ports = {spec.env["RIPPLE_TRANSLATOR_HEALTH_PORT"] for spec in (first, *others)}
    assert len(ports) == 3
    health = {
        specs["xds"].env["RIPPLE_XDS_HEALTH_PORT"],
        specs["watcher"].env["RIPPLE_WATCHER_HEALTH_PORT"],
    }
    assert not ports & health
    own = ("HEALTH_PORT", "GROUP_INSTANCE_ID")
    for spec in others:  # one group: no per-instance group id, same store and brokers
        rest = {k: v for k, v in spec.env.items() if not k.endswith(own)}
        assert rest == {k: v for k, v in first.env.items() if not k.endswith(own)}
    assert "RIPPLE_TRANSLATOR_GROUP_ID" not in first.env
    # Each is a static member of that group, named after its instance.
    assert [s.env["RIPPLE_TRANSLATOR_GROUP_INSTANCE_ID"] for s in (first, *others)] == names[1:4]


def test_instances_are_named_after_their_service() -> None:
    assert instance_names("translator", 3) == ["translator", "translator-2", "translator-3"]
    assert instance_names("xds") == ["xds"]
    assert service_of("translator-2") == "translator"
    assert service_of("watcher") == "watcher"
    with pytest.raises(PipelineError):
        Pipeline(translators=0)


def test_ports_move_together_for_a_second_stack(tmp_path: Path) -> None:
    ports = Ports.from_env(
        {"RIPPLE_GATEWAY_HTTP_PORT": "20080", "RIPPLE_PIPELINE_HEALTH_PORT": "28081"}
    )
    assert (ports.gateway_http, ports.watcher_health, ports.xds_health) == (20080, 28081, 28082)
    assert ports.translator_health(1) == 28083
    assert Ports.from_env({}) == Ports()
    specs = Pipeline(run=tmp_path, stack_env=STACK, ports=ports).specs()
    assert specs["xds"].env["RIPPLE_XDS_GATEWAY_HTTP_PORT"] == "20080"
    assert specs["xds"].readyz == "http://127.0.0.1:28082/readyz"


def test_the_stack_settings_come_from_the_given_run_directory(tmp_path: Path) -> None:
    (tmp_path / "env").write_text("KUBECONFIG=/other/kubeconfig\nRIPPLE_XDS_PORT=28000\n")
    pipeline = Pipeline(run=tmp_path)
    assert pipeline.xds_listen == "127.0.0.1:28000"
    with pytest.raises(PipelineError, match="RIPPLE_REDIS_URL"):
        pipeline.specs()


def test_the_translators_are_ready_only_when_every_instance_owns_partitions(
    tmp_path: Path,
) -> None:
    """A just-started instance counts as a member even before its pid looks like the
    service (before exec its cmdline is the launcher's): the group is not ready until it
    owns partitions too."""
    pipeline = Pipeline(run=tmp_path, stack_env=STACK, translators=2)
    assert not pipeline.translators_ready()  # nothing running
    sleeper = [sys.executable, "-c", "import time; time.sleep(30)"]
    procs = {name: subprocess.Popen(sleeper) for name in ("translator", "translator-2")}
    try:
        pipeline._procs.update(procs)
        (pipeline.service_dir("translator") / "partitions").parent.mkdir(parents=True)
        (pipeline.service_dir("translator") / "partitions").write_text("4")

        def assign(name: str, *partitions: int) -> None:
            pipeline.service_dir(name).mkdir(parents=True, exist_ok=True)
            with pipeline.log_path(name).open("a") as log:
                for p in partitions:
                    log.write(f'{{"partition": {p}, "event": "partition.assigned"}}\n')

        assign("translator", 0, 1, 2, 3)
        assert not pipeline.translators_ready()  # translator-2 has not joined yet
        assign("translator-2", 2, 3)
        assert not pipeline.translators_ready()  # 2 and 3 owned twice: mid-rebalance
        with pipeline.log_path("translator").open("a") as log:
            log.write('{"partition": 2, "event": "partition.revoked"}\n')
            log.write('{"partition": 3, "event": "partition.revoked"}\n')
        assert pipeline.translators_ready()
        assert "partition.assigned" in pipeline.log_tail("translator")  # both logs
        assert pipeline.log_tail("translator").count("partition.assigned") == 6
        procs["translator-2"].kill()
        procs["translator-2"].wait()
        assert not pipeline.translators_ready()  # a member died
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()


def test_the_group_is_ready_once_every_partition_has_exactly_one_owner() -> None:
    assert group_complete([set(range(12))], 12)  # one member owns all
    assert group_complete([set(range(6)), set(range(6, 12))], 12)
    assert not group_complete([set(range(12)), set()], 12)  # the second has not joined yet
    assert not group_complete([set(range(6)), set()], 12)  # mid-rebalance: some unowned
    assert not group_complete([set(range(7)), set(range(6, 12))], 12)  # one owned twice
    assert not group_complete([], 12)
    assert group_complete([{0}, {1}, set()], 2)  # more members than partitions


def test_watcher_translator_and_xds_share_one_private_sealing_key(tmp_path: Path) -> None:
    first = Pipeline(run=tmp_path, stack_env=STACK).specs()
    again = Pipeline(run=tmp_path, stack_env=STACK).specs()
    key = first["watcher"].env["RIPPLE_WATCHER_SEALING_KEY"]
    assert key == first["translator"].env["RIPPLE_TRANSLATOR_SEALING_KEY"]
    assert key == first["xds"].env["RIPPLE_XDS_SEALING_KEY"]
    assert key == again["watcher"].env["RIPPLE_WATCHER_SEALING_KEY"]  # made once
    assert len(base64.b64decode(key)) == 32
    Sealer.from_base64(key)  # the services accept it
    mode = stat.S_IMODE((tmp_path / "pipeline" / "sealing.key").stat().st_mode)
    assert mode == 0o600


def test_a_missing_stack_setting_is_named(tmp_path: Path) -> None:
    stack = {k: v for k, v in STACK.items() if k != "KUBECONFIG"}
    with pytest.raises(PipelineError, match="KUBECONFIG"):
        Pipeline(run=tmp_path, stack_env=stack).specs()


def test_a_recorded_pid_counts_only_if_it_is_the_service(tmp_path: Path) -> None:
    pipeline = Pipeline(run=tmp_path, stack_env=STACK)
    assert pipeline.pid("xds") is None  # nothing recorded
    pid_file = pipeline.service_dir("xds") / "pid"
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text(f"{os.getpid()}\n")  # alive, but pytest, not ripple_xds
    assert pipeline.pid("xds") is None
    assert not pipeline.is_running("xds")


def test_unknown_services_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="unknown"):
        Pipeline(run=tmp_path, stack_env=STACK).up(["envoy"])


def test_backend_listeners_parse() -> None:
    assert Listener.parse("be-a=8080") == Listener("be-a", 8080)
    for bad in ("be-a", "=8080", "be-a=http", "be-a=0", "be-a=70000"):
        with pytest.raises(argparse.ArgumentTypeError):
            Listener.parse(bad)


def test_the_backend_answer_names_backend_host_and_path() -> None:
    body = body_for("be-b", "app.e2e.test", "/v2")
    assert body == b"backend=be-b host=app.e2e.test path=/v2\n"
    assert Answer(200, body).shows("be-b")
    assert not Answer(200, body).shows("be-a")
    assert not Answer(503, body).shows("be-b")


def test_ingress_manifest_is_of_ripples_class() -> None:
    body = ingress_manifest("web", "a.e2e.test", [("/", "web"), ("/v2", "v2")])
    assert body["spec"]["ingressClassName"] == "ripple"
    paths = body["spec"]["rules"][0]["http"]["paths"]
    assert [(p["path"], p["backend"]["service"]["name"]) for p in paths] == [
        ("/", "web"),
        ("/v2", "v2"),
    ]


def test_the_translator_owns_what_was_assigned_and_not_revoked() -> None:
    lines = [
        '{"topic": "ripple.events", "partition": 3, "event": "partition.assigned"}',
        "==== 2026-11-25T18:58:37+0000 start: python -m ripple_translator",
        '{"topic": "ripple.events", "partition": 9, "event": "partition.assigned"}',
        '{"topic": "ripple.events", "partition": 3, "event": "partition.revoked"}',
        '{"tenant": "t", "partition": 9, "event": "tenant.write"}',
        '{"partition.assigned": broken json',
    ]
    assert owned_partitions(lines) == {9}


def test_the_demo_table_flags_errors() -> None:
    clean = Change(1, 0.5, "demo-x-shop", "new Ingress shop", 42.4, 9, 120, 0, 0)
    assert "42 ms" in clean.row()
    assert "ERRORS" not in clean.row()
    broken = Change(2, 1.0, "demo-x-shop", "switch / to Service v2", 50.0, 9, 120, 1, 0)
    assert broken.row().endswith("<-- ERRORS")
    untimed = Change(3, 2.0, "demo-x-broken", "broken Ingress (bad regex): 404", None, 1, 3, 0, 0)
    assert " - " in untimed.row()
    traffic = Traffic(port=1)
    traffic.sent = 240
    lines = summary([clean, broken, untimed], traffic)
    assert lines[0].startswith("3 changes; API -> served through Envoy: median 50 ms")
    assert "240 requests, 0 errors" in lines[1]


def test_demo_traffic_expects_and_forgets_routes() -> None:
    traffic = Traffic(port=1)
    traffic.expect("a.demo.test", "/", "be-a")
    traffic.expect("a.demo.test", "/v2", "be-b")
    traffic.expect("b.demo.test", "/", "be-a", "be-b")
    traffic.forget_path("a.demo.test", "/v2")
    assert set(traffic.routes) == {("a.demo.test", "/"), ("b.demo.test", "/")}
    traffic.forget("b.demo.test")
    assert traffic.routes == {("a.demo.test", "/"): frozenset({"be-a"})}


def test_jaeger_links_search_each_tenants_traces() -> None:
    lines = jaeger_links("http://127.0.0.1:16686/", ["demo-x-shop"])
    assert lines[0].startswith("Jaeger: UI http://127.0.0.1:16686/search?")
    assert lines[1].startswith("  traces of demo-x-shop: http://127.0.0.1:16686/api/traces?")
    assert "service=ripple-watcher" in lines[1]
    assert "demo-x-shop" in lines[1]


def test_probe_percentiles_are_nearest_rank() -> None:
    samples = [float(x) for x in range(1, 101)]
    got = percentiles(samples)
    assert (got["p50"], got["p90"], got["p99"], got["max"]) == (50.0, 90.0, 99.0, 100.0)
    assert percentiles([7.0])["p99"] == 7.0
    assert percentiles([]) == {}


def test_probe_plan_spreads_ingresses_over_tenants() -> None:
    plan = Plan(mode="quick", ingresses=100, tenants=10, probes=5, burst=20)
    loaded = plan.loaded()
    assert len(loaded) == 100
    assert len({ns for ns, _, _ in loaded}) == 10
    assert len({host for _, _, host in loaded}) == 100
    fresh = plan.fresh("n1p", 20)
    assert fresh == plan.fresh("n1p", 20)  # deterministic per tag
    assert not {h for _, _, h in fresh} & {h for _, _, h in loaded}
    assert {ns for ns, _, _ in fresh} <= {ns for ns, _, _ in loaded}


def _result(ingresses: int, date: str, p99: float) -> dict[str, object]:
    return {
        "date": date,
        "commit": "abc1234",
        "machine": {"summary": "2 cores, 24 GiB"},
        "plan": {"ingresses": ingresses, "tenants": ingresses // 10},
        "load": {"api_s": 160.0, "serving_s": 180.0},
        "probe": {
            "count": 200,
            "latency_ms": {"p50": 40.0, "p90": 70.0, "p99": p99, "max": p99 + 10},
        },
        "burst": {"count": 2000, "created_s": 13.0, "all_serving_s": 14.2},
        "prober": {"ok": 900, "failures": 0},
        "errors": {"total": 0},
    }


def test_probe_readme_table_keeps_the_newest_result_of_each_size() -> None:
    table = readme_table(
        [
            _result(20_000, "2026-11-25T20:00:00Z", 300.0),
            _result(20_000, "2026-11-25T21:00:00Z", 143.0),
            _result(100, "2026-11-25T21:00:00Z", 30.0),
        ]
    )
    lines = table.splitlines()
    assert lines[0] == README_BEGIN
    assert lines[-1] == README_END
    rows = lines[3:-1]
    assert len(rows) == 2
    assert rows[0].startswith("| 20,000 / 2,000 |")
    assert "/ 143 /" in rows[0]
    assert rows[1].startswith("| 100 / 10 |")
    text = f"# x\n\nbefore\n{README_BEGIN}\nold\n{README_END}\nafter\n"
    assert replace_block(text, table) == f"# x\n\nbefore\n{table}\nafter\n"
    with pytest.raises(ValueError, match="no"):
        replace_block("no markers", table)
