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


def _retry(t: Translation) -> Any:
    p = _route(t).route.retry_policy
    methods = [
        (h.name, h.string_match.safe_regex.regex, h.invert_match)
        for h in p.retriable_request_headers
    ]
    return (
        p.retry_on,
        p.num_retries.value,
        list(p.retriable_status_codes),
        methods,
        [h.name for h in p.retry_host_predicate],
    )


def _per_route(t: Translation, name: str, message: Any) -> Any:
    config = _route(t).typed_per_filter_config
    if name not in config:
        return None
    out = message()
    config[name].Unpack(out)
    return out


def _rate(t: Translation) -> Any:
    from envoy.extensions.filters.http.local_ratelimit.v3 import local_rate_limit_pb2

    c = _per_route(t, "envoy.filters.http.local_ratelimit", local_rate_limit_pb2.LocalRateLimit)
    [d] = c.descriptors
    return (
        [(e.key, e.value) for e in d.entries],
        d.token_bucket.max_tokens,
        d.token_bucket.tokens_per_fill.value,
        d.token_bucket.fill_interval.seconds,
        c.status.code,
        c.filter_enforced.default_value.numerator,
        [a.WhichOneof("action_specifier") for r in c.rate_limits for a in r.actions],
    )


def _body(t: Translation) -> Any:
    meta = _route(t).metadata.filter_metadata
    if "ripple.body_limit" not in meta:
        return None
    return meta["ripple.body_limit"].fields["max_request_bytes"].number_value


def _cookie(t: Translation) -> Any:
    c = _route(t).route.hash_policy[0].cookie
    return (
        c.name,
        c.ttl.seconds,
        c.HasField("ttl"),
        c.path,
        [(a.name, a.value) for a in c.attributes],
    )


def _no_retry(t: Translation) -> Any:
    p = _route(t).route.retry_policy
    return (_route(t).route.HasField("retry_policy"), p.retry_on, p.num_retries.value)


IDEMPOTENT = [(":method", "POST|LOCK|PATCH", True)]
PREVIOUS = ["envoy.retry_host_predicates.previous_hosts"]
RESETS = "connect-failure,refused-stream,reset"

NEW_ROUTE_EFFECTS: list[tuple[dict[str, str], Check, Any]] = [
    ({"affinity": "cookie"}, _cookie, ("INGRESSCOOKIE", 0, True, "/", [])),
    ({"affinity": "cookie", "session-cookie-name": "route", "session-cookie-max-age": "3600",
      "session-cookie-path": "/app", "session-cookie-samesite": "lax",
      "session-cookie-secure": "true", "session-cookie-domain": ".example.com"},
     _cookie, ("route", 3600, True, "/app",
               [("Domain", ".example.com"), ("SameSite", "Lax"), ("Secure", "")])),
    ({"affinity": "cookie", "session-cookie-expires": "60"}, lambda t: _cookie(t)[1], 60),
    ({"proxy-next-upstream": "error http_502 http_503", "proxy-next-upstream-tries": "4"},
     _retry, (f"{RESETS},retriable-status-codes", 3, [502, 503], IDEMPOTENT, PREVIOUS)),
    ({"proxy-next-upstream": "http_504 non_idempotent"},
     _retry, ("retriable-status-codes", 2, [504], [], PREVIOUS)),
    ({"proxy-next-upstream-tries": "0"}, _retry, (RESETS, 10, [], IDEMPOTENT, PREVIOUS)),
    ({"proxy-next-upstream": "off"}, _no_retry, (True, "", 0)),
    ({"proxy-next-upstream-tries": "1"}, _no_retry, (True, "", 0)),
    ({"proxy-next-upstream": "non_idempotent"}, _no_retry, (True, "", 0)),
    ({}, lambda t: _route(t).route.HasField("retry_policy"), False),  # the host's applies
    ({"limit-rps": "5"}, _rate, ([("remote_address", "")], 25, 5, 1, 503, 100, ["remote_address"])),
    ({"limit-rps": "5", "limit-burst-multiplier": "2"}, lambda t: _rate(t)[1], 10),
    ({"proxy-body-size": "8m"}, _body, 8 * 1024 * 1024),
    ({"proxy-body-size": "100k"}, _body, 100 * 1024),
    ({"proxy-body-size": "12"}, _body, 12),
    ({"proxy-body-size": "0"}, _body, None),
    ({}, _body, None),
]  # fmt: skip


@pytest.mark.parametrize(("annotations", "check", "expected"), NEW_ROUTE_EFFECTS)
def test_affinity_retries_rate_and_body_limits_become_route_config(
    annotations: dict[str, str], check: Check, expected: Any
) -> None:
    t = k8s.run(k8s.ingress(annotations={PREFIX + k: v for k, v in annotations.items()}))

    assert decode.diags(t) == []
    assert check(t) == expected


def test_every_ingress_host_retries_as_ingress_nginx_does_by_default() -> None:
    t = k8s.run(k8s.ingress())

    p = decode.vhost(t, "shop.example.com").retry_policy
    assert (p.retry_on, p.num_retries.value) == (RESETS, 2)  # error timeout, 3 tries
    assert [(h.name, h.invert_match) for h in p.retriable_request_headers] == [(":method", True)]
    assert [h.name for h in p.retry_host_predicate] == PREVIOUS


