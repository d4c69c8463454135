"""`ripple status`: which Envoy has which version. Asks every xds replica's `/debug/nodes`
(JSON, see ripple_xds.status) and prints, per gateway group, each connected Envoy node: how
many of its tenants are current, which lag behind the newest stored version (and for how
long), and every NACK with the tenant and Envoy's error text. `--tenant T` narrows to one
tenant across every node. A node whose responses have waited over STALL_S for an answer with
no tracked change pending (e.g. stalled longer than the replica's tracking window) is
reported as stalled: every tenant on it waits.

Replicas: `--xds URL` (repeated; the health base URL, e.g. http://xds-0:8080), else
RIPPLE_STATUS_XDS (comma-separated), else `--service NAMESPACE/NAME`: the ready endpoints of
that Kubernetes Service's port `--port-name` (default health), from its EndpointSlices
(`status_kube`), else scripts.pipeline's local xds.

Exit status: 0 when every tenant is current or lags less than the SLA (`--sla`, else each
replica's RIPPLE_XDS_SLA_S); 1 when any tenant lags past it (a NACKed tenant lags from the
rejected version's write, a stalled node from its oldest unanswered response); 3 when a
replica did not answer (and nothing lags)."""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ripple_cli.status_kube import service_urls

DEFAULT_XDS_URL = "http://127.0.0.1:18082"  # scripts.pipeline's xds health port
ENV_REPLICAS = "RIPPLE_STATUS_XDS"
PATH = "/debug/nodes"
EXIT_OK, EXIT_LAGGING, EXIT_UNREACHABLE = 0, 1, 3
# A node whose oldest response has waited this long for its answer, with no tracked change
# pending, is reported as stalled (Envoy answers in milliseconds).
STALL_S = 1.0

Fetch = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Replica:
    """One replica's answer (`doc`) or why there is none (`error`)."""

    url: str
    doc: Mapping[str, Any] | None = None
    error: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Behind:
    """A tenant behind on a node: lagging, NACKed, or every tenant of a node that stopped
    answering ("stall": responses unanswered, none of them a tracked change)."""

    replica: str
    gateway: str
    node: str
    tenant: str
    version: int
    acked_version: int | None
    lag_s: float
    kind: str  # "lag", "nack" or "stall" (responses unanswered, tenants unknown)
    type: str = ""
    error: str = ""

    def past(self, sla_s: float) -> bool:
        return self.lag_s > sla_s


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
    return body.decode()


def status_url(base: str) -> str:
    """`base` (a replica's health base URL, or already its /debug/nodes URL) -> the URL."""
    base = base.rstrip("/")
    if "://" not in base:
        base = f"http://{base}"
    return base if base.endswith(PATH) else base + PATH


def ask(urls: Sequence[str], *, fetch: Fetch = http_get) -> list[Replica]:
    replicas = []
    for url in urls:
        try:
            doc = json.loads(fetch(status_url(url)))
            if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), list):
                raise ValueError("not a /debug/nodes document")
            replicas.append(Replica(url=url, doc=doc))
        except (OSError, urllib.error.URLError, ValueError) as exc:
            replicas.append(Replica(url=url, error=str(exc) or type(exc).__name__))
    return replicas


def behind(replicas: Sequence[Replica], *, tenant: str | None = None) -> list[Behind]:
    """Every (node, tenant) lagging or NACKed, over the replicas that answered."""
    out: list[Behind] = []
    for replica in replicas:
        if replica.doc is None:
            continue
        for node in replica.doc["nodes"]:
            where = {"replica": replica.url, "gateway": node["gateway"], "node": node["node"]}
            for lag in node["lagging"]:
                if tenant is None or lag["tenant"] == tenant:
                    out.append(
                        Behind(
                            **where,
                            tenant=lag["tenant"],
                            version=lag["version"],
                            acked_version=lag["acked_version"],
                            lag_s=float(lag["lag_s"]),
                            kind="lag",
                        )
                    )
            for nack in node["nacks"]:
                if tenant is None or nack["tenant"] == tenant:
                    out.append(
                        Behind(
                            **where,
                            tenant=nack["tenant"],
                            version=nack["version"],
                            acked_version=node["acked"].get(nack["tenant"], {}).get("version"),
                            lag_s=float(nack["lag_s"]),
                            kind="nack",
                            type=nack["type"],
                            error=nack["error"],
                        )
                    )
            stalled = node.get("oldest_in_flight_s")
            if stalled is not None and stalled >= STALL_S and not node["lagging"]:
                out.append(
                    Behind(
                        **where,
                        tenant="*",
                        version=0,
                        acked_version=None,
                        lag_s=float(stalled),
                        kind="stall",
                        type=str(node["in_flight"]),
                    )
                )
    return out


