"""Property tests: generated tenants (Ingresses with hosts, paths of every type, a handful of
annotations including invalid values, backends by port name or number) always translate into
resources Envoy would accept, and invalid input yields diagnostics, not output.

The invariants are checked on every example in milliseconds; a few examples also go through a
real Envoy (`envoy --mode validate`), which is skipped without an Envoy binary.
"""

from __future__ import annotations

import os
import random
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ripple_common.resources import TypeUrl
from ripple_translator.translate import Severity, Translation
from ripple_translator.translate.validate import (
    ENVOY_MAX_PROGRAM_SIZE,
    check_host,
    check_re2,
    program_size,
)
from tests.unit.translator import envoy_check, k8s
from tests.unit.translator.decode import cors, decode, of_type

ENVOY = envoy_check.find_envoy()
# Deeper runs: RIPPLE_PROPERTY_EXAMPLES=2000 RIPPLE_PROPERTY_ENVOY_EXAMPLES=200 pytest ...
EXAMPLES = int(os.environ.get("RIPPLE_PROPERTY_EXAMPLES", "60"))
ENVOY_EXAMPLES = int(os.environ.get("RIPPLE_PROPERTY_ENVOY_EXAMPLES", "5"))
FAST = settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)

HOSTS = ("a.example.com", "b.example.com", "c.example.org")
BAD_HOSTS = ("Bad_Host.example.com", "*.w.example.com", "-x.example.com")
REGEX_PATHS = (
    "/api(/|$)(.*)",
    "/v[0-9]+/.*",
    "/(a|b)/x",
    "/x\\d+",
    "/(?=x)",
    "/[a-",
    "/a{1001}",
    "/" + "abcdefghij" * 12,
)
ODD_PATHS = ("noslash", "/has space", "/q?x=1", "/frag#x", "")
# Annotation -> values to pick from; the pairs in INVALID are invalid values.
ANNOTATIONS: dict[str, tuple[str, ...]] = {
    "use-regex": ("true", "false", "maybe"),
    "rewrite-target": ("/$1", "/", "/$3"),
    "ssl-redirect": ("true", "false"),
    "force-ssl-redirect": ("true",),
    "proxy-read-timeout": ("5", "5s", "abc", "0"),
    "proxy-connect-timeout": ("3", "x"),
    "whitelist-source-range": ("10.0.0.0/8, 2001:db8::/32", "bad"),
    "denylist-source-range": ("10.1.0.0/16",),
    "backend-protocol": ("GRPC", "HTTPS", "GRPCS", "FTP"),
    "load-balance": ("ewma", "bogus"),
    "upstream-hash-by": ("$request_uri", "$http_x_user", "$bogus"),
    "permanent-redirect": ("https://x.example.com", "not a url"),
    "app-root": ("/app", "noslash"),
    "upstream-vhost": ("in.svc", "bad host!"),
    "enable-cors": ("true",),
    "cors-allow-origin": ("https://*.example.com", "*"),
    "x-forwarded-prefix": ("/p",),
    "custom-headers": ("hdrs",),
    "canary": ("true",),
    "canary-weight": ("30", "100", "x"),
    "canary-by-header": ("x-canary",),
    "canary-by-header-pattern": ("^b.*$", "("),
    "canary-by-cookie": ("c",),
    "auth-url": ("https://auth.example.com",),
    "limit-rps": ("5", "fast"),
    "limit-burst-multiplier": ("3",),
    "affinity": ("cookie", "ip"),
    "session-cookie-max-age": ("600",),
    "session-cookie-samesite": ("Lax", "maybe"),
    "proxy-next-upstream": ("error http_503", "off", "bogus"),
    "proxy-next-upstream-tries": ("0", "2"),
    "proxy-body-size": ("8m", "0", "8x"),
    "default-backend": ("api", "missing"),
}
INVALID = frozenset(
    {
        ("use-regex", "maybe"),
        ("proxy-read-timeout", "abc"),
        ("proxy-read-timeout", "0"),
        ("proxy-connect-timeout", "x"),
        ("whitelist-source-range", "bad"),
        ("backend-protocol", "FTP"),
        ("load-balance", "bogus"),
        ("upstream-hash-by", "$bogus"),
        ("permanent-redirect", "not a url"),
        ("app-root", "noslash"),
        ("upstream-vhost", "bad host!"),
        ("limit-rps", "fast"),
        ("affinity", "ip"),
        ("session-cookie-samesite", "maybe"),
        ("proxy-next-upstream", "bogus"),
        ("proxy-body-size", "8x"),
    }
)
SERVICES = [
    k8s.service(),
    k8s.service("api", ports=[{"name": "http", "port": 80}, {"name": "grpc", "port": 9090}]),
]
SLICES = [
    k8s.endpoint_slice(endpoints=[k8s.endpoint("10.0.0.1"), k8s.endpoint("10.0.0.2", zone="b")]),
    k8s.endpoint_slice(
        "api-x",
        service_name="api",
        ports=[{"name": "http", "port": 8080}, {"name": "grpc", "port": 9090}],
        endpoints=[k8s.endpoint("10.0.1.1")],
    ),
]
CONFIG_MAPS = [k8s.config_map("hdrs", {"X-Frame-Options": "DENY", "Host": "x", "X-Pct": "5%"})]

