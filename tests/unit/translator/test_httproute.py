"""Gateway API HTTPRoutes: golden Envoy resources for every match kind and filter, and the
diagnostics for what is left out."""

from __future__ import annotations

import random
from typing import Any

from ripple_common.envelope import Envelope, EventType
from ripple_common.resources import TypeUrl
from ripple_translator.partition_state import TenantObjects
from ripple_translator.translate import (
    GatewayPolicy,
    Reason,
    Severity,
    TenantState,
    TranslateOptions,
    translate,
)
from tests.unit.translator import gwapi, k8s
from tests.unit.translator.decode import diags, match_of, names, route_config, routes

HOST = gwapi.HOST
WEB = "t1/shop/web:80"


def services(*names_: str) -> list[dict[str, Any]]:
    return [k8s.service(n) for n in names_]


def slices(*names_: str) -> list[dict[str, Any]]:
    return [
        k8s.endpoint_slice(f"{n}-x", service_name=n, endpoints=[k8s.endpoint("10.0.0.1")])
        for n in names_
    ]


def summary(route: Any) -> tuple[str, str, list[tuple[str, str]], list[tuple[str, str]]]:
    kind, value = match_of(route)
    headers = [
        (h.name, h.string_match.exact or h.string_match.safe_regex.regex)
        for h in route.match.headers
    ]
    query = [
        (q.name, q.string_match.exact or q.string_match.safe_regex.regex)
        for q in route.match.query_parameters
    ]
    return kind, value, headers, query


# --- basics -------------------------------------------------------------------------------------


def test_route_on_a_gateway_becomes_a_scope_a_virtual_host_and_a_cluster() -> None:
    t = gwapi.run(gwapi.http_route())

    assert names(t, TypeUrl.CLUSTER) == [WEB]
    assert names(t, TypeUrl.ENDPOINT) == [WEB]
    assert names(t, TypeUrl.SCOPED_ROUTE) == [f"t1/scope/{HOST}"]
    assert t.hosts == (HOST,)
    [route] = routes(t)
    assert match_of(route) == ("prefix", "/")
    assert route.route.cluster == WEB
    assert route.name == "shop/web/rules/0"
    assert not t.diagnostics
    assert [(c.host, str(c.ingress)) for c in t.claims] == [(HOST, "HTTPRoute shop/web")]
    # Gateway API core has no retries: ingress-nginx's default is for Ingress hosts only.
    assert not route_config(t).virtual_hosts[0].HasField("retry_policy")


def test_path_kinds() -> None:
    t = gwapi.run(
        gwapi.http_route(
            rules=[
                gwapi.rule(
                    gwapi.path_match("/exact", "Exact"),
                    gwapi.path_match("/api/"),
                    gwapi.path_match("/v[0-9]+/.*", "RegularExpression"),
                )
            ]
        )
    )

    assert [match_of(r) for r in routes(t)] == [
        ("path", "/exact"),
        ("safe_regex", "/v[0-9]+/.*"),
        ("path_separated_prefix", "/api"),
    ]


def test_header_query_and_method_matches() -> None:
    match = gwapi.path_match(
        "/s",
        headers=[
            {"name": "X-Env", "value": "beta"},
            {"type": "RegularExpression", "name": "x-user", "value": "u[0-9]+"},
            {"name": "x-env", "value": "ignored: the first equivalent name counts"},
            {"name": "Host", "value": "shop.example.com"},
        ],
        queryParams=[
            {"name": "q", "value": "1"},
            {"type": "RegularExpression", "name": "p", "value": "a.*"},
        ],
        method="POST",
    )
    t = gwapi.run(gwapi.http_route(rules=[gwapi.rule(match)]))

    [route] = routes(t)
    assert summary(route) == (
        "path_separated_prefix",
        "/s",
        [
            (":method", "POST"),
            ("x-env", "beta"),
            ("x-user", "u[0-9]+"),
            (":authority", "shop.example.com"),
        ],
        [("q", "1"), ("p", "a.*")],
    )
    assert route.match.headers[2].string_match.HasField("safe_regex")
    assert route.match.query_parameters[1].string_match.HasField("safe_regex")


