"""Property tests for HTTPRoutes: generated routes (hostnames, path/header/query/method matches,
every filter, weighted backends, valid and invalid values) attached to a Gateway always
translate into consistent resources a real Envoy accepts; invalid routes are diagnostics, not
output. Same invariants as the Ingress property tests."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ripple_translator.translate import Reason, Severity, Translation
from tests.unit.translator import envoy_check, gwapi, k8s
from tests.unit.translator.test_properties import (
    ENVOY_EXAMPLES,
    EXAMPLES,
    HOSTS,
    ODD_PATHS,
    REGEX_PATHS,
    SERVICES,
    SLICES,
    check_invariants,
    plain_path,
)

ENVOY = envoy_check.find_envoy()
GATEWAY = gwapi.gateway(
    listeners=[gwapi.listener("any"), gwapi.listener("wild", hostname="*.example.com")]
)
HOSTNAMES = (*HOSTS, "*.example.com", "Bad_Host.example.com")


def mostly(valid: tuple[Any, ...], invalid: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    """Values of `valid`, and now and then one of `invalid` (so most routes are served)."""
    return st.sampled_from(valid * (15 * len(invalid)) + invalid)


HEADER_NAMES = mostly(("x-a", "X-B"), ("bad name",))
VALUES = mostly(("1", "beta", "u[0-9]+"), ("(", "a\nb"))
path_value = st.one_of(
    plain_path,
    plain_path,
    plain_path,
    st.sampled_from(REGEX_PATHS[:4]),
    mostly(("/ok",), ODD_PATHS + REGEX_PATHS[4:]),
)
value_match = st.builds(
    lambda kind, name, value: {"type": kind, "name": name, "value": value},
    st.sampled_from(["Exact", "RegularExpression"]),
    HEADER_NAMES,
    VALUES,
)
match = st.builds(
    lambda kind, value, headers, query, method: (
        {
            "path": {"type": kind, "value": value},
            "headers": headers,
            "queryParams": query,
        }
        | ({"method": method} if method else {})
    ),
    st.sampled_from(["Exact", "PathPrefix", "PathPrefix", "PathPrefix", "RegularExpression"]),
    path_value,
    st.lists(value_match, max_size=2),
    st.lists(value_match, max_size=2),
    mostly((None, None, "GET"), ("FETCH",)),
)
path_modifier = st.one_of(
    st.none(),
    st.builds(lambda v: {"type": "ReplaceFullPath", "replaceFullPath": v}, path_value),
    st.builds(lambda v: {"type": "ReplacePrefixMatch", "replacePrefixMatch": v}, path_value),
)
header_pairs = st.lists(
    st.tuples(st.one_of(HEADER_NAMES, mostly(("X-C",), ("Host",))), VALUES), max_size=2
)


def modifier(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda set_, add, remove: gwapi.header_filter(kind, set=set_, add=add, remove=remove),
        header_pairs,
        header_pairs,
        st.lists(HEADER_NAMES, max_size=2),
    )


def drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


redirect = st.builds(
    lambda scheme, host, port, code, path: {
        "type": "RequestRedirect",
        "requestRedirect": drop_none(
            {"scheme": scheme, "hostname": host, "port": port, "statusCode": code, "path": path}
        ),
    },
    mostly((None, "https"), ("ftp",)),
    mostly((None, "new.example.com"), ("*.bad.com",)),
    mostly((None, 8443), (0,)),
    mostly((None, 301, 302, 308), (399,)),
    path_modifier,
)
rewrite = st.builds(
    lambda host, path: {
        "type": "URLRewrite",
        "urlRewrite": drop_none({"hostname": host, "path": path}),
    },
    st.sampled_from([None, "in.svc"]),
    path_modifier,
)
other = st.sampled_from(
    [
        {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "web", "port": 80}}},
        {"type": "ExtensionRef", "extensionRef": {"group": "x", "kind": "Y", "name": "z"}},
    ]
)
filters = st.lists(
    st.one_of(
        modifier("RequestHeaderModifier"),
        modifier("ResponseHeaderModifier"),
        redirect,
        rewrite,
        rewrite,
        other,
    ),
    max_size=2,
    unique_by=lambda f: f["type"],
)
backend = st.builds(
    lambda name, port, weight: drop_none({"name": name, "port": port, "weight": weight}),
    st.sampled_from(["web", "web", "api", "missing"]),
    st.sampled_from([80, 80, 9090, 81, None]),
    st.sampled_from([None, None, 0, 1, 3]),
)
rule = st.builds(
    lambda matches, fs, backends: {"matches": matches, "filters": fs, "backendRefs": backends},
    st.lists(match, max_size=2),
    filters,
    st.lists(backend, max_size=3),
)


@st.composite
def http_routes(draw: st.DrawFn, *, most: int = 3) -> list[dict[str, Any]]:
    out = []
    for i in range(draw(st.integers(min_value=1, max_value=most))):
        section = draw(st.sampled_from([None, "any", "wild"]))
        parent = {"name": "gw"} | ({"sectionName": section} if section else {})
        hostnames = draw(
            st.one_of(
                st.lists(st.sampled_from(HOSTS), min_size=1, max_size=3, unique=True),
                st.lists(st.sampled_from(HOSTNAMES), max_size=3, unique=True),
                st.none(),
            )
        )
        out.append(
            gwapi.http_route(
                f"r{i}",
                hostnames=hostnames,
                parents=[parent],
                rules=draw(st.lists(rule, min_size=1, max_size=2)),
                created=f"2024-01-0{draw(st.integers(min_value=1, max_value=3))}T00:00:00Z",
            )
        )
    return out


def run(routes: list[dict[str, Any]]) -> Translation:
    return gwapi.run(*routes, gateways=[GATEWAY], services=SERVICES, slices=SLICES)


@settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
@given(http_routes())
def test_generated_httproutes_translate_into_consistent_resources(
    routes: list[dict[str, Any]],
) -> None:
    t = run(routes)
    envoy_routes = check_invariants(t)

    invalid = {d.object.name for d in t.diagnostics if d.reason is Reason.INVALID_RULE}
    assert all(
        d.severity is Severity.ERROR for d in t.diagnostics if d.reason is Reason.INVALID_RULE
    )
    assert not [r.name for r in envoy_routes if r.name.split("/")[1] in invalid]
    assert not [c for c in t.claims if c.ingress.name in invalid]

    shuffled = list(routes)
    random.Random(len(routes)).shuffle(shuffled)
    again = run(shuffled)
    assert again.resources == t.resources
    assert again.diagnostics == t.diagnostics


@pytest.mark.skipif(ENVOY is None, reason="no Envoy binary (RIPPLE_ENVOY_BIN)")
@settings(
    max_examples=ENVOY_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
    phases=[Phase.explicit, Phase.generate],
)
@given(http_routes(most=6), st.lists(st.sampled_from(HOSTS), max_size=2, unique=True))
def test_envoy_accepts_generated_httproutes(
    routes: list[dict[str, Any]], ingress_hosts: list[str]
) -> None:
    assert ENVOY is not None
    ingresses = [k8s.ingress(f"ing-{h}", rules=[k8s.rule(h)]) for h in ingress_hosts]
    t = gwapi.run(
        *routes, gateways=[GATEWAY], ingresses=ingresses, services=SERVICES, slices=SLICES
    )

    result = envoy_check.validate(ENVOY, t.resources)

    assert result.returncode == 0, result.stderr[-2000:]