segment = st.text(alphabet="abcxyz019-_.~", min_size=0, max_size=5)
plain_path = st.lists(segment, max_size=4).map(lambda segs: "/" + "/".join(segs))
path_value = st.one_of(
    plain_path, plain_path, st.sampled_from(REGEX_PATHS), st.sampled_from(ODD_PATHS)
)
backend = st.builds(
    k8s.backend,
    st.sampled_from(["web", "web", "api", "missing"]),
    st.sampled_from([80, "http", "grpc", 81, "nope"]),
)
path = st.builds(
    lambda value, kind, be: {"path": value, "pathType": kind, "backend": be},
    path_value,
    st.sampled_from(["Exact", "Prefix", "ImplementationSpecific"]),
    backend,
)
rule = st.builds(
    lambda host, paths: {"http": {"paths": paths}} | ({"host": host} if host else {}),
    st.sampled_from(HOSTS * 3 + BAD_HOSTS + (None,)),
    st.lists(path, min_size=1, max_size=3),
)


def annotation_sets(most: int) -> st.SearchStrategy[dict[str, str]]:
    keys = st.lists(st.sampled_from(sorted(ANNOTATIONS)), max_size=most, unique=True)
    return keys.flatmap(
        lambda ks: st.fixed_dictionaries({k: st.sampled_from(ANNOTATIONS[k]) for k in ks})
    )


@st.composite
def ingresses(draw: st.DrawFn, *, most: int = 4, most_annotations: int = 4) -> list[dict[str, Any]]:
    out = []
    for i in range(draw(st.integers(min_value=1, max_value=most))):
        chosen = draw(annotation_sets(most_annotations))
        ing = k8s.ingress(
            f"i{i}",
            rules=draw(st.lists(rule, min_size=1, max_size=3)),
            annotations={k8s.ANN + k: v for k, v in chosen.items()},
            created=f"2024-01-0{draw(st.integers(min_value=1, max_value=3))}T00:00:00Z",
            default_backend=draw(st.none() | backend),
        )
        if draw(st.booleans()):
            hosts = [r["host"] for r in ing["spec"]["rules"] if "host" in r]
            ing["spec"]["tls"] = [{"hosts": hosts, "secretName": "web-tls"}]
        out.append(ing)
    return out


def run(objs: list[dict[str, Any]], *, secrets: list[dict[str, Any]] | None = None) -> Translation:
    return k8s.run(
        *objs,
        services=SERVICES,
        slices=SLICES,
        config_maps=CONFIG_MAPS,
        secrets=secrets if secrets is not None else [k8s.tls_secret()],
    )


# --- invariants ---------------------------------------------------------------------------------


def regexes(route: Any) -> list[str]:
    """Every RE2 regex a route holds."""
    found = []
    if route.match.HasField("safe_regex"):
        found.append(route.match.safe_regex.regex)
    for matcher in (*route.match.headers, *route.match.query_parameters):
        if matcher.string_match.HasField("safe_regex"):
            found.append(matcher.string_match.safe_regex.regex)
    if route.route.HasField("regex_rewrite"):
        found.append(route.route.regex_rewrite.pattern.regex)
    if route.redirect.HasField("regex_rewrite"):
        found.append(route.redirect.regex_rewrite.pattern.regex)
    if "envoy.filters.http.cors" in route.typed_per_filter_config:
        for origin in cors(route).allow_origin_string_match:
            if origin.HasField("safe_regex"):
                found.append(origin.safe_regex.regex)
    return found


