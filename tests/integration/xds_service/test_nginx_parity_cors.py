"""enable-cors answered as ingress-nginx answers it, through a real Envoy (issue #16, point 2;
with point 1's lenient cors-allow-origin list).

Expected answers from ingress-nginx's test/e2e/annotations/cors.go (the requests and the
values it asserts) and its template's CORS block (rootfs/etc/nginx/template/nginx.tmpl:
with origin ``*`` every answer carries the headers and OPTIONS is answered 204)."""

from __future__ import annotations

import subprocess

from ripple_translator.store import RedisTenantStore
from tests.integration.xds_service.nginx_parity import (
    Gateway,
    echo_backend,
    errors,
    ingress,
    serve,
    translate,
)
from tests.integration.xds_service.support import Ports, XdsProcess

ACAO = "access-control-allow-origin"
DEFAULT_HEADERS = {
    "access-control-allow-methods": "GET, PUT, POST, DELETE, PATCH, OPTIONS",
    "access-control-allow-headers": (
        "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,"
        "Content-Type,Range,Authorization"
    ),
    "access-control-max-age": "1728000",
    "access-control-allow-credentials": "true",
}
HOSTS = {
    name: f"{name}.cors.test"
    for name in (
        "default", "extra", "list", "bad-item", "wildcard", "blank", "trailing", "schemes",
        "values",
    )
}  # fmt: skip


async def test_cors_answers_as_ingress_nginx(
    *, xds: XdsProcess, envoy: subprocess.Popen[bytes], store: RedisTenantStore, ports: Ports
) -> None:
    """cors.go: "should enable cors", "should not break functionality (- without `*`, with
    extra domain)", "should allow/not allow - single origin for multiple cors values", "should
    allow correct origins - single origin for multiple cors values" (a bad item dropped, the
    rest served), "... wildcard origin (2 subdomains)", "should allow - missing origins",
    "... trailing comma", "should allow - origins with non-http[s] protocols", and the values
    of "should set cors methods/max-age/allow headers/expose headers/disable credentials"."""
    h = HOSTS
    with echo_backend() as web:
        t = translate(
            ingress("default", h["default"], enable_cors="true"),
            ingress("extra", h["extra"], enable_cors="true", cors_allow_origin="*, foo.bar.com"),
            ingress(
                "list", h["list"], enable_cors="true",
                cors_allow_origin="https://origin.cors.com:8080, https://origin2.cors.com",
            ),
            ingress(
                "bad-item", h["bad-item"], enable_cors="true",
                cors_allow_origin="origin.cors.com:8080, https://origin2.cors.com, "
                "https://origin.com",
            ),
            ingress(
                "wildcard", h["wildcard"], enable_cors="true",
                cors_allow_origin="http://*.origin.cors.com, http://*.origin.com:8080",
            ),
            ingress("blank", h["blank"], enable_cors="true", cors_allow_origin="      "),
            ingress(
                "trailing", h["trailing"], enable_cors="true",
                cors_allow_origin="https://origin-123.cors.com:8080,   ,"
                "https://origin-321.cors.com:8080,",
            ),
            ingress(
                "schemes", h["schemes"], enable_cors="true",
                cors_allow_origin="test://localhost, tauri://localhost:3000",
            ),
            ingress(
                "values", h["values"], enable_cors="true", cors_allow_methods="POST, GET",
                cors_max_age="200", cors_allow_credentials="false",
                cors_allow_headers="DNT, User-Agent",
                cors_expose_headers="X-CustomResponseHeader, X-CustomSecondHeader",
            ),
            backends={"web": web},
        )  # fmt: skip
        assert errors(t) == []
        gateway = Gateway(ports)
        await serve(store, xds, gateway, t, ready=[(host, "/", 200) for host in h.values()])

        # Origin *: the headers on every answer, even without an Origin header.
        for host in (h["default"], h["extra"]):
            answer = await gateway(host)
            assert answer.status == 200
            assert answer.headers[ACAO] == "*"
            assert {k: answer.headers.get(k) for k in DEFAULT_HEADERS} == DEFAULT_HEADERS
            assert "access-control-expose-headers" not in answer.headers
        # ... and with one: still "*" (ingress-nginx sets $http_origin to *).
        answer = await gateway(h["default"], headers={"Origin": "http://origin.com"})
        assert answer.headers[ACAO] == "*"

        async def allowed(host: str, origin: str) -> str | None:
            answer = await gateway(host, headers={"Origin": origin})
            assert answer.status == 200, (host, origin, answer)
            return answer.headers.get(ACAO)

        origin = "https://origin.cors.com:8080"
        assert await allowed(h["list"], origin) == origin
        assert await allowed(h["list"], "http://no.origin.com") is None
        assert await allowed(h["list"], "https://origin.cors.com") is None  # port required

        # One bad item (no scheme) is dropped, the Ingress served with the others.
        assert await allowed(h["bad-item"], "origin.cors.com:8080") is None
        for origin in ("https://origin2.cors.com", "https://origin.com"):
            assert await allowed(h["bad-item"], origin) == origin

        for origin in ("http://foo.origin.cors.com", "http://bar-foo.origin.cors.com"):
            assert await allowed(h["wildcard"], origin) == origin
        assert await allowed(h["wildcard"], "http://abc.origin.com:8080") == (
            "http://abc.origin.com:8080"
        )
        assert await allowed(h["wildcard"], "http://bar.foo.origin.cors.com") is None
        assert await allowed(h["wildcard"], "http://abc.origin.com") is None

        # Whitespace-only allow-origin is unset: "*".
        for origin in ("http://origin.com", "http://book.origin.com", "test.origin.com"):
            assert await allowed(h["blank"], origin) == "*"

        assert await allowed(h["trailing"], "https://origin-123.cors.com:8080") == (
            "https://origin-123.cors.com:8080"
        )
        assert await allowed(h["trailing"], "https://origin-321.cors.com:8080") == (
            "https://origin-321.cors.com:8080"
        )
        assert await allowed(h["trailing"], "https://unknown.cors.com:8080") is None

        assert await allowed(h["schemes"], "test://localhost") == "test://localhost"
        assert await allowed(h["schemes"], "tauri://localhost:3000") == "tauri://localhost:3000"

        answer = await gateway(h["values"])
        assert answer.headers["access-control-allow-methods"] == "POST, GET"
        assert answer.headers["access-control-max-age"] == "200"
        assert answer.headers["access-control-allow-headers"] == "DNT, User-Agent"
        assert answer.headers["access-control-expose-headers"] == (
            "X-CustomResponseHeader, X-CustomSecondHeader"
        )
        assert "access-control-allow-credentials" not in answer.headers


