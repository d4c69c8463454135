"""Issue #14, point 6: the watcher never receives a Secret that is not a TLS Secret.

Its Secret list and watch ask the real kube-apiserver for `type=kubernetes.io/tls` only (a
field selector: RBAC cannot express it, see docs/deploy.md for the stricter modes). The test
records every object the API hands the watcher's Secret list and watch (a wrapper around the
real adapter) while a tenant namespace holds Opaque, docker-config and basic-auth Secrets
beside a TLS one, created before the watcher starts (its list) and while it runs (its
watch): only TLS Secrets ever arrive, of this namespace and of every other one.

The strict modes: `deploy/k8s/components/watcher-without-secrets` is rendered with the stack's
kubectl (the watcher's ClusterRole then has no `secrets` and its kinds no `Secret`); and the
per-namespace mode runs for real as a ServiceAccount that may read Secrets in one tenant
namespace only (a RoleBinding there, none cluster-wide): with RIPPLE_WATCHER_SECRETS_PER_NAMESPACE
the watcher publishes that namespace's TLS Secrets (listed and watched), skips a selected
namespace without the RoleBinding without failing, and never restarts; the same token cannot
list Secrets cluster-wide (which is what the watcher did before this mode: it could not run)."""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from ripple_watcher.kinds import kinds_by_name
from ripple_watcher.ports import KindApi, ListPage, RawEvent
from ripple_watcher.service import sealer_from
from ripple_watcher.settings import WatcherSettings
from tests.conftest import StackEnv
from tests.integration.deploy.kubectl import K8S_DIR, Kubectl, documents
from tests.integration.watcher.support import (
    CERT_PEM,
    KEY_PEM,
    Kube,
    delete_topic,
    envelope_log,
    make_topic,
    running_watcher,
    unique,
    watcher_settings,
)

TLS = "kubernetes.io/tls"


@pytest.fixture
async def kube(stack: StackEnv) -> AsyncIterator[Kube]:
    async with Kube.connect(stack["KUBECONFIG"]) as k:
        yield k


@pytest.fixture
async def topic(stack: StackEnv) -> AsyncIterator[str]:
    bootstrap = stack["RIPPLE_KAFKA_BOOTSTRAP"]
    name = await make_topic(bootstrap, partitions=3)
    yield name
    await delete_topic(bootstrap, name)