def check_invariants(t: Translation) -> list[Any]:
    """Assert what must hold for any tenant; return the routes."""
    by_type: dict[TypeUrl, list[str]] = {}
    for r in t.resources:
        by_type.setdefault(r.type_url, []).append(r.name)
    for type_url, found in by_type.items():
        assert len(found) == len(set(found)), f"duplicate {type_url.short} names: {found}"
        assert all(n.startswith(f"{t.tenant}/") for n in found)
    clusters = {c.name: c for c in map(decode, of_type(t, TypeUrl.CLUSTER))}
    endpoints = set(by_type.get(TypeUrl.ENDPOINT, []))
    for c in clusters.values():
        assert c.eds_cluster_config.service_name in endpoints
    configs = [decode(r) for r in of_type(t, TypeUrl.ROUTE)]
    assert len(configs) <= 1
    vhosts = [vh for rc in configs for vh in rc.virtual_hosts]
    scopes = [decode(r) for r in of_type(t, TypeUrl.SCOPED_ROUTE)]
    assert sorted(s.key.fragments[0].string_key for s in scopes) == sorted(vh.name for vh in vhosts)
    assert all(s.route_configuration_name == f"{t.tenant}/routes" for s in scopes)
    assert list(t.hosts) == [vh.name for vh in vhosts]
    assert all(list(rc.request_headers_to_remove) == ["x-ripple-scope"] for rc in configs)
    routes = []
    for vh in vhosts:
        assert list(vh.domains) == [vh.name]
        assert check_host(vh.name) is None
        # Wildcards are served too; the gateway's scope key filter needs the marker.
        assert vh.metadata.filter_metadata["ripple.scope"].fields["served"].bool_value
        assert vh.routes, f"virtual host {vh.name} without routes"
        routes.extend(vh.routes)
    for route in routes:
        action = route.WhichOneof("action")
        assert action in ("route", "redirect", "direct_response")
        if action == "route":
            wanted = [route.route.cluster] if route.route.cluster else []
            wanted += [w.name for w in route.route.weighted_clusters.clusters]
            assert wanted
            assert all(name in clusters for name in wanted), wanted
            if route.route.weighted_clusters.clusters:
                assert sum(w.weight.value for w in route.route.weighted_clusters.clusters) > 0
        for regex in regexes(route):
            assert check_re2(regex) is None, regex
            assert program_size(regex) <= ENVOY_MAX_PROGRAM_SIZE, regex
    return routes


@FAST
@given(ingresses())
def test_generated_ingresses_translate_into_consistent_resources(
    objs: list[dict[str, Any]],
) -> None:
    t = run(objs)
    routes = check_invariants(t)

    # Invalid input yields diagnostics, not output.
    not_served = {
        f"{d.object.namespace}/{d.object.name}"
        for d in t.diagnostics
        if d.severity is Severity.ERROR and d.message.endswith("the Ingress is not served")
    }
    assert not {r.name for r in routes} & not_served
    for ing in objs:
        name = ing["metadata"]["name"]
        on_it = [d.message for d in t.diagnostics if d.object.name == name]
        for key, value in ing["metadata"].get("annotations", {}).items():
            short = key.removeprefix(k8s.ANN)
            if (short, value) in INVALID:
                assert any(short in m for m in on_it), (short, value, on_it)
        for r in ing["spec"]["rules"]:
            host = r.get("host")
            if host is not None and check_host(host) is not None:
                assert host not in t.hosts
                assert f"shop/{name}" in not_served or any(host in m for m in on_it)

    # Deterministic whatever the order of the objects.
    shuffled = list(objs)
    random.Random(len(objs)).shuffle(shuffled)
    again = run(shuffled)
    assert again.resources == t.resources
    assert again.diagnostics == t.diagnostics


@pytest.mark.skipif(ENVOY is None, reason="no Envoy binary (RIPPLE_ENVOY_BIN)")
@settings(
    max_examples=ENVOY_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
    # Shrinking would run Envoy hundreds of times; the failing example and Envoy's error are
    # reported as found.
    phases=[Phase.explicit, Phase.generate],
)
@given(ingresses(most=10, most_annotations=10))
def test_envoy_accepts_generated_ingresses(objs: list[dict[str, Any]]) -> None:
    assert ENVOY is not None
    # A structurally valid PEM pair is enough for the translator, not for Envoy: no Secret.
    t = run(objs, secrets=[])

    result = envoy_check.validate(ENVOY, t.resources)

    assert result.returncode == 0, result.stderr[-2000:]


def test_invalid_load_balance_is_reported_even_beside_upstream_hash_by() -> None:
    """Found by the property test: load-balance was not read when upstream-hash-by was set."""
    t = k8s.run(k8s.ingress(annotations=k8s.nginx(load_balance="bogus", upstream_hash_by="$host")))

    assert [d.message for d in t.diagnostics if "load-balance" in d.message]
    assert t.hosts == ("shop.example.com",)  # the bad value is dropped (a Warning)
