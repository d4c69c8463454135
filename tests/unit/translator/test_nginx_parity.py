"""The translation side of issue #16's ingress-nginx parity (points 1, 2, 3): lenient
annotation values, CORS as ingress-nginx's template, redirects with the exact Location. The
traffic through a real Envoy is in tests/integration/xds_service/test_nginx_parity_*.py."""

from __future__ import annotations

from typing import Any

from ripple_translator.translate import Reason, Severity, Translation
from ripple_translator.translate.catalog import PREFIX
from tests.unit.translator import decode, k8s

HOST = "shop.example.com"


def headers_of(route: Any) -> dict[str, str]:
    return {h.header.key: h.header.value for h in route.response_headers_to_add}


def warnings(t: Translation) -> list[str]:
    return [d.message for d in decode.diags(t, Reason.INVALID_ANNOTATION, Severity.WARNING)]


# --- point 1: drop the bad part, serve the rest ------------------------------------------------


def test_a_bad_cors_origin_is_dropped_and_the_rest_served() -> None:
    """ingress-nginx's cors parser skips an origin it cannot parse (test/e2e/annotations/
    cors.go, "should allow correct origins - single origin for multiple cors values")."""
    t = k8s.run(
        k8s.ingress(
            annotations=k8s.nginx(
                enable_cors="true",
                cors_allow_origin="origin.cors.com:8080, https://origin2.cors.com, "
                "https://origin.com",
            )
        )
    )

    assert t.hosts == (HOST,)
    [message] = warnings(t)
    assert "'origin.cors.com:8080'" in message
    assert "left out" in message
    [preflight] = [r for r in decode.routes(t) if r.direct_response.status == 204]
    origin = next(h for h in preflight.match.headers if h.name == "origin")
    assert origin.string_match.safe_regex.regex == (
        "(?i)(?:https://origin2\\.cors\\.com)|(?:https://origin\\.com)"
    )


def test_origins_of_any_scheme_with_ports_and_wildcards_are_accepted() -> None:
    t = k8s.run(
        k8s.ingress(
            annotations=k8s.nginx(
                enable_cors="true",
                cors_allow_origin="tauri://localhost:3000, test://localhost, "
                "http://*.origin.com:8080, null",
            )
        )
    )

    assert t.diagnostics == ()


def test_an_empty_value_counts_as_unset_with_a_warning() -> None:
    t = k8s.run(k8s.ingress(annotations=k8s.nginx(x_forwarded_prefix="", rewrite_target=" ")))

    assert t.hosts == (HOST,)
    assert sorted(warnings(t)) == [
        f"{PREFIX}rewrite-target: the value is empty; it counts as unset, the rest of the "
        "Ingress is served",
        f"{PREFIX}x-forwarded-prefix: the value is empty; it counts as unset, the rest of the "
        "Ingress is served",
    ]
    assert not decode.main_route(t).request_headers_to_add


def test_an_empty_source_range_still_fails_closed() -> None:
    t = k8s.run(k8s.ingress(annotations=k8s.nginx(whitelist_source_range="")))

    assert t.hosts == ()
    [d] = decode.diags(t, Reason.INVALID_ANNOTATION)
    assert d.severity is Severity.ERROR


def test_a_bad_affinity_setting_keeps_the_others() -> None:
    t = k8s.run(
        k8s.ingress(
            annotations=k8s.nginx(
                affinity="cookie",
                session_cookie_name="bad name",
                session_cookie_samesite="sometimes",
                session_cookie_max_age="60",
            )
        )
    )

    assert t.hosts == (HOST,)
    assert len(warnings(t)) == 2
    [policy] = decode.main_route(t).route.hash_policy
    assert (policy.cookie.name, policy.cookie.ttl.seconds) == ("INGRESSCOOKIE", 60)
    assert not policy.cookie.attributes


# --- point 2: CORS --------------------------------------------------------------------------


def test_cors_with_origin_star_sets_the_headers_on_every_answer_and_answers_options() -> None:
    t = k8s.run(k8s.ingress(annotations=k8s.nginx(enable_cors="true")))

    preflight, main = decode.routes(t)
    assert [(h.name, h.string_match.exact) for h in preflight.match.headers] == [
        (":method", "OPTIONS")
    ]
    assert preflight.direct_response.status == 204
    expected = {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Allow-Methods": "GET, PUT, POST, DELETE, PATCH, OPTIONS",
        "Access-Control-Allow-Headers": "DNT,Keep-Alive,User-Agent,X-Requested-With,"
        "If-Modified-Since,Cache-Control,Content-Type,Range,Authorization",
        "Access-Control-Max-Age": "1728000",
    }
    assert headers_of(main) == expected
    assert headers_of(preflight) == {**expected, "Content-Type": "text/plain charset=UTF-8"}
    assert not main.match.headers
    assert "envoy.filters.http.cors" not in main.typed_per_filter_config


