"""ingress-nginx annotations: what each supported one becomes, and that nothing is ignored
silently."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ripple_common.resources import TypeUrl
from ripple_translator.translate import Reason, Severity, Translation
from ripple_translator.translate.catalog import ENTRIES, PREFIX, Support
from tests.unit.translator import decode, k8s

Check = Callable[[Translation], Any]
ProtoCheck = Callable[[Any], Any]


def _route(t: Translation) -> Any:
    return decode.main_route(t)


ROUTE_EFFECTS: list[tuple[dict[str, str], Check, Any]] = [
    ({"upstream-vhost": "internal.svc"}, lambda t: _route(t).route.host_rewrite_literal,
     "internal.svc"),
    ({"proxy-read-timeout": "120"}, lambda t: _route(t).route.idle_timeout.seconds, 120),
    ({"proxy-send-timeout": "90"}, lambda t: _route(t).route.idle_timeout.seconds, 90),
    ({"proxy-read-timeout": "5", "proxy-send-timeout": "30"},
     lambda t: _route(t).route.idle_timeout.seconds, 30),
    ({"proxy-read-timeout": "1500ms", "proxy-send-timeout": "1s"},
     lambda t: _route(t).route.idle_timeout.nanos, 500_000_000),
    ({"x-forwarded-prefix": "/shop"},
     lambda t: [(h.header.key, h.header.value) for h in _route(t).request_headers_to_add],
     [("X-Forwarded-Prefix", "/shop")]),
    ({"upstream-hash-by": "$request_uri"},
     lambda t: _route(t).route.hash_policy[0].header.header_name, ":path"),
    ({"upstream-hash-by": "$remote_addr"},
     lambda t: _route(t).route.hash_policy[0].connection_properties.source_ip, True),
    ({"upstream-hash-by": "$http_x_user"},
     lambda t: _route(t).route.hash_policy[0].header.header_name, "x-user"),
    ({"upstream-hash-by": "$cookie_session"},
     lambda t: _route(t).route.hash_policy[0].cookie.name, "session"),
    ({"upstream-hash-by": "${arg_id}"},
     lambda t: _route(t).route.hash_policy[0].query_parameter.name, "id"),
    ({"permanent-redirect": "https://new.example.com/x?y=1"},
     lambda t: (_route(t).redirect.host_redirect, _route(t).redirect.path_redirect,
                _route(t).redirect.response_code, _route(t).redirect.strip_query),
     ("new.example.com", "/x?y=1", 0, True)),  # 0 = MOVED_PERMANENTLY
    ({"permanent-redirect": "https://new.example.com", "permanent-redirect-code": "308"},
     lambda t: (_route(t).redirect.path_redirect, _route(t).redirect.response_code),
     ("/", 4)),  # PERMANENT_REDIRECT
    ({"permanent-redirect": "https://new.example.com:8443$request_uri"},
     lambda t: (_route(t).redirect.scheme_redirect, _route(t).redirect.port_redirect,
                _route(t).redirect.path_redirect, _route(t).redirect.strip_query),
     ("https", 8443, "", False)),
    ({"temporal-redirect": "http://tmp.example.com/"},
     lambda t: (_route(t).redirect.host_redirect, _route(t).redirect.response_code),
     ("tmp.example.com", 1)),  # FOUND
    ({"temporal-redirect": "http://a.example.com/", "temporal-redirect-code": "307"},
     lambda t: _route(t).redirect.response_code, 3),  # TEMPORARY_REDIRECT
]  # fmt: skip


@pytest.mark.parametrize(("annotations", "check", "expected"), ROUTE_EFFECTS)
def test_route_annotation_becomes_route_config(
    annotations: dict[str, str], check: Check, expected: Any
) -> None:
    t = k8s.run(k8s.ingress(annotations={PREFIX + k: v for k, v in annotations.items()}))

    assert decode.diags(t) == []
    assert check(t) == expected


def _alpn(c: Any) -> list[str]:
    from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

    ctx = tls_pb2.UpstreamTlsContext.FromString(c.transport_socket.typed_config.value)
    return list(ctx.common_tls_context.alpn_protocols)


CLUSTER_EFFECTS: list[tuple[dict[str, str], str, ProtoCheck, Any]] = [
    ({"proxy-connect-timeout": "10"}, "t1/shop/web:80~connect=10000ms",
     lambda c: c.connect_timeout.seconds, 10),
    ({"load-balance": "ewma"}, "t1/shop/web:80~least_request", lambda c: c.lb_policy, 1),
    ({"upstream-hash-by": "$host"}, "t1/shop/web:80~ring_hash", lambda c: c.lb_policy, 2),
    ({"backend-protocol": "GRPC"}, "t1/shop/web:80~h2",
     lambda c: list(c.typed_extension_protocol_options),
     ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]),
    ({"backend-protocol": "http2"}, "t1/shop/web:80~h2", lambda c: c.HasField("transport_socket"),
     False),
    ({"backend-protocol": "HTTPS"}, "t1/shop/web:80~tls",
     lambda c: c.transport_socket.name, "envoy.transport_sockets.tls"),
    ({"backend-protocol": "GRPCS"}, "t1/shop/web:80~h2,tls", _alpn, ["h2"]),
    ({}, "t1/shop/web:80", lambda c: (c.connect_timeout.seconds, c.lb_policy), (5, 0)),
]  # fmt: skip


@pytest.mark.parametrize(("annotations", "name", "check", "expected"), CLUSTER_EFFECTS)
def test_cluster_annotation_makes_a_cluster_variant(
    annotations: dict[str, str], name: str, check: ProtoCheck, expected: Any
) -> None:
    t = k8s.run(k8s.ingress(annotations={PREFIX + k: v for k, v in annotations.items()}))

    assert decode.main_route(t).route.cluster == name
    assert check(decode.cluster(t, name)) == expected


def test_cluster_variants_share_one_endpoint_assignment() -> None:
    t = k8s.run(
        k8s.ingress("a", rules=[k8s.rule("a.example.com")]),
        k8s.ingress(
            "b", rules=[k8s.rule("b.example.com")], annotations=k8s.nginx(backend_protocol="GRPC")
        ),
    )

    assert decode.names(t, TypeUrl.CLUSTER) == ["t1/shop/web:80", "t1/shop/web:80~h2"]
    assert decode.names(t, TypeUrl.ENDPOINT) == ["t1/shop/web:80"]
    assert decode.cluster(t, "t1/shop/web:80~h2").eds_cluster_config.service_name == (
        "t1/shop/web:80"
    )


def test_app_root_redirects_the_root_first() -> None:
    t = k8s.run(k8s.ingress(annotations=k8s.nginx(app_root="/app")))

    first = decode.routes(t)[0]
    assert decode.match_of(first) == ("path", "/")
    assert (first.redirect.path_redirect, first.redirect.response_code) == ("/app", 1)


def test_cors_becomes_a_per_route_cors_policy_with_ingress_nginx_defaults() -> None:
    t = k8s.run(k8s.ingress(annotations=k8s.nginx(enable_cors="true")))

    policy = decode.cors(decode.main_route(t))
    assert [m.safe_regex.regex for m in policy.allow_origin_string_match] == [".*"]
    assert policy.allow_methods == "GET, PUT, POST, DELETE, PATCH, OPTIONS"
    assert policy.allow_credentials.value is True
    assert policy.max_age == "1728000"


def test_cors_origins_become_exact_and_wildcard_matchers() -> None:
    t = k8s.run(
        k8s.ingress(
            annotations=k8s.nginx(
                enable_cors="true",
                cors_allow_origin="https://a.example.com:8443, https://*.b.example.com",
                cors_allow_methods="get, post",
                cors_allow_headers="X-One,X-Two",
                cors_expose_headers="*",
                cors_allow_credentials="false",
                cors_max_age="600",
            )
        )
    )

    policy = decode.cors(decode.main_route(t))
    matchers = [(m.exact, m.safe_regex.regex) for m in policy.allow_origin_string_match]
    assert matchers == [
        ("https://a.example.com:8443", ""),
        ("", "(?i)https://[a-z0-9-]+\\.b\\.example\\.com"),
    ]
    assert (policy.allow_methods, policy.allow_headers, policy.expose_headers) == (
        "GET, POST",
        "X-One,X-Two",
        "*",
    )
    assert (policy.allow_credentials.value, policy.max_age) == (False, "600")


def test_cors_annotations_without_enable_cors_are_reported() -> None:
    t = k8s.run(k8s.ingress(annotations=k8s.nginx(cors_allow_origin="https://a.example.com")))

    assert "envoy.filters.http.cors" not in decode.main_route(t).typed_per_filter_config
    assert decode.diags(t, Reason.ANNOTATION_IGNORED, Severity.WARNING)


def test_allowlist_becomes_an_rbac_allow_policy_on_remote_ip() -> None:
    t = k8s.run(k8s.ingress(annotations=k8s.nginx(whitelist_source_range="10.0.0.0/8, 192.0.2.7")))

    rules = decode.rbac(decode.main_route(t)).rbac.rules
    assert rules.action == rules.ALLOW
    ids = rules.policies["source-range"].principals[0].or_ids.ids
    assert [(p.remote_ip.address_prefix, p.remote_ip.prefix_len.value) for p in ids] == [
        ("10.0.0.0", 8),
        ("192.0.2.7", 32),
    ]


def test_denylist_becomes_an_rbac_deny_policy() -> None:
    t = k8s.run(k8s.ingress(annotations=k8s.nginx(denylist_source_range="2001:db8::/32")))

    rules = decode.rbac(decode.main_route(t)).rbac.rules
    assert rules.action == rules.DENY
    [p] = rules.policies["source-range"].principals[0].or_ids.ids
    assert (p.remote_ip.address_prefix, p.remote_ip.prefix_len.value) == ("2001:db8::", 32)


def test_allowlist_with_denylist_allows_only_allowed_and_not_denied() -> None:
    t = k8s.run(
        k8s.ingress(
            annotations=k8s.nginx(
                allowlist_source_range="10.0.0.0/8", denylist_source_range="10.1.0.0/16"
            )
        )
    )

    rules = decode.rbac(decode.main_route(t)).rbac.rules
    assert rules.action == rules.ALLOW
    both = rules.policies["source-range"].principals[0].and_ids.ids
    assert both[0].or_ids.ids[0].remote_ip.address_prefix == "10.0.0.0"
    assert both[1].not_id.or_ids.ids[0].remote_ip.address_prefix == "10.1.0.0"


def test_custom_headers_come_from_the_named_config_map() -> None:
    t = k8s.run(
        k8s.ingress(annotations=k8s.nginx(custom_headers="shop/hdrs")),
        config_maps=[k8s.config_map("hdrs", {"X-Frame-Options": "DENY", "X-Rate": "100%"})],
    )

    added = decode.main_route(t).response_headers_to_add
    assert [(h.header.key, h.header.value) for h in added] == [
        ("X-Frame-Options", "DENY"),
        ("X-Rate", "100%%"),  # '%' starts an Envoy substitution; escaped
    ]


def test_custom_headers_with_a_missing_config_map_are_reported() -> None:
    t = k8s.run(k8s.ingress(annotations=k8s.nginx(custom_headers="hdrs")))

    assert list(decode.main_route(t).response_headers_to_add) == []
    assert decode.diags(t, Reason.CONFIG_MAP_NOT_FOUND, Severity.WARNING)


def test_temporal_redirect_wins_over_permanent_redirect_with_a_warning() -> None:
    t = k8s.run(
        k8s.ingress(
            annotations=k8s.nginx(
                temporal_redirect="http://a.example.com/",
                permanent_redirect="http://b.example.com/",
            )
        )
    )

    assert decode.main_route(t).redirect.host_redirect == "a.example.com"
    assert decode.diags(t, Reason.SETTING_CONFLICT, Severity.WARNING)


INVALID_VALUES = [
    ("proxy-read-timeout", "soon"),
    ("proxy-connect-timeout", "0"),
    ("proxy-send-timeout", "-1"),
    ("backend-protocol", "FCGI"),
    ("load-balance", "least_conn"),
    ("use-regex", "maybe"),
    ("ssl-redirect", "yes please"),
    ("rewrite-target", "/$host"),
    ("rewrite-target", "relative"),
    ("permanent-redirect", "ftp://x.example.com/"),
    ("permanent-redirect", "/relative"),
    ("temporal-redirect", "https://$host/x"),
    ("app-root", "app"),
    ("upstream-vhost", "$host"),
    ("upstream-hash-by", "$request_uri$host"),
    ("whitelist-source-range", "10.0.0.0/33"),
    ("denylist-source-range", "not-an-ip"),
    ("custom-headers", "Bad/Name/x"),
]


@pytest.mark.parametrize(("name", "value"), INVALID_VALUES)
def test_invalid_value_is_an_error_and_the_ingress_is_not_served(name: str, value: str) -> None:
    t = k8s.run(k8s.ingress(annotations={PREFIX + name: value}))

    assert t.hosts == ()
    [d] = decode.diags(t, Reason.INVALID_ANNOTATION)
    assert d.severity is Severity.ERROR
    assert PREFIX + name in d.message


def test_redirect_code_envoy_cannot_send_is_an_error() -> None:
    t = k8s.run(
        k8s.ingress(
            annotations=k8s.nginx(
                permanent_redirect="https://x.example.com/", permanent_redirect_code="305"
            )
        )
    )

    assert t.hosts == ()
    [d] = decode.diags(t, Reason.INVALID_ANNOTATION, Severity.ERROR)
    assert "permanent-redirect-code" in d.message


def test_invalid_cors_value_is_an_error() -> None:
    t = k8s.run(k8s.ingress(annotations=k8s.nginx(enable_cors="true", cors_allow_origin="*.x")))

    assert t.hosts == ()
    assert decode.diags(t, Reason.INVALID_ANNOTATION, Severity.ERROR)


UNSUPPORTED = [e for e in ENTRIES if e.support is Support.UNSUPPORTED]
FAIL_CLOSED = [e for e in ENTRIES if e.support is Support.FAIL_CLOSED]


@pytest.mark.parametrize("entry", UNSUPPORTED, ids=lambda e: e.name)
def test_unsupported_annotation_is_a_warning_and_the_ingress_is_still_served(entry: Any) -> None:
    t = k8s.run(k8s.ingress(annotations={PREFIX + entry.name: "true"}))

    assert t.hosts == ("shop.example.com",)
    [d] = decode.diags(t, Reason.UNSUPPORTED_ANNOTATION)
    assert d.severity is Severity.WARNING
    assert PREFIX + entry.name in d.message


@pytest.mark.parametrize("entry", FAIL_CLOSED, ids=lambda e: e.name)
def test_security_annotation_fails_closed(entry: Any) -> None:
    t = k8s.run(k8s.ingress(annotations={PREFIX + entry.name: "true"}))

    assert t.hosts == ()
    [d] = decode.diags(t, Reason.UNSUPPORTED_ANNOTATION)
    assert d.severity is Severity.ERROR


def test_security_switch_turned_off_is_only_a_warning() -> None:
    t = k8s.run(k8s.ingress(annotations=k8s.nginx(ssl_passthrough="false")))

    assert t.hosts == ("shop.example.com",)
    [d] = decode.diags(t, Reason.UNSUPPORTED_ANNOTATION)
    assert d.severity is Severity.WARNING


def test_unknown_annotation_under_the_prefix_is_reported() -> None:
    t = k8s.run(k8s.ingress(annotations={PREFIX + "rewrite-targte": "/"}))

    assert t.hosts == ("shop.example.com",)
    [d] = decode.diags(t, Reason.UNKNOWN_ANNOTATION)
    assert "rewrite-targte" in d.message


def test_annotations_of_other_controllers_are_not_reported() -> None:
    t = k8s.run(k8s.ingress(annotations={"cert-manager.io/cluster-issuer": "letsencrypt"}))

    assert t.diagnostics == ()


def test_catalog_names_are_unique() -> None:
    assert len({e.name for e in ENTRIES}) == len(ENTRIES)