class Recording:
    """Every Secret the API hands the watcher, by list or watch."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    def wrap(self, api: KindApi) -> KindApi:
        spec = getattr(api, "spec", None)
        if spec is None or spec.kind != "Secret":
            return api
        return _RecordingApi(api, self)


class _RecordingApi:
    def __init__(self, inner: KindApi, recording: Recording) -> None:
        self._inner = inner
        self._recording = recording

    async def available(self) -> bool:
        return await self._inner.available()

    async def list_pages(self, *, page_size: int) -> AsyncIterator[ListPage]:
        async for page in self._inner.list_pages(page_size=page_size):
            self._recording.received.extend(dict(item) for item in page.items)
            yield page

    async def watch(
        self, *, resource_version: str, timeout_seconds: int
    ) -> AsyncIterator[RawEvent]:
        async for event in self._inner.watch(
            resource_version=resource_version, timeout_seconds=timeout_seconds
        ):
            if event.type in ("ADDED", "MODIFIED", "DELETED"):
                self._recording.received.append(dict(event.object))
            yield event


async def secret(kube: Kube, ns: str, name: str, type_: str, data: dict[str, bytes]) -> None:
    body = {
        "metadata": {"name": name},
        "type": type_,
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }
    await kube.core.create_namespaced_secret(ns, cast(client.V1Secret, body))


async def others(kube: Kube, ns: str, suffix: str) -> None:
    await secret(kube, ns, f"opaque-{suffix}", "Opaque", {"password": b"hunter2"})
    await secret(
        kube,
        ns,
        f"pull-{suffix}",
        "kubernetes.io/dockerconfigjson",
        {".dockerconfigjson": b'{"auths":{"r.example.com":{"auth":"dTpw"}}}'},
    )
    await secret(
        kube,
        ns,
        f"basic-{suffix}",
        "kubernetes.io/basic-auth",
        {"username": b"u", "password": b"p"},
    )


async def test_the_watcher_never_receives_a_secret_that_is_not_tls(
    stack: StackEnv, topic: str, kube: Kube
) -> None:
    ns = await kube.namespace(unique("hx-scope"))
    tls = {"tls.crt": CERT_PEM, "tls.key": KEY_PEM}
    await others(kube, ns, "listed")
    await secret(kube, ns, "tls-listed", TLS, tls)
    recording = Recording()
    settings = watcher_settings(stack, topic, kinds=("Namespace", "Secret"))
    async with (
        envelope_log(settings.kafka_bootstrap, topic) as log,
        running_watcher(settings, wrap_api=recording.wrap),
    ):
        await others(kube, ns, "watched")
        await secret(kube, ns, "tls-watched", TLS, tls)
        # Watch events come in order: the others, created before it, had their turn.
        await log.wait_for(
            lambda: (
                {"tls-listed", "tls-watched"}
                <= {e.name for e in log.of_tenant(ns) if e.kind == "Secret"}
            )
        )

    mine = [s for s in recording.received if s["metadata"]["namespace"] == ns]
    assert sorted(s["metadata"]["name"] for s in mine) == ["tls-listed", "tls-watched"]
    assert {s.get("type") for s in recording.received} == {TLS}


def test_the_strict_component_takes_secrets_from_the_watchers_role_and_kinds(
    stack: StackEnv, tmp_path: Path
) -> None:
    doc = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(K8S_DIR / "base", tmp_path)],
        "components": [os.path.relpath(K8S_DIR / "components/watcher-without-secrets", tmp_path)],
    }
    (tmp_path / "kustomization.yaml").write_text(json.dumps(doc))
    rendered = documents(Kubectl.from_stack(stack).kustomize(tmp_path))
    (role,) = [
        d
        for d in rendered
        if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "ripple-watcher"
    ]
    resources = {r for rule in role["rules"] for r in rule["resources"]}
    assert "secrets" not in resources
    assert {"namespaces", "services", "ingresses"} <= resources
    (config,) = [
        d
        for d in rendered
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("ripple-config")
    ]
    settings = WatcherSettings(kinds=json.loads(config["data"]["RIPPLE_WATCHER_KINDS"]))
    specs = kinds_by_name(settings.kinds)
    assert "Secret" not in {spec.kind for spec in specs}
    assert sealer_from(settings, specs) is None  # no Secret, no sealing key needed


async def service_account_kubeconfig(
    kube: Kube, stack: StackEnv, ns: str, name: str, path: Path
) -> Path:
    """A kubeconfig authenticating as ServiceAccount `ns/name` (a TokenRequest token)."""
    await kube.core.create_namespaced_service_account(ns, body({"metadata": {"name": name}}))
    token = await kube.core.create_namespaced_service_account_token(
        name, ns, body({"spec": {"expirationSeconds": 3600}})
    )
    return write_kubeconfig(Path(stack["KUBECONFIG"]), name, token.status.token, path)


def write_kubeconfig(admin: Path, name: str, token: str, path: Path) -> Path:
    cluster = yaml.safe_load(admin.read_text())["clusters"][0]
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": cluster["name"], "user": name}}],
        "current-context": name,
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def body(doc: dict[str, Any]) -> Any:
    """A manifest as the typed client's argument (it sends dicts as they are)."""
    return doc