def test_gateway_api_match_precedence_across_rules_and_routes() -> None:
    older = gwapi.http_route(
        "older",
        created="2024-01-01T00:00:00Z",
        rules=[
            gwapi.rule(gwapi.path_match("/")),
            gwapi.rule(gwapi.path_match("/a", headers=[{"name": "h", "value": "1"}])),
        ],
    )
    newer = gwapi.http_route(
        "newer",
        created="2024-02-01T00:00:00Z",
        rules=[
            gwapi.rule(gwapi.path_match("/a", queryParams=[{"name": "q", "value": "1"}])),
            gwapi.rule(gwapi.path_match("/a", method="GET")),
            gwapi.rule(gwapi.path_match("/a/b")),
            gwapi.rule(gwapi.path_match("/a", "Exact")),
            gwapi.rule(
                gwapi.path_match(
                    "/a",
                    headers=[{"name": "h", "value": "1"}, {"name": "i", "value": "2"}],
                )
            ),
            gwapi.rule(gwapi.path_match("/a")),
        ],
    )
    t = gwapi.run(newer, older)

    assert [(r.name, summary(r)) for r in routes(t)] == [
        ("shop/newer/rules/3", ("path", "/a", [], [])),
        ("shop/newer/rules/2", ("path_separated_prefix", "/a/b", [], [])),
        ("shop/newer/rules/1", ("path_separated_prefix", "/a", [(":method", "GET")], [])),
        (
            "shop/newer/rules/4",
            ("path_separated_prefix", "/a", [("h", "1"), ("i", "2")], []),
        ),
        ("shop/older/rules/1", ("path_separated_prefix", "/a", [("h", "1")], [])),
        ("shop/newer/rules/0", ("path_separated_prefix", "/a", [], [("q", "1")])),
        ("shop/newer/rules/5", ("path_separated_prefix", "/a", [], [])),
        ("shop/older/rules/0", ("prefix", "/", [], [])),
    ]


def test_equal_matches_keep_the_older_route_and_warn_the_newer() -> None:
    older = gwapi.http_route("older", created="2024-01-01T00:00:00Z")
    newer = gwapi.http_route(
        "newer",
        created="2024-02-01T00:00:00Z",
        rules=[gwapi.rule(gwapi.path_match("/"), backends=[gwapi.backend_ref("v2")])],
    )
    t = gwapi.run(newer, older, services=services("web", "v2"), slices=slices("web", "v2"))

    assert [r.name for r in routes(t)] == ["shop/older/rules/0"]
    [d] = diags(t, Reason.PATH_CONFLICT)
    assert str(d.object) == "HTTPRoute shop/newer"
    assert d.severity is Severity.WARNING


def test_output_does_not_depend_on_input_order() -> None:
    objs = [
        gwapi.http_route("a", created="2024-01-01T00:00:00Z"),
        gwapi.http_route(
            "b",
            hostnames=["x.example.com", HOST],
            rules=[gwapi.rule(gwapi.path_match("/b"), backends=[gwapi.backend_ref("v2")])],
        ),
    ]
    first = gwapi.run(*objs, services=services("web", "v2"), slices=slices("web", "v2"))
    shuffled = list(reversed(objs))
    random.Random(1).shuffle(shuffled)
    again = gwapi.run(*shuffled, services=services("v2", "web"), slices=slices("v2", "web"))

    assert first.resources == again.resources
    assert first.diagnostics == again.diagnostics


# --- backends -----------------------------------------------------------------------------------


def test_weighted_backends_become_weighted_clusters() -> None:
    rule = gwapi.rule(
        backends=[
            gwapi.backend_ref("web", weight=3),
            gwapi.backend_ref("v2", weight=1),
            gwapi.backend_ref("idle", weight=0),
        ]
    )
    t = gwapi.run(
        gwapi.http_route(rules=[rule]),
        services=services("web", "v2", "idle"),
        slices=slices("web", "v2", "idle"),
    )

    [route] = routes(t)
    assert [(c.name, c.weight.value) for c in route.route.weighted_clusters.clusters] == [
        ("t1/shop/v2:80", 1),
        (WEB, 3),
    ]
    assert names(t, TypeUrl.CLUSTER) == ["t1/shop/v2:80", WEB]
    assert not t.diagnostics