def test_cors_with_origins_echoes_a_matching_origin_only() -> None:
    t = k8s.run(
        k8s.ingress(
            annotations=k8s.nginx(
                enable_cors="true",
                cors_allow_origin="https://a.example.com:8443, https://*.b.example.com",
                cors_allow_methods="POST, GET",
                cors_expose_headers="X-One, X-Two",
                cors_allow_credentials="false",
            )
        )
    )

    preflight, with_origin, plain = decode.routes(t)
    regex = "(?i)(?:https://a\\.example\\.com:8443)|(?:https://[A-Za-z0-9\\-]+\\.b\\.example\\.com)"
    assert [(h.name, h.string_match.safe_regex.regex) for h in with_origin.match.headers] == [
        ("origin", regex)
    ]
    assert headers_of(with_origin) == {
        "Access-Control-Allow-Origin": "%REQ(origin)%",
        "Access-Control-Allow-Methods": "POST, GET",
        "Access-Control-Allow-Headers": "DNT,Keep-Alive,User-Agent,X-Requested-With,"
        "If-Modified-Since,Cache-Control,Content-Type,Range,Authorization",
        "Access-Control-Expose-Headers": "X-One, X-Two",
        "Access-Control-Max-Age": "1728000",
    }
    assert [h.name for h in preflight.match.headers] == [":method", "origin"]
    assert not plain.match.headers
    assert not headers_of(plain)


def test_cors_with_no_valid_origin_adds_nothing() -> None:
    t = k8s.run(k8s.ingress(annotations=k8s.nginx(enable_cors="true", cors_allow_origin="x:1")))

    assert t.hosts == (HOST,)
    [main] = decode.routes(t)
    assert not headers_of(main)


def test_an_invalid_cors_methods_value_falls_back_to_the_default() -> None:
    t = k8s.run(k8s.ingress(annotations=k8s.nginx(enable_cors="true", cors_allow_methods="GET;rm")))

    assert len(warnings(t)) == 1
    methods = headers_of(decode.main_route(t))["Access-Control-Allow-Methods"]
    assert methods == "GET, PUT, POST, DELETE, PATCH, OPTIONS"


# --- point 3: redirects -----------------------------------------------------------------------


def location(t: Translation) -> tuple[int, str]:
    route = decode.main_route(t)
    return route.direct_response.status, headers_of(route)["Location"]


def test_redirect_location_is_the_url_as_configured() -> None:
    t = k8s.run(k8s.ingress(annotations=k8s.nginx(permanent_redirect="https://new.example.com")))

    assert location(t) == (301, "https://new.example.com")


def test_request_uri_appends_the_request_path_and_query() -> None:
    t = k8s.run(
        k8s.ingress(annotations=k8s.nginx(temporal_redirect="https://x.example.com$request_uri"))
    )

    assert location(t) == (302, "https://x.example.com%REQ(:path)%")


def test_a_percent_in_the_url_is_literal() -> None:
    t = k8s.run(k8s.ingress(annotations=k8s.nginx(permanent_redirect="https://x.com/a%20b")))

    assert location(t) == (301, "https://x.com/a%%20b")


def test_permanent_redirect_to_a_path_is_absolute_unless_relative_redirects() -> None:
    absolute = k8s.run(k8s.ingress(annotations=k8s.nginx(permanent_redirect="/new")))
    relative = k8s.run(
        k8s.ingress(annotations=k8s.nginx(permanent_redirect="/new", relative_redirects="true"))
    )

    assert location(absolute) == (301, "%REQ(:scheme)%://%REQ(:authority)%/new")
    assert location(relative) == (301, "/new")


def test_out_of_range_codes_fall_back_to_the_default_with_a_warning() -> None:
    t = k8s.run(
        k8s.ingress(
            annotations=k8s.nginx(
                permanent_redirect="https://x.example.com", permanent_redirect_code="309"
            )
        )
    )

    assert location(t) == (301, "https://x.example.com")
    assert len(warnings(t)) == 1


