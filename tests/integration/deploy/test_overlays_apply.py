"""Every kustomization under deploy/k8s renders with the stack's kubectl (kustomize built in)
and is accepted by the real kube-apiserver in a server-side dry run: schemas, defaults and
admission (RBAC objects, HPA, PDB, NetworkPolicies, probes, securityContext) all checked by the
server. Each target is rendered into a fresh namespace that exists for real during the test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import StackEnv
from tests.integration.deploy.kubectl import (
    K8S_DIR,
    TARGETS,
    Kubectl,
    documents,
    names_of,
    scratch_namespace,
    wrap,
)


@pytest.fixture(scope="module")
def kubectl(stack: StackEnv) -> Kubectl:
    return Kubectl.from_stack(stack)


@pytest.mark.parametrize("target", TARGETS)
def test_target_is_accepted_by_a_server_side_dry_run(
    kubectl: Kubectl, target: str, tmp_path: Path
) -> None:
    with scratch_namespace(kubectl, "it-deploy") as ns:
        rendered = kubectl.kustomize(wrap(tmp_path, target, namespace=ns))
        docs = documents(rendered)
        assert names_of(docs, "Namespace") == [ns]
        assert {"ripple-watcher", "ripple-translator", "ripple-xds"} <= set(
            names_of(docs, "Deployment")
        )
        assert names_of(docs, "DaemonSet") == ["ripple-gateway"]

        out = kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=rendered).stdout
        lines = [line for line in out.splitlines() if line.strip()]
        # one line per object, each accepted by the server (created / configured / unchanged)
        assert len(lines) == len(docs), out
        assert all(line.endswith("(server dry run)") for line in lines), out


def test_dry_run_rejects_a_broken_manifest(kubectl: Kubectl, tmp_path: Path) -> None:
    """The check can fail: the same dry run refuses an invalid object."""
    with scratch_namespace(kubectl, "it-deploy") as ns:
        rendered = kubectl.kustomize(wrap(tmp_path, "base", namespace=ns))
        broken = rendered.replace("maxReplicas: 10", "maxReplicas: -1", 1)
        assert broken != rendered
        proc = kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=broken, check=False)
        assert proc.returncode != 0
        assert "maxReplicas" in proc.stderr


def test_compose_demo_objects_are_accepted(kubectl: Kubectl) -> None:
    """compose.yaml's `demo` service applies deploy/compose/demo.yaml: the same server check."""
    demo = documents((K8S_DIR.parent / "compose" / "demo.yaml").read_text())
    with scratch_namespace(kubectl, "it-demo") as ns:
        objects = [d for d in demo if d["kind"] != "Namespace"]
        for doc in objects:
            if "namespace" in doc["metadata"]:
                doc["metadata"]["namespace"] = ns
        manifest = "\n---\n".join(json.dumps(d) for d in objects)
        out = kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=manifest).stdout
        assert out.count("(server dry run)") == len(objects), out
