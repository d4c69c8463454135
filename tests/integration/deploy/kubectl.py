"""kubectl against the local stack's kube-apiserver, for the deploy/k8s tests.

The binary is the stack's own (`stack/stack up` builds it and writes RIPPLE_KUBECTL to the env
file). Every test works in a namespace of its own, made here and removed afterwards (there is
no namespace controller: deleting a Namespace leaves it Terminating until it is finalized,
which `delete_namespace` does, as the namespace controller's last step would).
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import StackEnv

REPO_DIR = Path(__file__).resolve().parents[3]
K8S_DIR = REPO_DIR / "deploy" / "k8s"
# Every kustomization a user may apply: the base and each overlay.
TARGETS = ("base", "overlays/dev", "overlays/production")


class KubectlError(AssertionError):
    pass


@dataclass(frozen=True, slots=True)
class Kubectl:
    binary: str
    kubeconfig: str

    @classmethod
    def from_stack(cls, stack: StackEnv) -> Kubectl:
        return cls(binary=stack["RIPPLE_KUBECTL"], kubeconfig=stack["KUBECONFIG"])

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [self.binary, "--kubeconfig", self.kubeconfig, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and proc.returncode != 0:
            raise KubectlError(
                f"kubectl {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}{proc.stdout}"
            )
        return proc

    def kustomize(self, directory: Path) -> str:
        return self.run("kustomize", str(directory)).stdout

    def can_i(self, subject: str, verb: str, resource: str, *, namespace: str | None) -> bool:
        scope = ["--namespace", namespace] if namespace else ["--all-namespaces"]
        proc = self.run("auth", "can-i", verb, resource, "--as", subject, *scope, check=False)
        answer = proc.stdout.strip()
        if answer not in ("yes", "no"):
            raise KubectlError(f"auth can-i {verb} {resource}: {proc.stderr}{proc.stdout}")
        return answer == "yes"

    def can_i_many(
        self, subject: str, checks: Sequence[tuple[str, str, str | None]]
    ) -> dict[tuple[str, str, str | None], bool]:
        """`can_i` for many (verb, resource.group, namespace or None = all) at once: the
        SelfSubjectAccessReviews `kubectl auth can-i` makes, created as `subject` in one call."""
        reviews = []
        for verb, resource, namespace in checks:
            plural, _, group = resource.partition(".")
            attributes = {"verb": verb, "resource": plural, "group": group}
            if namespace:
                attributes["namespace"] = namespace
            reviews.append(
                {
                    "apiVersion": "authorization.k8s.io/v1",
                    "kind": "SelfSubjectAccessReview",
                    "spec": {"resourceAttributes": attributes},
                }
            )
        ask = json.dumps({"apiVersion": "v1", "kind": "List", "items": reviews})
        out = self.run(
            "create", "--as", subject, "--validate=false", "-o", "json", "-f", "-", stdin=ask
        ).stdout
        items = json_stream(out)
        assert len(items) == len(checks), out
        return {c: bool(i["status"].get("allowed")) for c, i in zip(checks, items, strict=True)}

    def rules(self, subject: str, namespace: str) -> set[tuple[str, str]]:
        """(resource.group, verb) pairs `subject` may use in `namespace`: the
        SelfSubjectRulesReview `kubectl auth can-i --list` shows, made as `subject`."""
        ask = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectRulesReview",
            "spec": {"namespace": namespace},
        }
        out = self.run(
            "create",
            "--as",
            subject,
            "--validate=false",
            "-o",
            "json",
            "-f",
            "-",
            stdin=json.dumps(ask),
        ).stdout
        status: dict[str, Any] = json.loads(out)["status"]
        assert not status.get("incomplete"), status
        pairs: set[tuple[str, str]] = set()
        for rule in status.get("resourceRules", []):
            for group in rule.get("apiGroups", [""]):
                for resource in rule.get("resources", []):
                    name = f"{resource}.{group}" if group else resource
                    pairs |= {(name, verb) for verb in rule.get("verbs", [])}
        return pairs

    def create_namespace(self, name: str) -> None:
        self.run("create", "namespace", name)

    def delete_namespace(self, name: str) -> None:
        self.run("delete", "namespace", name, "--wait=false", "--ignore-not-found")
        finalize = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name},
            "spec": {"finalizers": []},
        }
        path = f"/api/v1/namespaces/{name}/finalize"
        self.run("replace", "--raw", path, "-f", "-", stdin=json.dumps(finalize), check=False)


def json_stream(text: str) -> list[dict[str, Any]]:
    """The JSON documents kubectl prints one after another (`create -o json` of a List)."""
    decoder = json.JSONDecoder()
    docs, pos = [], 0
    while pos < len(text.rstrip()):
        doc, end = decoder.raw_decode(text, pos)
        docs.append(doc)
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return docs


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wrap(workdir: Path, target: str, *, namespace: str, name_suffix: str | None = None) -> Path:
    """A kustomization in `workdir` that renders `deploy/k8s/<target>` into `namespace` (and,
    with `name_suffix`, with every name suffixed, so cluster-scoped objects are unique too)."""
    workdir.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": namespace,
        "resources": [os.path.relpath(K8S_DIR / target, workdir)],
    }
    if name_suffix:
        doc["nameSuffix"] = name_suffix
    # JSON, a subset of YAML that quotes every string: PyYAML leaves a hex suffix such as
    # "-1234e567" bare, and kustomize's YAML reads that as a number.
    (workdir / "kustomization.yaml").write_text(json.dumps(doc, indent=2))
    return workdir


def documents(rendered: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(rendered) if d]


@contextmanager
def scratch_namespace(kubectl: Kubectl, prefix: str) -> Iterator[str]:
    name = unique(prefix)
    kubectl.create_namespace(name)
    try:
        yield name
    finally:
        kubectl.delete_namespace(name)


def names_of(docs: Sequence[dict[str, Any]], kind: str) -> list[str]:
    return [str(d["metadata"]["name"]) for d in docs if d.get("kind") == kind]