def test_unresolvable_backends_get_no_share_and_alone_answer_500() -> None:
    rule = gwapi.rule(
        backends=[
            gwapi.backend_ref("web"),
            gwapi.backend_ref("missing"),
            gwapi.backend_ref("other-ns", namespace="elsewhere"),
            gwapi.backend_ref("web", None),
            gwapi.backend_ref("bucket", group="example.com", kind="Bucket"),
        ]
    )
    only_missing = gwapi.rule(gwapi.path_match("/m"), backends=[gwapi.backend_ref("missing")])
    empty = gwapi.rule(gwapi.path_match("/e"), backends=[])
    t = gwapi.run(gwapi.http_route(rules=[rule, only_missing, empty]))

    by_name = {r.name: r for r in routes(t)}
    assert by_name["shop/web/rules/0"].route.cluster == WEB
    assert by_name["shop/web/rules/1"].direct_response.status == 500
    assert by_name["shop/web/rules/2"].direct_response.status == 500
    assert {d.reason for d in t.diagnostics} == {
        Reason.SERVICE_NOT_FOUND,
        Reason.REF_NOT_PERMITTED,
        Reason.SERVICE_PORT_NOT_FOUND,
        Reason.UNSUPPORTED_BACKEND,
    }
    assert all(d.severity is Severity.WARNING for d in t.diagnostics)


# --- filters ------------------------------------------------------------------------------------


def test_request_redirect() -> None:
    full = {
        "type": "RequestRedirect",
        "requestRedirect": {
            "scheme": "https",
            "hostname": "new.example.com",
            "port": 8443,
            "statusCode": 301,
            "path": {"type": "ReplaceFullPath", "replaceFullPath": "/landing"},
        },
    }
    prefix = {
        "type": "RequestRedirect",
        "requestRedirect": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v2"}},
    }
    t = gwapi.run(
        gwapi.http_route(
            rules=[
                gwapi.rule(gwapi.path_match("/old"), filters=[full], backends=[]),
                gwapi.rule(gwapi.path_match("/v1/"), filters=[prefix], backends=[]),
            ]
        )
    )

    old, v1 = routes(t)
    assert old.redirect.scheme_redirect == "https"
    assert old.redirect.host_redirect == "new.example.com"
    assert old.redirect.port_redirect == 8443
    assert old.redirect.response_code == old.redirect.MOVED_PERMANENTLY
    assert old.redirect.path_redirect == "/landing"
    assert not old.redirect.strip_query
    assert v1.redirect.response_code == v1.redirect.FOUND
    assert (v1.redirect.regex_rewrite.pattern.regex, v1.redirect.regex_rewrite.substitution) == (
        "^/v1",
        "/v2",
    )
    assert names(t, TypeUrl.CLUSTER) == []


