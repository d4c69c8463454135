"""The in-cluster gateway's Envoy configuration is one the real Envoy 1.40 accepts: the rendered
bootstrap ConfigMap, with the DaemonSet's own command line, passes `envoy --mode validate`, and
it points Delta ADS at the xds Service with the node identified by the Kubernetes node name.
The gateway runs in the pod network (so the xds NetworkPolicy can select it). In production
the bootstrap speaks mTLS to xds with the certificate files of the Secret the DaemonSet mounts
(validated with real certificate files in their place), and is otherwise the base's."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import StackEnv
from tests.integration.deploy.kubectl import K8S_DIR, TARGETS, Kubectl, documents
from tests.unit.xds import certs

GATEWAY_TLS_DIR = "/etc/ripple/gateway-tls"


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
    assert not pod.get("hostNetwork")
    assert pod.get("dnsPolicy", "ClusterFirst") == "ClusterFirst"

    text = bootstrap_cm["data"]["bootstrap.yaml"]
    bootstrap = yaml.safe_load(text)
    ads = bootstrap["dynamic_resources"]["ads_config"]
    assert ads["api_type"] == "DELTA_GRPC"
    xds = next(c for c in bootstrap["static_resources"]["clusters"] if c["name"] == "xds")
    address = xds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    service = only(docs, "Service", "ripple-xds")
    ads_port = next(p for p in service["spec"]["ports"] if p["name"] == "grpc-ads")["port"]
    assert address["socket_address"] == {"address": "ripple-xds", "port_value": ads_port}

    tls = xds.get("transport_socket")
    if target == "overlays/production":
        assert tls is not None, "production speaks mTLS to xds"
        text = text.replace(GATEWAY_TLS_DIR, str(_tls_files(pod, container, tmp_path)))
    else:
        assert tls is None

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


def _tls_files(pod: dict[str, Any], container: dict[str, Any], workdir: Path) -> Path:
    """The files of the gateway's TLS Secret, as the DaemonSet mounts them, with test
    certificates: the directory to put in the bootstrap's place."""
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == GATEWAY_TLS_DIR)
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "ripple-gateway-tls"
    ca = certs.authority()
    client = certs.issued(ca, uris=("spiffe://cluster.local/gateway/ripple-gateway",))
    data = {"tls.crt": client.certificate, "tls.key": client.private_key}
    data["ca.crt"] = ca.pem.certificate
    directory = workdir / "gateway-tls"
    directory.mkdir()
    for item in volume["secret"]["items"]:
        (directory / item["path"]).write_bytes(data[item["key"]])
    return directory


def test_the_production_bootstrap_is_the_bases_with_mtls_to_xds() -> None:
    """overlays/production replaces the bootstrap: it may differ only by the TLS socket."""
    base = yaml.safe_load((K8S_DIR / "base" / "gateway" / "bootstrap.yaml").read_text())
    production = yaml.safe_load(
        (K8S_DIR / "overlays" / "production" / "gateway-bootstrap.yaml").read_text()
    )
    xds = next(c for c in production["static_resources"]["clusters"] if c["name"] == "xds")
    tls = xds.pop("transport_socket")
    assert production == base
    context = tls["typed_config"]
    assert context["sni"] == "ripple-xds"
    common = context["common_tls_context"]
    (pair,) = common["tls_certificates"]
    assert pair["certificate_chain"]["filename"] == f"{GATEWAY_TLS_DIR}/tls.crt"
    assert pair["private_key"]["filename"] == f"{GATEWAY_TLS_DIR}/tls.key"
    validation = common["validation_context"]
    assert validation["trusted_ca"]["filename"] == f"{GATEWAY_TLS_DIR}/ca.crt"
    assert validation["match_typed_subject_alt_names"] == [
        {"san_type": "DNS", "matcher": {"exact": "ripple-xds"}}
    ]


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
