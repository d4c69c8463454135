"""Least privilege, by impersonation against the real kube-apiserver: the base's
ServiceAccounts and RBAC are applied for real (into a fresh namespace, every name suffixed so
the ClusterRoles are unique too), then access reviews made *as* each ServiceAccount
(`kubectl auth can-i --as=system:serviceaccount:...`, and the same SelfSubjectAccessReviews in
bulk) show that each can do what its service needs and nothing more:

- the watcher lists and watches what it reads (services/watcher/src/ripple_watcher/kinds.py)
  across the cluster and writes nothing but its Leases in its own namespace;
- the translator creates and patches Events (core and events.k8s.io), and reads nothing;
- the xds server (and the gateway) can do nothing at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from ripple_watcher.kinds import ALL_KINDS, CONFIG_MAP
from ripple_watcher.settings import DEFAULT_KINDS
from tests.conftest import StackEnv
from tests.integration.deploy.kubectl import Kubectl, documents, unique, wrap

RBAC_KINDS = {"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
READ_VERBS = ("get", "list", "watch")
ALL_VERBS = (*READ_VERBS, *WRITE_VERBS)
# The default kinds as resource.group (what `kubectl auth can-i` takes).
WATCHED = tuple(
    f"{k.plural}.{k.group}" if k.group else k.plural for k in ALL_KINDS if k.kind in DEFAULT_KINDS
)
# Resources nobody here may touch (a sample of the sensitive and the unrelated).
UNRELATED = (
    "pods",
    "configmaps",
    "serviceaccounts",
    "nodes",
    "deployments.apps",
    "roles.rbac.authorization.k8s.io",
    "clusterrolebindings.rbac.authorization.k8s.io",
    "customresourcedefinitions.apiextensions.k8s.io",
)
LEASES = "leases.coordination.k8s.io"
EVENTS = ("events", "events.events.k8s.io")

Check = tuple[str, str, str | None]


@pytest.fixture(scope="module")
def kubectl(stack: StackEnv) -> Kubectl:
    return Kubectl.from_stack(stack)


@pytest.fixture(scope="module")
def rbac(kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Apply the base's RBAC for real; yield the names used, then delete everything."""
    ns = unique("it-rbac")
    suffix = f"-{ns.rsplit('-', 1)[1]}"
    rendered = kubectl.kustomize(
        wrap(tmp_path_factory.mktemp("rbac"), "base", namespace=ns, name_suffix=suffix)
    )
    wanted = [d for d in documents(rendered) if d["kind"] in RBAC_KINDS | {"Namespace"}]
    kubectl.run("apply", "-f", "-", stdin="\n---\n".join(json.dumps(d) for d in wanted))
    try:
        yield {"namespace": ns, "suffix": suffix, "other": unique("it-rbac-other")}
    finally:
        cluster = [d for d in wanted if d["kind"] in {"ClusterRole", "ClusterRoleBinding"}]
        manifest = "\n---\n".join(json.dumps(d) for d in cluster)
        kubectl.run("delete", "--ignore-not-found", "-f", "-", stdin=manifest)
        kubectl.delete_namespace(ns)


@pytest.fixture(scope="module")
def baseline(kubectl: Kubectl, rbac: dict[str, str]) -> set[tuple[str, str]]:
    """The rules of a ServiceAccount nothing is bound to: what every authenticated user has
    (ask about itself; read ClusterTrustBundles, in recent releases)."""
    nobody = f"system:serviceaccount:{rbac['namespace']}:nobody"
    rules = kubectl.rules(nobody, rbac["namespace"])
    assert ("selfsubjectaccessreviews.authorization.k8s.io", "create") in rules
    return rules


def subject(rbac: dict[str, str], service: str) -> str:
    return f"system:serviceaccount:{rbac['namespace']}:ripple-{service}{rbac['suffix']}"


def allowed(kubectl: Kubectl, who: str, checks: list[Check]) -> set[Check]:
    return {check for check, yes in kubectl.can_i_many(who, checks).items() if yes}