def sla_of(replicas: Sequence[Replica], override: float | None) -> float:
    if override is not None:
        return override
    slas = [float(r.doc["sla_s"]) for r in replicas if r.doc is not None and "sla_s" in r.doc]
    return min(slas) if slas else 5.0


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def describe(item: Behind, *, sla_s: float) -> str:
    acked = "none since it connected" if item.acked_version is None else f"v{item.acked_version}"
    past = " PAST SLA" if item.past(sla_s) else ""
    if item.kind == "stall":
        return (
            f"STALL {item.type} response(s) unanswered for {_seconds(item.lag_s)}{past} "
            "(the Envoy stopped reading or answering; changes older than the tracking window)"
        )
    if item.kind == "nack":
        error = " ".join(item.error.split())
        return (
            f"NACK  {item.tenant}: v{item.version} rejected ({item.type}), "
            f"serves {acked}, behind {_seconds(item.lag_s)}{past}: {error}"
        )
    return (
        f"LAG   {item.tenant}: stored v{item.version}, ACKed {acked}, "
        f"behind {_seconds(item.lag_s)}{past}"
    )


def _node_lines(node: Mapping[str, Any], replica: Replica, *, sla_s: float) -> list[str]:
    items = [b for b in behind([replica]) if b.node == node["node"]]
    lags = sum(1 for b in items if b.kind == "lag")
    nacks = sum(1 for b in items if b.kind == "nack")
    head = (
        f"  node {node['node']} ({node['mode']}, xds {replica.url}): "
        f"{node['current']}/{node['tenants']} tenants current, {lags} lagging, {nacks} NACKed"
    )
    if node.get("in_flight"):
        head += (
            f", {node['in_flight']} response(s) unanswered for "
            f"{_seconds(float(node['oldest_in_flight_s'] or 0))}"
        )
    return [head] + [f"    {describe(b, sla_s=sla_s)}" for b in items]


def render(replicas: Sequence[Replica], *, sla_s: float, tenant: str | None = None) -> str:
    answered = [r for r in replicas if r.doc is not None]
    lines = [f"xds replicas: {len(answered)}/{len(replicas)} answered, SLA {sla_s:g} s"]
    for replica in replicas:
        if replica.doc is None:
            lines.append(f"  UNREACHABLE {replica.url}: {replica.error}")
            continue
        doc = replica.doc
        lines.append(
            f"  {replica.url}: {doc['tenants']} tenants, {len(doc['nodes'])} Envoy stream(s), "
            f"change stream at {doc.get('position') or '-'}"
        )
    if tenant is not None:
        lines += _tenant_lines(answered, tenant=tenant, sla_s=sla_s)
    else:
        by_gateway: dict[str, list[str]] = {}
        for replica in answered:
            assert replica.doc is not None
            for node in replica.doc["nodes"]:
                by_gateway.setdefault(node["gateway"], []).extend(
                    _node_lines(node, replica, sla_s=sla_s)
                )
        for gateway in sorted(by_gateway):
            lines.append(f"gateway {gateway or '(default)'}")
            lines.extend(by_gateway[gateway])
        if not by_gateway:
            lines.append("no Envoy connected")
    lines.append(verdict(replicas, sla_s=sla_s, tenant=tenant)[1])
    return "\n".join(lines)


def _tenant_lines(replicas: Sequence[Replica], *, tenant: str, sla_s: float) -> list[str]:
    lines = [f"tenant {tenant}"]
    items = {(b.replica, b.node): b for b in behind(replicas, tenant=tenant)}
    for replica in replicas:
        assert replica.doc is not None
        stored = replica.doc["versions"].get(tenant)
        for node in replica.doc["nodes"]:
            scope = node.get("scope")
            where = f"  gateway {node['gateway'] or '(default)'} node {node['node']}: "
            item = items.get((replica.url, node["node"]))
            if item is not None:
                lines.append(where + describe(item, sla_s=sla_s))
            elif scope is not None and tenant not in scope:
                lines.append(where + "not served to this gateway")
            elif stored is None:
                lines.append(where + f"unknown to xds {replica.url}")
            else:
                lines.append(where + f"current at v{stored}")
    if len(lines) == 1:
        lines.append("  no Envoy connected")
    return lines