def rewrite(path: dict[str, str] | None = None, hostname: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if path is not None:
        body["path"] = path
    if hostname is not None:
        body["hostname"] = hostname
    return {"type": "URLRewrite", "urlRewrite": body}


def test_url_rewrite_of_host_full_path_and_prefix() -> None:
    t = gwapi.run(
        gwapi.http_route(
            rules=[
                gwapi.rule(
                    gwapi.path_match("/full"),
                    filters=[
                        rewrite({"type": "ReplaceFullPath", "replaceFullPath": "/x"}, "in.svc")
                    ],
                ),
                gwapi.rule(
                    gwapi.path_match("/strip/"),
                    filters=[rewrite({"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"})],
                ),
                gwapi.rule(
                    gwapi.path_match("/p"),
                    filters=[
                        rewrite({"type": "ReplacePrefixMatch", "replacePrefixMatch": "/q/r/"})
                    ],
                ),
                gwapi.rule(
                    gwapi.path_match("/"),
                    filters=[rewrite({"type": "ReplacePrefixMatch", "replacePrefixMatch": "/b"})],
                ),
            ]
        )
    )

    rewrites = {
        r.name: (
            r.route.regex_rewrite.pattern.regex,
            r.route.regex_rewrite.substitution,
            r.route.host_rewrite_literal,
        )
        for r in routes(t)
    }
    assert rewrites == {
        "shop/web/rules/0": ("^/.*$", "/x", "in.svc"),
        "shop/web/rules/1": ("^/strip/*", "/", ""),
        "shop/web/rules/2": ("^/p", "/q/r", ""),
        "shop/web/rules/3": ("^/", "/b/", ""),
    }


def test_header_modifiers() -> None:
    filters = [
        gwapi.header_filter(
            "RequestHeaderModifier",
            set=[("X-Set", "1%")],
            add=[("X-Add", "2")],
            remove=["X-Drop"],
        ),
        gwapi.header_filter("ResponseHeaderModifier", set=[("X-R", "3")], remove=["Server"]),
    ]
    t = gwapi.run(gwapi.http_route(rules=[gwapi.rule(filters=filters)]))

    [route] = routes(t)
    added = [(h.header.key, h.header.value, h.append_action) for h in route.request_headers_to_add]
    option = route.request_headers_to_add[0]
    assert added == [
        ("X-Set", "1%%", option.OVERWRITE_IF_EXISTS_OR_ADD),
        ("X-Add", "2", option.APPEND_IF_EXISTS_OR_ADD),
    ]
    assert list(route.request_headers_to_remove) == ["x-drop"]
    assert [(h.header.key, h.header.value) for h in route.response_headers_to_add] == [("X-R", "3")]
    assert list(route.response_headers_to_remove) == ["server"]


def test_filters_that_cannot_be_skipped_answer_500_others_warn() -> None:
    ext = {"type": "ExtensionRef", "extensionRef": {"group": "x", "kind": "Y", "name": "z"}}
    mirror = {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "web"}}}
    t = gwapi.run(
        gwapi.http_route(
            rules=[
                gwapi.rule(gwapi.path_match("/ext"), filters=[ext]),
                gwapi.rule(gwapi.path_match("/mirror"), filters=[mirror]),
            ]
        )
    )

    by_name = {r.name: r for r in routes(t)}
    ext_route, mirror_route = by_name["shop/web/rules/0"], by_name["shop/web/rules/1"]
    assert ext_route.direct_response.status == 500
    assert mirror_route.route.cluster == WEB
    assert sorted(d.message.split(":")[0] for d in diags(t, Reason.UNSUPPORTED_FILTER)) == [
        "rule 0",
        "rule 1",
    ]


# --- attachment and hostnames -------------------------------------------------------------------


def test_routes_of_other_gateway_classes_or_missing_gateways_are_not_ours() -> None:
    t = gwapi.run(
        gwapi.http_route("a", parents=[{"name": "theirs"}]),
        gwapi.http_route("b", parents=[{"name": "nope"}]),
        gateways=[gwapi.gateway("theirs", class_name="istio")],
    )

    assert t.resources == ()
    assert t.diagnostics == ()
    assert t.claims == ()


def test_gateway_classes_served_are_an_option() -> None:
    options = TranslateOptions(gateways=GatewayPolicy(class_names=frozenset({"istio"})))
    t = gwapi.run(
        gwapi.http_route(parents=[{"name": "theirs"}]),
        gateways=[gwapi.gateway("theirs", class_name="istio")],
        options=options,
    )

    assert t.hosts == (HOST,)


def test_listener_selection_by_section_namespaces_and_kinds() -> None:
    gw = gwapi.gateway(
        listeners=[
            gwapi.listener("same", hostname="same.example.com"),
            gwapi.listener("all", hostname="all.example.com", allowed_from="All"),
            gwapi.listener("grpc-only", hostname="g.example.com", kinds=["GRPCRoute"]),
            gwapi.listener("tcp", hostname="tcp.example.com", protocol="TCP"),
        ]
    )
    hostnames = ["same.example.com", "all.example.com", "g.example.com", "tcp.example.com"]
    local = gwapi.http_route("local", hostnames=hostnames)
    foreign = gwapi.http_route(
        "foreign",
        hostnames=hostnames,
        namespace="other",
        parents=[{"name": "gw", "namespace": "shop"}],
        rules=[gwapi.rule(gwapi.path_match("/f"))],
    )
    picky = gwapi.http_route(
        "picky", hostnames=hostnames, parents=[{"name": "gw", "sectionName": "grpc-only"}]
    )
    t = gwapi.run(
        local,
        foreign,
        picky,
        gateways=[gw],
        services=[k8s.service(), k8s.service(namespace="other")],
    )

    assert t.hosts == ("all.example.com", "same.example.com")
    assert [r.name for r in routes(t, "all.example.com")] == [
        "other/foreign/rules/0",
        "shop/local/rules/0",
    ]
    assert [r.name for r in routes(t, "same.example.com")] == ["shop/local/rules/0"]
    [not_allowed] = diags(t, Reason.NOT_ALLOWED_BY_LISTENERS)
    assert str(not_allowed.object) == "HTTPRoute shop/picky"
    [tcp] = diags(t, Reason.UNSUPPORTED_LISTENER)
    assert str(tcp.object) == "Gateway shop/gw"


