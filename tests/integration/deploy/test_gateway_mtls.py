"""The ADS port as deployed: only gateway pods reach it, and in production only over mTLS.

- In every target, the xds NetworkPolicy admits port 18000 from the gateway DaemonSet's pods
  only (a podSelector matching its pod labels; the gateway is not on the host network, where a
  podSelector would not match it).
- The production overlay, run for real: certificates issued with the documented script
  (`overlays/production/xds-certs.sh`, openssl) are put where the rendered manifests mount the
  Secrets; an xds server started with the rendered ConfigMap's RIPPLE_XDS_* settings (mTLS,
  gateways) and a real Envoy started with the rendered gateway bootstrap and the DaemonSet's
  command line (Service address, ports and file paths pointed at this machine) connect: the
  gateway is identified by its certificate as `ripple-gateway` and gets its listener; the
  same Envoy with a certificate of another gateway gets nothing."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from ripple_common.lifecycle import Lifecycle
from ripple_xds.app import start_xds
from ripple_xds.service import XdsService
from ripple_xds.settings import XdsSettings
from tests.conftest import StackEnv
from tests.integration.deploy.kubectl import K8S_DIR, TARGETS, Kubectl, documents
from tests.integration.loopback import free_port, http_get
from tests.integration.xds_service.support import stop_process, tail, until

PRODUCTION = "overlays/production"
CERT_SCRIPT = K8S_DIR / PRODUCTION / "xds-certs.sh"
ADS_PORT = 18000


def _one(docs: list[dict[str, Any]], kind: str, name_prefix: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name_prefix)]
    assert len(found) == 1, [d["metadata"]["name"] for d in found]
    return found[0]


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a Kubernetes label selector selects `labels`."""
    assert set(selector) <= {"matchLabels", "matchExpressions"}, selector
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not ok:
            return False
    return True


@pytest.mark.parametrize("target", TARGETS)
def test_only_gateway_pods_reach_the_ads_port(stack: StackEnv, target: str) -> None:
    docs = documents(Kubectl.from_stack(stack).kustomize(K8S_DIR / target))
    gateway = _one(docs, "DaemonSet", "ripple-gateway")["spec"]["template"]
    xds = _one(docs, "Deployment", "ripple-xds")["spec"]["template"]
    assert not gateway["spec"].get("hostNetwork")
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    admitting = [
        rule
        for p in policies
        if _matches(p["spec"]["podSelector"], xds["metadata"]["labels"])
        and "Ingress" in p["spec"]["policyTypes"]
        for rule in p["spec"].get("ingress", [])
        if not rule.get("ports") or any(r.get("port") == ADS_PORT for r in rule["ports"])
    ]
    assert admitting, "no rule admits the ADS port"
    for rule in admitting:
        peers = rule.get("from")
        assert peers, f"{ADS_PORT} admitted from anywhere: {rule}"
        for peer in peers:
            assert set(peer) == {"podSelector"}, peer  # this namespace's pods, no ipBlock
            assert _matches(peer["podSelector"], gateway["metadata"]["labels"]), peer
            assert peer["podSelector"]["matchLabels"], "an empty selector admits every pod"


# -- the production overlay for real --------------------------------------------------------


def _mounted(
    pod: dict[str, Any], container: dict[str, Any], secret: str
) -> tuple[str, dict[str, str]]:
    """(mount path, file name -> Secret key) of `secret` in `container`."""
    volumes = [v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == secret]
    assert len(volumes) == 1, f"Secret {secret} is not mounted once: {pod['volumes']}"
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volumes[0]["name"]]
    volume = volumes[0]
    items = {i["path"]: i["key"] for i in volume["secret"]["items"]}
    return str(mount["mountPath"]), items


def _secret_dir(workdir: Path, name: str, items: dict[str, str], data: dict[str, Path]) -> Path:
    """The files a Secret volume would hold, from the issued files `data` (Secret key ->
    file)."""
    directory = workdir / name
    directory.mkdir()
    for path, key in items.items():
        shutil.copy(data[key], directory / path)
    return directory