def verdict(
    replicas: Sequence[Replica], *, sla_s: float, tenant: str | None = None
) -> tuple[int, str]:
    items = behind(replicas, tenant=tenant)
    late = [b for b in items if b.past(sla_s)]
    if late:
        behind_tenants = [b for b in late if b.kind != "stall"]
        parts = []
        if behind_tenants:
            tenants = len({b.tenant for b in behind_tenants})
            nodes = len({(b.replica, b.node) for b in behind_tenants})
            parts.append(f"{tenants} tenant(s) on {nodes} node(s)")
        stalled = len({(b.replica, b.node) for b in late if b.kind == "stall"})
        if stalled:
            parts.append(f"{stalled} node(s) stalled")
        return EXIT_LAGGING, f"verdict: BEHIND past the {sla_s:g} s SLA: {', '.join(parts)}"
    unreachable = [r.url for r in replicas if r.doc is None]
    if unreachable:
        return EXIT_UNREACHABLE, f"verdict: UNKNOWN, no answer from {', '.join(unreachable)}"
    if items:
        return EXIT_OK, f"verdict: ok, {len(items)} behind within the {sla_s:g} s SLA"
    return EXIT_OK, "verdict: ok, every Envoy is current"


def replica_urls(args: argparse.Namespace, environ: Mapping[str, str]) -> list[str]:
    if args.xds:
        return list(args.xds)
    if environ.get(ENV_REPLICAS):
        return [u.strip() for u in environ[ENV_REPLICAS].split(",") if u.strip()]
    if args.service:
        return service_urls(args.service, port_name=args.port_name, kubeconfig=args.kubeconfig)
    return [DEFAULT_XDS_URL]


def run(
    args: argparse.Namespace,
    *,
    fetch: Fetch = http_get,
    environ: Mapping[str, str] = os.environ,
) -> int:
    try:
        urls = replica_urls(args, environ)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}")
        return EXIT_UNREACHABLE
    if not urls:
        print("error: no xds replica found")
        return EXIT_UNREACHABLE
    replicas = ask(urls, fetch=fetch)
    sla_s = sla_of(replicas, args.sla)
    code, _ = verdict(replicas, sla_s=sla_s, tenant=args.tenant)
    if args.json:
        print(
            json.dumps(
                {
                    "sla_s": sla_s,
                    "exit": code,
                    "replicas": [
                        {"url": r.url, "error": r.error, **(r.doc or {})} for r in replicas
                    ],
                },
                indent=2,
            )
        )
    else:
        print(render(replicas, sla_s=sla_s, tenant=args.tenant))
    return code


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "status",
        help="which Envoy has which version: per node, tenants current, lagging, NACKed",
        description=(
            "Ask every xds replica's /debug/nodes and print, per gateway group, each "
            "connected Envoy node: how many tenants are current, which lag behind the newest "
            "stored version and for how long, and every NACK with Envoy's error text."
        ),
        epilog=(
            "Exit status: 0 all current or behind within the SLA; 1 a tenant lags past the "
            "SLA (a NACK counts from the rejected version's write); 3 a replica did not "
            "answer. Example: ripple status --service ripple/ripple-xds --tenant shop"
        ),
    )
    parser.add_argument(
        "--xds",
        action="append",
        metavar="URL",
        help=f"an xds replica's health base URL, repeated per replica (else ${ENV_REPLICAS}, "
        f"comma-separated, else --service, else {DEFAULT_XDS_URL})",
    )
    parser.add_argument(
        "--service",
        metavar="NAMESPACE/NAME",
        help="find the replicas as the ready endpoints of this Kubernetes Service",
    )
    parser.add_argument(
        "--port-name", default="health", help="--service: the health port's name (default health)"
    )
    parser.add_argument(
        "--kubeconfig", default=None, help="--service: kubeconfig (default: $KUBECONFIG/in-cluster)"
    )
    parser.add_argument("--tenant", default=None, help="only this tenant, across every Envoy")
    parser.add_argument(
        "--sla",
        type=float,
        default=None,
        metavar="S",
        help="seconds a tenant may lag (default: the replicas' RIPPLE_XDS_SLA_S)",
    )
    parser.add_argument("--json", action="store_true", help="print the replicas' documents")
    parser.set_defaults(func=run)