def test_hostname_intersection_with_listeners() -> None:
    gw = gwapi.gateway(
        listeners=[
            gwapi.listener("wild", hostname="*.example.com"),
            gwapi.listener("exact", hostname="fixed.example.org"),
        ]
    )
    t = gwapi.run(
        gwapi.http_route("named", hostnames=["a.example.com", "b.c.example.com", "x.other.org"]),
        gwapi.http_route("wild", hostnames=["*.example.org"]),
        gwapi.http_route(
            "none", hostnames=["nowhere.net"], parents=[{"name": "gw", "sectionName": "exact"}]
        ),
        gateways=[gw],
    )

    assert t.hosts == ("a.example.com", "b.c.example.com", "fixed.example.org")
    [nowhere] = diags(t, Reason.NO_MATCHING_LISTENER_HOSTNAME)
    assert str(nowhere.object) == "HTTPRoute shop/none"
    # The listener's wildcard itself is not a host: only the routes' names it covers are.
    assert "*.example.com" not in t.hosts


def test_hosts_from_the_listener_wildcards_and_catch_all() -> None:
    gw = gwapi.gateway(
        listeners=[
            gwapi.listener("named", hostname="l.example.com"),
            gwapi.listener("wild", hostname="*.w.example.com"),
            gwapi.listener("any"),
        ]
    )
    t = gwapi.run(
        gwapi.http_route(
            "inherit", hostnames=None, parents=[{"name": "gw", "sectionName": "named"}]
        ),
        gwapi.http_route("wild", hostnames=None, parents=[{"name": "gw", "sectionName": "wild"}]),
        gwapi.http_route("all", hostnames=None, parents=[{"name": "gw", "sectionName": "any"}]),
        gateways=[gw],
    )

    # A route without hostnames on a wildcard listener serves the wildcard.
    assert t.hosts == ("*.w.example.com", "l.example.com")
    assert [str(d.object) for d in diags(t, Reason.CATCH_ALL_UNSUPPORTED)] == ["HTTPRoute shop/all"]
    assert sorted(c.host for c in t.claims) == ["*.w.example.com", "l.example.com"]


def test_denied_hosts_are_errors_on_the_route() -> None:
    options = TranslateOptions(host_allowed=lambda h: h != HOST)
    t = gwapi.run(gwapi.http_route(hostnames=[HOST, "ok.example.com"]), options=options)

    assert t.hosts == ("ok.example.com",)
    [d] = diags(t, Reason.HOST_NOT_ALLOWED)
    assert d.severity is Severity.ERROR
    assert HOST in [c.host for c in t.claims]


# --- invalid routes -----------------------------------------------------------------------------