def _issue(workdir: Path, *, gateway: str, out: Path | None = None) -> Path:
    """Certificates by the documented script (a CA already in `out` is reused)."""
    out = out if out is not None else workdir / f"certs-{gateway}"
    subprocess.run(
        ["sh", str(CERT_SCRIPT), str(out), "cluster.local", gateway],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out


@asynccontextmanager
async def _xds(settings: XdsSettings) -> AsyncIterator[XdsService]:
    lc = Lifecycle()
    try:
        yield await start_xds(lc, settings)
    finally:
        await lc.aclose()


def _local_bootstrap(text: str, *, tls_dir: str, local_tls: Path, xds_port: int) -> tuple[str, int]:
    """The rendered bootstrap pointed at this machine: the TLS files, the xds address, free
    admin and health ports. Returns it and the admin port."""
    bootstrap = yaml.safe_load(text.replace(tls_dir, str(local_tls)))
    admin_port = free_port()
    bootstrap["admin"]["address"]["socket_address"] = {
        "address": "127.0.0.1",
        "port_value": admin_port,
    }
    for listener in bootstrap["static_resources"]["listeners"]:
        listener["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": free_port()}
    (xds,) = [c for c in bootstrap["static_resources"]["clusters"] if c["name"] == "xds"]
    endpoint = xds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"]["address"] == "ripple-xds"
    endpoint["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": xds_port}
    return json.dumps(bootstrap), admin_port


async def test_production_gateways_reach_xds_over_mtls_only_as_their_gateway(
    stack: StackEnv, prefix: str, tmp_path: Path
) -> None:
    docs = documents(Kubectl.from_stack(stack).kustomize(K8S_DIR / PRODUCTION))
    config = _one(docs, "ConfigMap", "ripple-config")["data"]
    bootstrap_text = _one(docs, "ConfigMap", "ripple-gateway-bootstrap")["data"]["bootstrap.yaml"]
    gateway_pod = _one(docs, "DaemonSet", "ripple-gateway")["spec"]["template"]["spec"]
    envoy = gateway_pod["containers"][0]
    xds_pod = _one(docs, "Deployment", "ripple-xds")["spec"]["template"]["spec"]
    xds_container = xds_pod["containers"][0]
    cluster = envoy["args"][envoy["args"].index("--service-cluster") + 1]

    issued = _issue(tmp_path, gateway=cluster)
    by_key = {
        "xds": {"tls.crt": issued / "xds.crt", "tls.key": issued / "xds.key"},
        "gateway": {"tls.crt": issued / "gateway.crt", "tls.key": issued / "gateway.key"},
    }
    for files in by_key.values():
        files["ca.crt"] = issued / "ca.crt"

    # xds: the rendered settings with the mounted Secret's directory in its place.
    xds_mount, xds_items = _mounted(xds_pod, xds_container, "ripple-xds-tls")
    xds_dir = _secret_dir(tmp_path, "xds-tls", xds_items, by_key["xds"])
    ours = {k: v for k, v in config.items() if k.startswith("RIPPLE_XDS_TLS_")}
    assert set(ours) == {
        "RIPPLE_XDS_TLS_CERT_FILE",
        "RIPPLE_XDS_TLS_KEY_FILE",
        "RIPPLE_XDS_TLS_CLIENT_CA_FILE",
    }
    tls = {
        k.removeprefix("RIPPLE_XDS_").lower(): v.replace(xds_mount, str(xds_dir))
        for k, v in ours.items()
    }
    gateways = json.loads(config["RIPPLE_XDS_GATEWAYS"])
    assert cluster in gateways, "the DaemonSet's gateway is a configured one"
    settings = XdsSettings(
        redis_url=stack["RIPPLE_REDIS_URL"],
        redis_prefix=prefix,
        listen="127.0.0.1:0",
        gateway_http_address="127.0.0.1",
        gateway_http_port=free_port(),
        gateway_https_port=0,
        gateways=gateways,
        shutdown_grace_s=0.2,
        block_ms=200,
        **tls,
    )
    assert settings.mtls

    gateway_mount, gateway_items = _mounted(gateway_pod, envoy, "ripple-gateway-tls")
    async with _xds(settings) as service:
        good = _secret_dir(tmp_path, "gateway-tls", gateway_items, by_key["gateway"])
        await _envoy_gets_listener(
            stack,
            tmp_path,
            service,
            envoy_args=envoy["args"],
            bootstrap=bootstrap_text,
            tls_dir=gateway_mount,
            local_tls=good,
            name="good",
        )
        assert service.stats.nodes_rejected == 0

        # A certificate of the same CA for another gateway: refused, whatever the node says.
        other = tmp_path / "certs-other"
        other.mkdir()
        for name in ("ca.crt", "ca.key"):
            shutil.copy(issued / name, other / name)
        _issue(tmp_path, gateway="other-gateway", out=other)
        foreign = {"tls.crt": other / "gateway.crt", "tls.key": other / "gateway.key"}
        foreign["ca.crt"] = issued / "ca.crt"
        bad = _secret_dir(tmp_path, "gateway-tls-other", gateway_items, foreign)
        with pytest.raises(AssertionError, match="no listener"):
            await _envoy_gets_listener(
                stack,
                tmp_path,
                service,
                envoy_args=envoy["args"],
                bootstrap=bootstrap_text,
                tls_dir=gateway_mount,
                local_tls=bad,
                name="foreign",
                within_s=4,
            )
        assert service.stats.nodes_rejected >= 1


def _start_envoy(binary: str, args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("w") as out:
        return subprocess.Popen([binary, *args], stdout=out, stderr=subprocess.STDOUT)


async def _envoy_gets_listener(
    stack: StackEnv,
    workdir: Path,
    service: XdsService,
    *,
    envoy_args: list[str],
    bootstrap: str,
    tls_dir: str,
    local_tls: Path,
    name: str,
    within_s: float = 20,
) -> None:
    text, admin_port = _local_bootstrap(
        bootstrap, tls_dir=tls_dir, local_tls=local_tls, xds_port=service.server.port
    )
    config = workdir / f"bootstrap-{name}.json"
    config.write_text(text)
    args = [a.replace("$(NODE_NAME)", f"node-{name}") for a in envoy_args]
    args[args.index("--config-path") + 1] = str(config)
    args += ["--concurrency", "1", "--base-id", str(free_port()), "--disable-hot-restart"]
    log = workdir / f"envoy-{name}.log"
    proc = await asyncio.to_thread(_start_envoy, stack["RIPPLE_ENVOY_BIN"], args, log)
    try:

        async def has_listener() -> bool:
            assert proc.poll() is None, tail(log)
            try:
                code, body = await asyncio.to_thread(http_get, admin_port, "/listeners")
            except OSError:
                return False  # the admin endpoint is not up yet
            return code == 200 and "ripple-http" in body

        try:
            await until(
                f"{name}: listener ripple-http over mTLS",
                has_listener,
                logs=[log],
                within_s=within_s,
            )
        except AssertionError as exc:
            raise AssertionError(f"no listener: {exc}") from None
    finally:
        await asyncio.to_thread(stop_process, proc)
