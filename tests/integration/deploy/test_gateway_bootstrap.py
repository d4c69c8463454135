"""The in-cluster gateway's Envoy configuration is one the real Envoy 1.40 accepts: the rendered
bootstrap ConfigMap, with the DaemonSet's own command line, passes `envoy --mode validate`, and
it points Delta ADS at the xds Service with the node identified by the Kubernetes node name."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import StackEnv
from tests.integration.deploy.kubectl import K8S_DIR, TARGETS, Kubectl, documents


def only(docs: list[dict[str, Any]], kind: str, name_prefix: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name_prefix)]
    assert len(found) == 1, [d["metadata"]["name"] for d in found]
    return found[0]


@pytest.mark.parametrize("target", TARGETS)
def test_envoy_validates_the_gateway_bootstrap(
    stack: StackEnv, target: str, tmp_path: Path
) -> None:
    docs = documents(Kubectl.from_stack(stack).kustomize(K8S_DIR / target))
    bootstrap_cm = only(docs, "ConfigMap", "ripple-gateway-bootstrap")
    daemonset = only(docs, "DaemonSet", "ripple-gateway")
    pod = daemonset["spec"]["template"]["spec"]
    container = pod["containers"][0]
    volume = next(v for v in pod["volumes"] if v["name"] == "bootstrap")
    assert volume["configMap"]["name"] == bootstrap_cm["metadata"]["name"]
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"

    text = bootstrap_cm["data"]["bootstrap.yaml"]
    bootstrap = yaml.safe_load(text)
    ads = bootstrap["dynamic_resources"]["ads_config"]
    assert ads["api_type"] == "DELTA_GRPC"
    xds = next(c for c in bootstrap["static_resources"]["clusters"] if c["name"] == "xds")
    address = xds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    service = only(docs, "Service", "ripple-xds")
    ads_port = next(p for p in service["spec"]["ports"] if p["name"] == "grpc-ads")["port"]
    assert address["socket_address"] == {"address": "ripple-xds", "port_value": ads_port}

    config = tmp_path / "bootstrap.yaml"
    config.write_text(text)
    args = [a.replace("$(NODE_NAME)", "node-1") for a in container["args"]]
    args[args.index("--config-path") + 1] = str(config)
    assert args[args.index("--service-node") + 1] == "node-1"
    proc = subprocess.run(
        [stack["RIPPLE_ENVOY_BIN"], *args, "--mode", "validate"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "OK" in proc.stdout + proc.stderr


def test_envoy_rejects_a_broken_bootstrap(stack: StackEnv, tmp_path: Path) -> None:
    """The check can fail: Envoy refuses a bootstrap with an unknown field."""
    config = tmp_path / "bootstrap.yaml"
    text = (K8S_DIR / "base" / "gateway" / "bootstrap.yaml").read_text()
    config.write_text(text.replace("api_type: DELTA_GRPC", "api_type: DELTA_GRPC\n    bogus: 1"))
    proc = subprocess.run(
        [stack["RIPPLE_ENVOY_BIN"], "--mode", "validate", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
