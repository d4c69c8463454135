"""deploy/monitoring/ checked by real tools: Prometheus' promtool (built from Go modules by
`stack/stack install promtool`, its path in the stack's env file as RIPPLE_PROMTOOL) checks
the example Prometheus configuration and the alert rules, runs the rules' unit tests
(ripple-alerts.test.yaml: each alert fires when it should, with its labels and annotations,
and stays quiet otherwise) and parses every query of the Grafana dashboard; the dashboard JSON
is validated against the schema of what Grafana needs of it; every ripple metric the rules and
the dashboard name is one the services export (their /metrics pages rendered here)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from ripple_common.health import PromText
from ripple_translator.metrics import MetricsView as TranslatorView
from ripple_translator.metrics import TranslatorStats
from ripple_translator.metrics import render_metrics as render_translator
from ripple_xds.health import MetricsView as XdsView
from ripple_xds.health import render_metrics as render_xds
from ripple_xds.propagation import PropagationMetrics
from ripple_xds.secrets import SecretStats
from ripple_xds.source import SourceStats
from ripple_xds.stream_log import XdsStats
from scripts.stack_env import load_stack_env

ROOT = Path(__file__).resolve().parents[3]
MONITORING = ROOT / "deploy" / "monitoring"
RULES = MONITORING / "prometheus" / "ripple-alerts.yaml"
RULE_TESTS = MONITORING / "prometheus" / "ripple-alerts.test.yaml"
DASHBOARD = MONITORING / "grafana" / "ripple-dashboard.json"
WATCHER_HEALTH = ROOT / "services" / "watcher" / "src" / "ripple_watcher" / "health.py"
SUFFIXES = ("_bucket", "_count", "_sum")


def promtool() -> str:
    """The promtool `stack/stack install promtool` built (never skipped: the stack builds it)."""
    path = load_stack_env().get("RIPPLE_PROMTOOL")
    if not path:
        cache = Path(os.environ.get("RIPPLE_CACHE", Path.home() / ".cache" / "ripple"))
        found = sorted((cache / "bin").glob("promtool-v*"))
        path = str(found[-1]) if found else ""
    if not path or not Path(path).is_file():
        pytest.fail("promtool is missing: run `stack/stack install promtool` (or ./dev up)")
    return path


def run(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p["targets"]]


def rule_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [str(r["expr"]) for g in groups for r in g["rules"]]


def test_alert_rules_pass_promtool_check_and_their_unit_tests() -> None:
    checked = run("check", "rules", RULES.name, cwd=RULES.parent)
    assert "SUCCESS: 9 rules found" in checked, checked
    tested = run("test", "rules", RULE_TESTS.name, cwd=RULES.parent)
    assert "SUCCESS" in tested, tested
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    covered = {
        check["alertname"]
        for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for check in case["alert_rule_test"]
    }
    assert covered == alerts  # every alert has a unit test


def test_the_example_prometheus_config_loads_the_rules() -> None:
    checked = run("check", "config", "prometheus.yaml", cwd=RULES.parent)
    assert "SUCCESS: prometheus.yaml is valid prometheus config file syntax" in checked, checked
    assert "SUCCESS: 9 rules found" in checked, checked


def test_every_dashboard_query_parses_with_promtool(tmp_path: Path) -> None:
    exprs = dashboard_exprs()
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"ripple:dashboard_{i}", "expr": e} for i, e in enumerate(exprs)
                ],
            }
        ]
    }
    (tmp_path / "dashboard.yaml").write_text(yaml.safe_dump(rules))
    checked = run("check", "rules", "dashboard.yaml", cwd=tmp_path)
    assert f"SUCCESS: {len(exprs)} rules found" in checked, checked


TARGET = {
    "type": "object",
    "required": ["refId", "expr", "datasource"],
    "properties": {
        "refId": {"type": "string", "pattern": "^[A-Z]$"},
        "expr": {"type": "string", "minLength": 1},
        "legendFormat": {"type": "string"},
        "datasource": {"$ref": "#/$defs/datasource"},
    },
}
PANEL = {
    "type": "object",
    "required": ["id", "type", "title", "gridPos", "targets", "datasource"],
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "type": {"enum": ["timeseries", "stat", "table", "gauge", "bargauge", "heatmap"]},
        "title": {"type": "string", "minLength": 1},
        "gridPos": {
            "type": "object",
            "required": ["x", "y", "w", "h"],
            "properties": {
                "x": {"type": "integer", "minimum": 0, "maximum": 23},
                "y": {"type": "integer", "minimum": 0},
                "w": {"type": "integer", "minimum": 1, "maximum": 24},
                "h": {"type": "integer", "minimum": 1},
            },
        },
        "targets": {"type": "array", "minItems": 1, "items": TARGET},
        "datasource": {"$ref": "#/$defs/datasource"},
        "fieldConfig": {"type": "object", "required": ["defaults", "overrides"]},
    },
}
# What Grafana (schemaVersion 39, dashboard JSON model) needs to import the dashboard.
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["uid", "title", "schemaVersion", "panels", "templating", "time"],
    "properties": {
        "uid": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,40}$"},
        "title": {"type": "string", "minLength": 1},
        "schemaVersion": {"type": "integer", "minimum": 36},
        "panels": {"type": "array", "minItems": 1, "items": PANEL},
        "time": {"type": "object", "required": ["from", "to"]},
        "templating": {
            "type": "object",
            "required": ["list"],
            "properties": {
                "list": {
                    "type": "array",
                    "contains": {
                        "type": "object",
                        "required": ["name", "type", "query"],
                        "properties": {
                            "name": {"const": "datasource"},
                            "type": {"const": "datasource"},
                            "query": {"const": "prometheus"},
                        },
                    },
                }
            },
        },
    },
    "$defs": {
        "datasource": {
            "type": "object",
            "required": ["type", "uid"],
            "properties": {"type": {"const": "prometheus"}, "uid": {"const": "${datasource}"}},
        }
    },
}


def test_the_dashboard_is_valid_and_its_panels_tile_the_grid() -> None:
    board = dashboard()
    jsonschema.validate(board, SCHEMA)
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not mine & cells, f"panel {panel['title']!r} overlaps another"
        cells |= mine
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


def test_a_broken_dashboard_is_refused_by_the_schema() -> None:
    board = dashboard()
    del board["panels"][0]["targets"][0]["expr"]
    with pytest.raises(jsonschema.ValidationError, match="'expr' is a required property"):
        jsonschema.validate(board, SCHEMA)


def exported_metrics() -> set[str]:
    """Every metric name the xds and translator /metrics pages render (with data, so each
    labelled family has samples) and the watcher's families (from its renderer's source)."""
    propagation = PropagationMetrics()
    propagation.observe("t", {"total": 0.1, "write_apply": 0.01})
    xds_text = render_xds(
        XdsView(
            xds=XdsStats(),
            source=SourceStats(),
            position=(0, 0),
            resources={},
            ready=True,
            secrets=SecretStats(),
        )
    )[1]
    out = PromText("ripple_xds")
    propagation.render(out)
    stats = TranslatorStats()
    translator_text = render_translator(
        TranslatorView(
            stats=stats,
            partitions=1,
            tenants=1,
            in_flight=0,
            waiting=0,
            ready=True,
            lag={("ripple.events", 0): 1},
        )
    )[1]
    names = {
        line.split()[2]
        for line in (xds_text + out.text() + translator_text).splitlines()
        if line.startswith("# TYPE ")
    }
    watcher = re.findall(r'family\(\s*"(\w+)"', WATCHER_HEALTH.read_text())
    return names | {f"ripple_watcher_{n}" for n in watcher}


def test_every_metric_the_rules_and_the_dashboard_name_is_exported() -> None:
    exported = exported_metrics()
    assert "ripple_translator_consumer_lag" in exported
    named = {
        m for e in rule_exprs() + dashboard_exprs() for m in re.findall(r"\bripple_[a-z_]+", e)
    }
    missing = set()
    for name in named:
        base = next((name[: -len(s)] for s in SUFFIXES if name.endswith(s)), name)
        if name not in exported and base not in exported:
            missing.add(name)
    assert not missing, f"not exported by any service: {sorted(missing)}"
