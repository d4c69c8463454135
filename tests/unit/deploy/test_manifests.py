"""The manifests under deploy/k8s agree with the services (no kubectl needed; the integration
tests render and dry-run them against the real apiserver): every RIPPLE_* variable they set
is a real setting of the right service and passes its validation, probes and ports hit what
the settings open, and every ripple container is locked down (non-root, read-only root fs,
no privilege escalation, requests and limits, probes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.deploy.support import K8S_DIR, SETTINGS, known_variables

OVERLAYS = ("dev", "production")


def read_env(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    return {k.strip(): v.strip() for k, v in pairs}


def yaml_docs(directory: Path) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(directory.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d and "kind" in d]
    return docs


def workloads(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["name"]: d
        for d in docs
        if d["kind"] in ("Deployment", "DaemonSet", "StatefulSet")
    }


def pod_env_names(workload: dict[str, Any]) -> list[str]:
    return [
        e["name"]
        for c in workload["spec"]["template"]["spec"]["containers"]
        for e in c.get("env", [])
    ]


BASE = yaml_docs(K8S_DIR / "base")
BASE_ENV = read_env(K8S_DIR / "base" / "config.env")


def merged_env(overlay: str | None) -> dict[str, str]:
    env = dict(BASE_ENV)
    if overlay:
        env.update(read_env(K8S_DIR / "overlays" / overlay / "config.env"))
    return env


@pytest.mark.parametrize("overlay", [None, *OVERLAYS])
def test_every_configured_variable_is_a_setting(overlay: str | None) -> None:
    known = known_variables()
    env = merged_env(overlay)
    unknown = sorted(set(env) - set(known))
    assert unknown == [], f"not a setting of any service: {unknown}"


def test_every_pod_env_variable_is_a_setting_of_its_own_service() -> None:
    known = known_variables()
    docs = BASE + yaml_docs(K8S_DIR / "overlays")  # with the overlays' patches
    for workload in (d for d in docs if d["kind"] in ("Deployment", "DaemonSet", "StatefulSet")):
        name = workload["metadata"]["name"]
        for container in workload["spec"]["template"]["spec"]["containers"]:
            for entry in container.get("env", []):
                var = entry["name"]
                if not var.startswith("RIPPLE_"):
                    continue
                assert var in known, f"{name}: {var} is not a setting"
                assert known[var] == container["name"], f"{name}: {var} is for {known[var]}"


@pytest.mark.parametrize("overlay", [None, *OVERLAYS])
@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_the_settings_validate(
    service: str, overlay: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the pods get (ConfigMap plus Secret-backed env) is accepted by the settings class."""
    prefix = f"RIPPLE_{service.upper()}_"
    for var, value in merged_env(overlay).items():
        if var.startswith(prefix):
            monkeypatch.setenv(var, value)
    # Values the pods get from the downward API and Secrets.
    for var in pod_env_names(workloads(BASE)[f"ripple-{service}"]):
        if var.endswith("SEALING_KEY"):
            monkeypatch.setenv(var, "A" * 43 + "=")
        elif var.startswith(prefix):
            monkeypatch.setenv(var, "ripple")
    settings: Any = SETTINGS[service]()
    assert settings.health_port == 8080
    assert settings.health_host == "0.0.0.0"


def test_probes_and_ports_follow_the_settings() -> None:
    loads = workloads(BASE)
    for service in SETTINGS:
        container = loads[f"ripple-{service}"]["spec"]["template"]["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["health"] == int(BASE_ENV[f"RIPPLE_{service.upper()}_HEALTH_PORT"])
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
        assert container["image"] == f"ripple-{service}"
    xds = loads["ripple-xds"]["spec"]["template"]["spec"]["containers"][0]
    ads_port = int(BASE_ENV["RIPPLE_XDS_LISTEN"].rsplit(":", 1)[1])
    assert {"name": "grpc-ads", "containerPort": ads_port, "protocol": "TCP"} in xds["ports"]
    gateway = loads["ripple-gateway"]["spec"]["template"]["spec"]["containers"][0]
    host_ports = {p["hostPort"] for p in gateway["ports"]}
    assert int(BASE_ENV["RIPPLE_XDS_GATEWAY_HTTP_PORT"]) in host_ports
    assert int(BASE_ENV["RIPPLE_XDS_GATEWAY_HTTPS_PORT"]) in host_ports


def test_watcher_runs_two_replicas_with_leases_in_its_namespace() -> None:
    watcher = workloads(BASE)["ripple-watcher"]
    assert watcher["spec"]["replicas"] == 2
    env = {e["name"]: e for e in watcher["spec"]["template"]["spec"]["containers"][0]["env"]}
    lease_ns = env["RIPPLE_WATCHER_LEASE_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert lease_ns == "metadata.namespace"


def test_every_container_is_locked_down() -> None:
    for name, workload in workloads(BASE).items():
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert {"requests", "limits"} <= set(container["resources"]), name
            assert "memory" in container["resources"]["limits"], name
            assert "readinessProbe" in container, name
            assert "livenessProbe" in container, name


def test_only_the_watcher_and_translator_get_an_api_token() -> None:
    accounts = {d["metadata"]["name"]: d for d in BASE if d["kind"] == "ServiceAccount"}
    tokens = {n for n, sa in accounts.items() if sa.get("automountServiceAccountToken", True)}
    assert tokens == {"ripple-watcher", "ripple-translator"}
    for name, workload in workloads(BASE).items():
        pod = workload["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == name
        if name not in tokens:
            assert pod["automountServiceAccountToken"] is False, name


def test_xds_scales_with_an_hpa_and_keeps_a_pdb() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in BASE}
    assert ("HorizontalPodAutoscaler", "ripple-xds") in kinds
    assert ("PodDisruptionBudget", "ripple-xds") in kinds
    assert "replicas" not in workloads(BASE)["ripple-xds"]["spec"]  # the HPA owns it