def test_can_i_by_impersonation(kubectl: Kubectl, rbac: dict[str, str]) -> None:
    """The CLI path itself, a few answers; the bulk reviews below ask the same question."""
    watcher, xds = subject(rbac, "watcher"), subject(rbac, "xds")
    assert kubectl.can_i(watcher, "list", "ingresses.networking.k8s.io", namespace=None)
    assert kubectl.can_i(watcher, "update", LEASES, namespace=rbac["namespace"])
    assert not kubectl.can_i(watcher, "create", "ingresses.networking.k8s.io", namespace=None)
    assert not kubectl.can_i(watcher, "get", "secrets", namespace=rbac["other"])
    assert kubectl.can_i(subject(rbac, "translator"), "create", "events", namespace="default")
    assert not kubectl.can_i(xds, "list", "secrets", namespace=rbac["namespace"])


def test_watcher_lists_and_watches_what_it_reads(kubectl: Kubectl, rbac: dict[str, str]) -> None:
    assert len(WATCHED) == len(DEFAULT_KINDS)
    checks: list[Check] = [
        (verb, resource, ns)
        for resource in WATCHED
        for verb in ("list", "watch")
        for ns in (None, rbac["other"])
    ]
    assert allowed(kubectl, subject(rbac, "watcher"), checks) == set(checks)


def test_watcher_writes_nothing_but_its_leases(kubectl: Kubectl, rbac: dict[str, str]) -> None:
    ns, other = rbac["namespace"], rbac["other"]
    lease_ok: list[Check] = [(v, LEASES, ns) for v in ("get", "create", "update")]
    denied: list[Check] = [(v, LEASES, ns) for v in ("delete", "list", "watch")]
    denied += [(v, LEASES, other) for v in ("get", "create", "update")]
    denied += [(v, r, other) for r in (*WATCHED, *EVENTS, *UNRELATED) for v in WRITE_VERBS]
    # Reads are list/watch only: no `get` of single objects (a Secret by name, say); the
    # opt-in ConfigMap kind is not granted by the base.
    denied += [("get", r, other) for r in WATCHED]
    denied += [(v, CONFIG_MAP.plural, None) for v in READ_VERBS]
    assert allowed(kubectl, subject(rbac, "watcher"), lease_ok + denied) == set(lease_ok)


def test_translator_creates_events_and_reads_nothing(
    kubectl: Kubectl, rbac: dict[str, str]
) -> None:
    other = rbac["other"]
    events_ok: list[Check] = [(v, r, other) for r in EVENTS for v in ("create", "patch")]
    denied: list[Check] = [(v, r, other) for r in EVENTS for v in ("delete", "update", "get")]
    denied += [(v, r, other) for r in (*WATCHED, *UNRELATED, LEASES) for v in ALL_VERBS]
    denied += [(v, r, None) for r in WATCHED for v in ("list", "watch")]
    assert allowed(kubectl, subject(rbac, "translator"), events_ok + denied) == set(events_ok)


@pytest.mark.parametrize("service", ["xds", "gateway"])
def test_xds_and_gateway_can_do_nothing(
    kubectl: Kubectl, rbac: dict[str, str], baseline: set[tuple[str, str]], service: str
) -> None:
    who = subject(rbac, service)
    checks: list[Check] = [
        (v, r, ns)
        for r in (*WATCHED, *UNRELATED, *EVENTS, LEASES)
        for v in ALL_VERBS
        for ns in (rbac["namespace"], rbac["other"], None)
    ]
    assert allowed(kubectl, who, checks) == set()
    # Its whole rule list: only what every authenticated user has.
    assert kubectl.rules(who, rbac["namespace"]) == baseline


def test_the_rule_lists_hold_nothing_else(
    kubectl: Kubectl, rbac: dict[str, str], baseline: set[tuple[str, str]]
) -> None:
    """`kubectl auth can-i --list` of the watcher and translator: exactly the expected rules
    beyond those every authenticated user has."""
    watcher = kubectl.rules(subject(rbac, "watcher"), rbac["namespace"]) - baseline
    expected = {(r, v) for r in WATCHED for v in ("list", "watch")}
    expected |= {(LEASES, v) for v in ("get", "create", "update")}
    assert watcher == expected
    translator = kubectl.rules(subject(rbac, "translator"), rbac["other"]) - baseline
    assert translator == {(r, v) for r in EVENTS for v in ("create", "patch")}