async def test_per_namespace_mode_reads_secrets_only_where_a_rolebinding_allows(
    stack: StackEnv, topic: str, kube: Kube, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    selector = {"ripple.test/strict": tag}
    allowed = await kube.namespace(unique("hx-allowed"), labels=selector)
    unbound = await kube.namespace(unique("hx-unbound"), labels=selector)
    outside = await kube.namespace(unique("hx-outside"))
    tls = {"tls.crt": CERT_PEM, "tls.key": KEY_PEM}
    for ns in (allowed, unbound, outside):
        await secret(kube, ns, "tls-listed", TLS, tls)
    await others(kube, allowed, "listed")
    rbac = client.RbacAuthorizationV1Api(kube.api)
    sa = f"watcher-{tag}"
    who = [{"kind": "ServiceAccount", "name": sa, "namespace": allowed}]
    namespaces_role, secrets_role = f"hx-ns-{tag}", f"hx-secrets-{tag}"
    await rbac.create_cluster_role(
        body(
            {
                "metadata": {"name": namespaces_role},
                "rules": [
                    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]}
                ],
            }
        )
    )
    await rbac.create_cluster_role(
        body(
            {
                "metadata": {"name": secrets_role},
                "rules": [
                    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list", "watch"]}
                ],
            }
        )
    )
    role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole"}
    await rbac.create_cluster_role_binding(
        body(
            {
                "metadata": {"name": namespaces_role},
                "roleRef": {**role_ref, "name": namespaces_role},
                "subjects": who,
            }
        )
    )
    await rbac.create_namespaced_role_binding(
        allowed,
        body(
            {
                "metadata": {"name": "ripple-watcher-secrets"},
                "roleRef": {**role_ref, "name": secrets_role},
                "subjects": who,
            }
        ),
    )
    try:
        kubeconfig = await service_account_kubeconfig(
            kube, stack, allowed, sa, tmp_path / "kubeconfig"
        )
        async with Kube.connect(str(kubeconfig)) as as_sa:
            with pytest.raises(ApiException) as denied:
                await as_sa.core.list_secret_for_all_namespaces(field_selector=f"type={TLS}")
            assert denied.value.status == 403
        settings = watcher_settings(
            stack,
            topic,
            kubeconfig=str(kubeconfig),
            kinds=("Namespace", "Secret"),
            namespace_selector=f"ripple.test/strict={tag}",
            secrets_per_namespace=True,
        )
        recording = Recording()
        async with (
            envelope_log(settings.kafka_bootstrap, topic) as log,
            running_watcher(settings, wrap_api=recording.wrap) as running,
        ):
            await secret(kube, allowed, "tls-watched", TLS, tls)
            await secret(kube, unbound, "tls-watched", TLS, tls)
            await log.wait_for(
                lambda: (
                    {"tls-listed", "tls-watched"}
                    <= {e.name for e in log.of_tenant(allowed) if e.kind == "Secret"}
                )
            )
            secrets_watch = running.group.watcher("Secret")
            assert secrets_watch.stats.restarts == 0, secrets_watch.stats.restart_reasons
    finally:
        await rbac.delete_cluster_role_binding(namespaces_role)
        await rbac.delete_cluster_role(namespaces_role)
        await rbac.delete_cluster_role(secrets_role)

    published = {
        (e.tenant, e.name) for r in log.records if (e := r.envelope).kind == "Secret" and e.name
    }
    assert published == {(allowed, "tls-listed"), (allowed, "tls-watched")}
    assert {s.get("type") for s in recording.received} == {TLS}


def test_the_per_namespace_component_grants_secrets_only_through_rolebindings(
    stack: StackEnv, tmp_path: Path
) -> None:
    doc = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(K8S_DIR / "base", tmp_path)],
        "components": [
            os.path.relpath(K8S_DIR / "components/watcher-secrets-per-namespace", tmp_path)
        ],
    }
    (tmp_path / "kustomization.yaml").write_text(json.dumps(doc))
    rendered = documents(Kubectl.from_stack(stack).kustomize(tmp_path))
    roles = {d["metadata"]["name"]: d for d in rendered if d["kind"] == "ClusterRole"}
    watcher = {r for rule in roles["ripple-watcher"]["rules"] for r in rule["resources"]}
    assert "secrets" not in watcher
    assert roles["ripple-watcher-secrets"]["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list", "watch"]}
    ]
    bound = {
        d["roleRef"]["name"] for d in rendered if d["kind"] in ("ClusterRoleBinding", "RoleBinding")
    }
    assert "ripple-watcher-secrets" not in bound  # only rolebindings.sh binds it, per namespace
    (config,) = [
        d
        for d in rendered
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("ripple-config")
    ]
    data = config["data"]
    settings = WatcherSettings(
        secrets_per_namespace=data["RIPPLE_WATCHER_SECRETS_PER_NAMESPACE"] == "true",
        namespace_selector=data["RIPPLE_WATCHER_NAMESPACE_SELECTOR"],
    )
    assert settings.secrets_per_namespace