async def test_cors_preflight_is_answered_by_the_gateway(
    *, xds: XdsProcess, envoy: subprocess.Popen[bytes], store: RedisTenantStore, ports: Ports
) -> None:
    """The template's preflight (nginx.tmpl, define "CORS": ``$cors = "trueoptions"`` ->
    ``return 204`` with the CORS headers): with origin ``*`` any
    OPTIONS; with a list, an OPTIONS whose Origin matches; any other OPTIONS reaches the
    backend."""
    star, listed = "preflight.cors.test", "preflight-list.cors.test"
    with echo_backend() as web:
        t = translate(
            ingress("star", star, enable_cors="true"),
            ingress(
                "listed", listed, enable_cors="true", cors_allow_origin="https://app.example.com"
            ),
            backends={"web": web},
        )
        assert errors(t) == []
        gateway = Gateway(ports)
        await serve(store, xds, gateway, t, ready=[(star, "/", 200), (listed, "/", 200)])

        answer = await gateway(star, "/anything", method="OPTIONS")
        assert answer.status == 204
        assert "x-backend" not in answer.headers
        assert answer.headers[ACAO] == "*"
        assert {k: answer.headers.get(k) for k in DEFAULT_HEADERS} == DEFAULT_HEADERS
        # (nginx also sends Content-Type: text/plain; Envoy drops it on a body-less 204.)

        origin = "https://app.example.com"
        answer = await gateway(
            listed,
            method="OPTIONS",
            headers={"Origin": origin, "Access-Control-Request-Method": "PUT"},
        )
        assert answer.status == 204
        assert answer.headers[ACAO] == origin
        assert "x-backend" not in answer.headers

        answer = await gateway(listed, method="OPTIONS", headers={"Origin": "https://evil.com"})
        assert answer.status == 200
        assert answer.headers["x-backend"] == "echo"
        assert ACAO not in answer.headers


async def test_an_empty_annotation_value_counts_as_unset(
    *, xds: XdsProcess, envoy: subprocess.Popen[bytes], store: RedisTenantStore, ports: Ports
) -> None:
    """Point 1 (an empty value is not an error): test/e2e/annotations/xforwardedprefix.go
    ("should not add X-Forwarded-Prefix if the annotation value is empty": x-forwarded-prefix
    "" with rewrite-target /foo, GET / is 200 and the backend sees no X-Forwarded-Prefix;
    "should set the X-Forwarded-Prefix to the annotation value")."""
    empty, set_ = "noxfp.baz.com", "xfp.baz.com"
    with echo_backend() as web:
        t = translate(
            ingress("noxfp", empty, x_forwarded_prefix="", rewrite_target="/foo"),
            ingress("xfp", set_, x_forwarded_prefix="/test/value", rewrite_target="/foo"),
            backends={"web": web},
        )
        assert errors(t) == []
        gateway = Gateway(ports)
        await serve(store, xds, gateway, t, ready=[(empty, "/", 200), (set_, "/", 200)])

        echo = (await gateway(empty)).json()
        assert echo["path"] == "/foo"
        assert "x-forwarded-prefix" not in echo["headers"]
        echo = (await gateway(set_)).json()
        assert echo["headers"]["x-forwarded-prefix"] == "/test/value"