def test_invalid_values_keep_the_route_out_and_others_in() -> None:
    bad_rules = {
        "regex": gwapi.rule(gwapi.path_match("/(?=x)", "RegularExpression")),
        "big-regex": gwapi.rule(gwapi.path_match("/" + "a{50}" * 3, "RegularExpression")),
        "header-regex": gwapi.rule(
            gwapi.path_match(headers=[{"type": "RegularExpression", "name": "h", "value": "("}])
        ),
        "header-name": gwapi.rule(gwapi.path_match(headers=[{"name": "bad name", "value": "1"}])),
        "path": gwapi.rule(gwapi.path_match("no-slash")),
        "method": gwapi.rule(gwapi.path_match(method="FETCH")),
        "set-host": gwapi.rule(
            filters=[gwapi.header_filter("RequestHeaderModifier", set=[("Host", "x")])]
        ),
        "both": gwapi.rule(
            filters=[
                rewrite(hostname="a.example.com"),
                {"type": "RequestRedirect", "requestRedirect": {"scheme": "https"}},
            ]
        ),
        "prefix-on-exact": gwapi.rule(
            gwapi.path_match("/x", "Exact"),
            filters=[rewrite({"type": "ReplacePrefixMatch", "replacePrefixMatch": "/y"})],
        ),
        "code": gwapi.rule(
            filters=[{"type": "RequestRedirect", "requestRedirect": {"statusCode": 399}}]
        ),
        "weight": gwapi.rule(backends=[gwapi.backend_ref(weight=-1)]),
    }
    bad = [gwapi.http_route(name, rules=[r]) for name, r in bad_rules.items()]
    good = gwapi.http_route("good", hostnames=["good.example.com"])
    t = gwapi.run(*bad, good)

    assert t.hosts == ("good.example.com",)
    errors = diags(t, Reason.INVALID_RULE, Severity.ERROR)
    assert sorted({d.object.name for d in errors}) == sorted(bad_rules)
    assert all("the HTTPRoute is not served" in d.message for d in errors)
    assert HOST not in [c.host for c in t.claims]


def test_malformed_objects_are_invalid_object_errors() -> None:
    broken = gwapi.http_route()
    broken["spec"]["rules"][0]["matches"] = [{"path": {"type": "Glob", "value": "/"}}]
    no_class = gwapi.gateway("gw2")
    del no_class["spec"]["gatewayClassName"]
    t = gwapi.run(broken, gateways=[gwapi.gateway(), no_class])

    assert sorted(str(d.object) for d in diags(t, Reason.INVALID_OBJECT)) == [
        "Gateway shop/gw2",
        "HTTPRoute shop/web",
    ]
    assert t.resources == ()


# --- Ingress and HTTPRoute on one host ----------------------------------------------------------


def test_older_ingress_keeps_the_host_from_a_newer_route() -> None:
    ing = k8s.ingress("ing", created="2024-01-01T00:00:00Z")
    route = gwapi.http_route(
        "route", hostnames=[HOST, "only-route.example.com"], created="2024-02-01T00:00:00Z"
    )
    t = gwapi.run(route, ingresses=[ing])

    assert t.hosts == ("only-route.example.com", HOST)
    assert [r.name for r in routes(t)] == ["shop/ing"]
    [d] = diags(t, Reason.HOST_CONFLICT)
    assert str(d.object) == "HTTPRoute shop/route"
    assert "older Ingress shop/ing" in d.message
    assert {(c.host, str(c.ingress)) for c in t.claims} == {
        (HOST, "Ingress shop/ing"),
        ("only-route.example.com", "HTTPRoute shop/route"),
    }


def test_older_route_keeps_the_host_from_a_newer_ingress() -> None:
    ing = k8s.ingress(
        "ing",
        created="2024-03-01T00:00:00Z",
        rules=[k8s.rule(HOST), k8s.rule("only-ingress.example.com")],
        default_backend=k8s.backend(),
    )
    route = gwapi.http_route("route", created="2024-02-01T00:00:00Z")
    t = gwapi.run(route, ingresses=[ing])

    assert [r.name for r in routes(t)] == ["shop/route/rules/0"]
    assert [r.name for r in routes(t, "only-ingress.example.com")] == ["shop/ing", "shop/ing"]
    [d] = diags(t, Reason.HOST_CONFLICT)
    assert str(d.object) == "Ingress shop/ing"
    assert [(c.host, str(c.ingress)) for c in t.claims] == [
        ("only-ingress.example.com", "Ingress shop/ing"),
        (HOST, "HTTPRoute shop/route"),
    ]
    assert len(route_config(t).virtual_hosts) == 2


# --- the service's view -------------------------------------------------------------------------