def test_other_3xx_codes_are_sent() -> None:
    t = k8s.run(
        k8s.ingress(
            annotations=k8s.nginx(
                permanent_redirect="https://x.example.com", permanent_redirect_code="305"
            )
        )
    )

    assert location(t) == (305, "https://x.example.com")


def test_the_https_redirect_strips_one_trailing_slash_unless_preserved() -> None:
    tls = [{"hosts": [HOST], "secretName": "missing"}]
    stripped = k8s.run(k8s.ingress(tls=tls))
    kept = k8s.run(k8s.ingress(tls=tls, annotations=k8s.nginx(preserve_trailing_slash="true")))

    root, redirect, _ = decode.routes(stripped)
    assert headers_of(root) == {"Location": "https://%REQ(:authority)%"}
    assert [h.name for h in root.match.headers] == ["x-forwarded-proto", ":path", ":authority"]
    assert redirect.redirect.regex_rewrite.pattern.regex == "^(.*)/$"
    assert redirect.redirect.regex_rewrite.substitution == "\\1"
    redirect, _ = decode.routes(kept)
    assert redirect.redirect.https_redirect
    assert not redirect.redirect.HasField("regex_rewrite")


# --- point 6: the default backend ------------------------------------------------------------


def test_the_default_backend_fallback_gets_the_error_page_headers() -> None:
    """nginx.tmpl's CUSTOM_ERRORS location, as test/e2e/annotations/default_backend.go sees it
    (a path whose Service does not exist, default-backend set)."""
    t = k8s.run(
        k8s.ingress(
            rules=[k8s.rule(HOST, k8s.path("/app", service="invalid"))],
            annotations=k8s.nginx(default_backend="web"),
        )
    )

    route, catch_all = decode.routes(t)
    assert decode.match_of(route) == ("path_separated_prefix", "/app")
    assert not catch_all.request_headers_to_add  # what no rule matches: plain
    assert route.route.cluster == "t1/shop/web:80"
    assert route.route.regex_rewrite.pattern.regex == "^.*$"
    assert route.route.regex_rewrite.substitution == "/"
    assert {h.header.key: h.header.value for h in route.request_headers_to_add} == {
        "X-Code": "503",
        "X-Namespace": "shop",
        "X-Ingress-Name": "web",
        "X-Service-Name": "invalid",
        "X-Service-Port": "80",
        "X-Format": "%REQ(accept)%",
        "X-Original-URI": "%REQ(:path)%",
    }


def test_a_path_with_endpoints_is_not_an_error_page() -> None:
    t = k8s.run(k8s.ingress(annotations=k8s.nginx(default_backend="web")))

    route = decode.main_route(t)
    assert not route.request_headers_to_add
    assert not route.route.HasField("regex_rewrite")


# --- point 7: affinity ------------------------------------------------------------------------


def test_persistent_affinity_is_a_stateful_session_cookie_without_hashing() -> None:
    from envoy.extensions.filters.http.stateful_session.v3 import stateful_session_pb2
    from envoy.extensions.http.stateful_session.cookie.v3 import cookie_pb2

    t = k8s.run(
        k8s.ingress(
            annotations=k8s.nginx(
                affinity="cookie",
                affinity_mode="persistent",
                session_cookie_name="hello-cookie",
                session_cookie_max_age="172800",
                session_cookie_samesite="Lax",
            )
        )
    )

    assert t.diagnostics == ()
    route = decode.main_route(t)
    assert not route.route.hash_policy
    assert decode.cluster(t).lb_policy == 0  # ROUND_ROBIN: no ring hash
    per_route = stateful_session_pb2.StatefulSessionPerRoute.FromString(
        route.typed_per_filter_config["envoy.filters.http.stateful_session"].value
    )
    state = cookie_pb2.CookieBasedSessionState.FromString(
        per_route.stateful_session.session_state.typed_config.value
    )
    cookie = state.cookie
    assert (cookie.name, cookie.path, cookie.ttl.seconds) == ("hello-cookie", "/", 172800)
    assert [(a.name, a.value) for a in cookie.attributes] == [("SameSite", "Lax")]


def test_balanced_affinity_keeps_the_ring_hash() -> None:
    t = k8s.run(k8s.ingress(annotations=k8s.nginx(affinity="cookie", affinity_mode="balanced")))

    route = decode.main_route(t)
    assert route.route.hash_policy[0].cookie.name == "INGRESSCOOKIE"
    assert "envoy.filters.http.stateful_session" not in route.typed_per_filter_config


