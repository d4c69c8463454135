"""The stack's kubectl tool: `stack/stack up` built it from stack/build/kube (the
kube-apiserver's own Go module), cached it by version and wrote its path to the env file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import StackEnv
from tests.integration.deploy.kubectl import REPO_DIR, Kubectl


def pinned_version() -> str:
    go_mod = (REPO_DIR / "stack" / "build" / "kube" / "go.mod").read_text()
    line = next(ln for ln in go_mod.splitlines() if ln.split()[:1] == ["k8s.io/kubernetes"])
    return line.split()[1]


def test_kubectl_is_the_pinned_release_cached_by_version(stack: StackEnv) -> None:
    binary = Path(stack["RIPPLE_KUBECTL"])
    assert binary.name == f"kubectl-{pinned_version()}"
    out = subprocess.run(
        [str(binary), "version", "--client", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    assert json.loads(out)["clientVersion"]["gitVersion"] == pinned_version()


def test_kubectl_talks_to_the_stack_apiserver(stack: StackEnv) -> None:
    out = Kubectl.from_stack(stack).run("version", "-o", "json").stdout
    assert json.loads(out)["serverVersion"]["gitVersion"] == pinned_version()