def test_affinity_makes_a_ring_hash_variant_and_wins_over_upstream_hash_by() -> None:
    t = k8s.run(
        k8s.ingress(annotations=k8s.nginx(affinity="cookie", upstream_hash_by="$request_uri"))
    )

    assert decode.main_route(t).route.cluster == "t1/shop/web:80~ring_hash"
    assert decode.main_route(t).route.hash_policy[0].cookie.name == "INGRESSCOOKIE"
    [d] = decode.diags(t, Reason.SETTING_CONFLICT)
    assert "affinity" in d.message


def test_session_cookie_settings_without_affinity_are_reported() -> None:
    t = k8s.run(k8s.ingress(annotations=k8s.nginx(session_cookie_name="x")))

    assert not decode.main_route(t).route.hash_policy
    [d] = decode.diags(t, Reason.ANNOTATION_IGNORED)
    assert "session-cookie-name" in d.message


def test_cookie_path_defaults_to_the_ingress_path() -> None:
    t = k8s.run(
        k8s.ingress(
            rules=[k8s.rule("shop.example.com", k8s.path("/cart"))],
            annotations=k8s.nginx(affinity="cookie"),
        )
    )

    assert _cookie(t)[3] == "/cart"


SERVICES = [k8s.service(), k8s.service("fallback", ports=[{"name": "http", "port": 8000}])]
SLICES = [
    k8s.endpoint_slice(endpoints=[k8s.endpoint("10.0.0.1")]),
    k8s.endpoint_slice(
        "fallback-x",
        service_name="fallback",
        endpoints=[k8s.endpoint("10.0.0.9")],
        ports=[{"name": "http", "port": 9000, "protocol": "TCP"}],
    ),
]


def test_default_backend_catches_what_the_rules_do_not_match() -> None:
    t = k8s.run(
        k8s.ingress(
            rules=[k8s.rule("shop.example.com", k8s.path("/api"))],
            annotations=k8s.nginx(default_backend="fallback"),
        ),
        services=SERVICES,
        slices=SLICES,
    )

    routes = decode.routes(t)
    assert [(decode.match_of(r), r.route.cluster) for r in routes] == [
        (("path_separated_prefix", "/api"), "t1/shop/web:80"),
        (("prefix", "/"), "t1/shop/fallback:8000"),  # the Service's first port
    ]
    assert decode.diags(t) == []


def test_default_backend_serves_a_path_whose_service_has_no_endpoint() -> None:
    empty = [k8s.endpoint_slice(endpoints=[]), *SLICES[1:]]
    t = k8s.run(
        k8s.ingress(annotations=k8s.nginx(default_backend="fallback")),
        services=SERVICES,
        slices=empty,
    )

    assert decode.main_route(t).route.cluster == "t1/shop/fallback:8000"
    # A path whose Service is missing goes there too (with a warning on the Service).
    t = k8s.run(
        k8s.ingress(annotations=k8s.nginx(default_backend="fallback")),
        services=SERVICES[1:],
        slices=SLICES[1:],
    )
    assert decode.main_route(t).route.cluster == "t1/shop/fallback:8000"
    [d] = decode.diags(t, Reason.SERVICE_NOT_FOUND)
    assert "default-backend serves it" in d.message


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

    location = decode.main_route(t).response_headers_to_add[0].header
    assert (location.key, location.value) == ("Location", "http://a.example.com/")
    assert decode.diags(t, Reason.SETTING_CONFLICT, Severity.WARNING)


# Dropped with a Warning, the rest of the Ingress served (as ingress-nginx).
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
    ("permanent-redirect", "relative"),
    ("temporal-redirect", "https://$host/x"),
    ("temporal-redirect", "/relative"),
    ("app-root", "app"),
    ("upstream-vhost", "$host"),
    ("upstream-hash-by", "$request_uri$host"),
    ("custom-headers", "Bad/Name/x"),
    ("affinity", "ip"),
    ("proxy-next-upstream", "error sometimes"),
    ("proxy-next-upstream-tries", "-1"),
    ("default-backend", "other/svc"),
]
# An Error, the Ingress not served: dropping them could widen access or lift a limit.
FAIL_CLOSED_VALUES = [
    ("whitelist-source-range", "10.0.0.0/33"),
    ("denylist-source-range", "not-an-ip"),
    ("limit-rps", "fast"),
    ("proxy-body-size", "8x"),
    ("proxy-body-size", "5g"),
    ("force-ssl-redirect", "sure"),
    ("canary", "maybe"),
]


@pytest.mark.parametrize(("name", "value"), INVALID_VALUES)
def test_invalid_value_is_dropped_with_a_warning_and_the_ingress_served(
    name: str, value: str
) -> None:
    t = k8s.run(k8s.ingress(annotations={PREFIX + name: value}))

    assert t.hosts == ("shop.example.com",)
    [d] = decode.diags(t, Reason.INVALID_ANNOTATION)
    assert d.severity is Severity.WARNING
    assert PREFIX + name in d.message


@pytest.mark.parametrize(("name", "value"), FAIL_CLOSED_VALUES)
def test_invalid_protective_value_is_an_error_and_the_ingress_is_not_served(
    name: str, value: str
) -> None:
    t = k8s.run(k8s.ingress(annotations={PREFIX + name: value}))

    assert t.hosts == ()
    [d] = decode.diags(t, Reason.INVALID_ANNOTATION)
    assert d.severity is Severity.ERROR
    assert PREFIX + name in d.message


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