def sticky_pair(behavior: str | None) -> Translation:
    canary = {"canary": "true", "canary_by_header": "ForceCanary", "canary_weight": "10"}
    if behavior is not None:
        canary["affinity_canary_behavior"] = behavior
    return k8s.run(
        k8s.ingress("main", annotations=k8s.nginx(affinity="cookie", session_cookie_name="s")),
        k8s.ingress("canary", annotations=k8s.nginx(**canary), created="2024-01-02T00:00:00Z"),
    )


def test_sticky_canary_marks_its_answers_and_keeps_the_marked_clients() -> None:
    t = sticky_pair(None)  # sticky is the default

    assert t.diagnostics == ()
    sticky, header, never, weighted = decode.routes(t)
    assert [(h.name, h.string_match.safe_regex.regex) for h in sticky.match.headers] == [
        ("cookie", "(?:.*;\\s*)?s\\-canary=1(?:;.*)?")
    ]
    mark = ("Set-Cookie", "s-canary=1; Path=/")
    for route in (sticky, header):
        assert [(h.header.key, h.header.value) for h in route.response_headers_to_add] == [mark]
    assert not never.response_headers_to_add
    primary, canary = weighted.route.weighted_clusters.clusters
    assert not primary.response_headers_to_add
    assert [(h.header.key, h.header.value) for h in canary.response_headers_to_add] == [mark]
    # The primary's affinity holds in the canary: its cluster hashes the cookie too.
    assert decode.cluster(t, canary.name).lb_policy == decode.cluster(t, primary.name).lb_policy


def test_legacy_canary_behavior_has_no_marker() -> None:
    t = sticky_pair("legacy")

    assert t.diagnostics == ()
    assert len(decode.routes(t)) == 3
    assert not any(r.response_headers_to_add for r in decode.routes(t))


def error_codes(route: Any) -> list[str]:
    from envoy.extensions.filters.http.custom_response.v3 import custom_response_pb2

    config = custom_response_pb2.CustomResponse.FromString(
        route.typed_per_filter_config["envoy.filters.http.custom_response"].value
    )
    return [
        m.predicate.single_predicate.value_match.exact
        for m in config.custom_response_matcher.matcher_list.matchers
    ]


def test_custom_http_errors_reroute_those_codes_to_the_default_backend() -> None:
    t = k8s.run(
        k8s.ingress(
            rules=[k8s.rule(HOST, k8s.path("/app"))],
            annotations=k8s.nginx(custom_http_errors="503, 404,bad, 404", default_backend="web"),
        )
    )

    assert len(warnings(t)) == 1  # "bad" left out
    page, main, *_catch_all = decode.routes(t)  # the catch-all has its own page
    assert [(h.name, h.string_match.exact) for h in page.match.headers] == [
        ("x-ripple-error-page", "shop/web")
    ]
    assert list(page.request_headers_to_remove) == ["x-ripple-error-page"]
    assert page.route.regex_rewrite.substitution == "/"
    assert error_codes(main) == ["404", "503"]
    assert not page.typed_per_filter_config


def test_custom_http_errors_without_a_default_backend_are_ignored_with_a_warning() -> None:
    t = k8s.run(k8s.ingress(annotations=k8s.nginx(custom_http_errors="404")))

    [d] = decode.diags(t, Reason.ANNOTATION_IGNORED)
    assert "custom-http-errors" in d.message
    [route] = decode.routes(t)
    assert "envoy.filters.http.custom_response" not in route.typed_per_filter_config


def test_disable_proxy_intercept_errors_turns_custom_http_errors_off() -> None:
    t = k8s.run(
        k8s.ingress(
            annotations=k8s.nginx(
                custom_http_errors="404",
                default_backend="web",
                disable_proxy_intercept_errors="true",
            )
        )
    )

    assert all(
        "envoy.filters.http.custom_response" not in r.typed_per_filter_config
        for r in decode.routes(t)
    )


def test_cors_and_custom_http_errors_together() -> None:
    t = k8s.run(
        k8s.ingress(
            rules=[k8s.rule(HOST, k8s.path("/app"))],
            annotations=k8s.nginx(
                enable_cors="true", custom_http_errors="404", default_backend="web"
            ),
        )
    )

    preflight, page, main, *_ = decode.routes(t)
    assert preflight.direct_response.status == 204
    assert "envoy.filters.http.custom_response" not in preflight.typed_per_filter_config
    assert page.match.headers[0].name == "x-ripple-error-page"
    assert error_codes(main) == ["404"]
    assert headers_of(main)["Access-Control-Allow-Origin"] == "*"
