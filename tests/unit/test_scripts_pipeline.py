"""The pure parts of the local-run scripts: the services' settings built from the stack's,
the shared sealing key, pid ownership, and the test backend's arguments and answers."""

from __future__ import annotations

import argparse
import base64
import os
import stat
from pathlib import Path

import pytest

from ripple_common.sealing import Sealer
from scripts.demo import Answer, ingress_manifest
from scripts.netns_backend import Listener, body_for
from scripts.pipeline import (
    GATEWAY_HTTP_PORT,
    SERVICES,
    Pipeline,
    PipelineError,
    owned_partitions,
)

STACK = {
    "RIPPLE_XDS_PORT": "18000",
    "RIPPLE_REDIS_URL": "redis://127.0.0.1:16379/0",
    "KUBECONFIG": "/run/kubeconfig",
    "RIPPLE_KAFKA_BOOTSTRAP": "127.0.0.1:19092",
    "RIPPLE_OTLP_ENDPOINT": "http://127.0.0.1:14317",
}


def test_each_service_gets_its_settings_from_the_stack(tmp_path: Path) -> None:
    specs = Pipeline(run=tmp_path, stack_env=STACK).specs()
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
    for name, spec in specs.items():
        assert all(k.startswith(f"RIPPLE_{name.upper()}_") for k in spec.env)


def test_watcher_and_translator_share_one_private_sealing_key(tmp_path: Path) -> None:
    first = Pipeline(run=tmp_path, stack_env=STACK).specs()
    again = Pipeline(run=tmp_path, stack_env=STACK).specs()
    key = first["watcher"].env["RIPPLE_WATCHER_SEALING_KEY"]
    assert key == first["translator"].env["RIPPLE_TRANSLATOR_SEALING_KEY"]
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