def test_tenant_objects_pass_gateways_and_routes_to_the_translation() -> None:
    objs = TenantObjects("t1")
    for obj in (gwapi.gateway(), gwapi.http_route(), k8s.service()):
        objs.apply(
            Envelope(
                type=EventType.ADDED,
                kind=obj["kind"],
                tenant="t1",
                namespace="shop",
                name=obj["metadata"]["name"],
                uid="u",
                resource_version="1",
                observed_at_ns=1,
                object=obj,
            )
        )
    state = objs.state()

    assert [g["kind"] for g in state.gateways] == ["Gateway"]
    assert [r["kind"] for r in state.http_routes] == ["HTTPRoute"]
    t = translate(state)
    assert t.hosts == (HOST,)


def test_a_tenant_without_gateway_objects_is_unchanged() -> None:
    plain = k8s.run(k8s.ingress())
    with_empty = translate(
        TenantState(
            tenant="t1",
            ingresses=(k8s.ingress(),),
            services=(k8s.service(),),
            endpoint_slices=(k8s.endpoint_slice(endpoints=[k8s.endpoint("10.0.0.1")]),),
            gateways=(gwapi.gateway(),),
        ),
        ingress_classes=(k8s.ingress_class(),),
    )

    assert plain.resources == with_empty.resources


def test_non_gateway_parents_are_reported_only_on_routes_that_are_ours() -> None:
    mesh = {"group": "", "kind": "Service", "name": "mesh"}
    t = gwapi.run(
        gwapi.http_route("both", parents=[{"name": "gw"}, mesh]),
        gwapi.http_route("mesh-only", hostnames=["m.example.com"], parents=[mesh]),
    )

    assert t.hosts == (HOST,)
    assert [(str(d.object), d.reason) for d in t.diagnostics] == [
        ("HTTPRoute shop/both", Reason.NO_MATCHING_PARENT)
    ]


def test_https_listener_certificates_are_bound_to_their_hostnames() -> None:
    gw = gwapi.gateway(
        listeners=[
            gwapi.listener("http"),
            gwapi.listener(
                "https", protocol="HTTPS", port=443, hostname=HOST, certificates=["web-tls"]
            ),
            gwapi.listener(
                "wild",
                protocol="HTTPS",
                port=443,
                hostname="*.example.com",
                certificates=["web-tls"],
            ),
        ]
    )
    t = gwapi.run(gwapi.http_route(), gateways=[gw], secrets=[k8s.tls_secret()])

    assert t.hosts == (HOST,)
    assert [(b.host, b.secret) for b in t.tls] == [
        ("*.example.com", "t1/shop/web-tls"),
        (HOST, "t1/shop/web-tls"),
    ]
    assert names(t, TypeUrl.SECRET) == ["t1/shop/web-tls"]
    assert {c.host for c in t.claims} == {HOST, "*.example.com"}
    assert not t.diagnostics


def test_https_listener_problems_are_warnings_on_the_gateway() -> None:
    def https(name: str, **kwargs: Any) -> dict[str, Any]:
        return gwapi.listener(name, protocol="HTTPS", port=443, **kwargs)

    gw = gwapi.gateway(
        listeners=[
            https("no-host", certificates=["web-tls"]),
            https("no-cert", hostname="a.example.com"),
            https("missing", hostname="b.example.com", certificates=["nope"]),
            https(
                "pass", hostname="c.example.com", certificates=["web-tls"], tls_mode="Passthrough"
            ),
            https("taken", hostname=HOST, certificates=["other-tls"]),
        ]
    )
    ing = k8s.ingress(tls=[{"hosts": [HOST], "secretName": "web-tls"}])
    other = k8s.tls_secret("other-tls")
    t = gwapi.run(gateways=[gw], ingresses=[ing], secrets=[k8s.tls_secret(), other])

    assert [(b.host, b.secret) for b in t.tls] == [(HOST, "t1/shop/web-tls")]
    gateway_diags = sorted(
        (d.reason, d.message.split(":")[0]) for d in t.diagnostics if d.object.kind == "Gateway"
    )
    assert gateway_diags == [
        (Reason.INVALID_SECRET, "listener missing"),
        (Reason.INVALID_SECRET, "listener no-cert"),
        (Reason.INVALID_SECRET, "listener no-host"),
        (Reason.INVALID_SECRET, "listener pass"),
        (Reason.SETTING_CONFLICT, "listener taken"),
    ]
