"""The default backend and error pages as ingress-nginx serves them, through a real Envoy
(issue #16, point 6)."""

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


async def test_default_backend_gets_the_error_page_headers(
    *, xds: XdsProcess, envoy: subprocess.Popen[bytes], store: RedisTenantStore, ports: Ports
) -> None:
    """test/e2e/annotations/default_backend.go ("should use a custom default backend as
    upstream"): an Ingress whose Service does not exist, with default-backend; GET /alma/armud
    with x-request-id something-unique is answered 200 by the default backend, which got
    x-code=503, x-ingress-name, x-service-name=invalid and the x-request-id; the other
    headers of nginx.tmpl's CUSTOM_ERRORS location (X-Format, X-Original-URI, X-Namespace,
    X-Service-Port, the request rewritten to /) as well."""
    host = "default-backend"
    with echo_backend("fallback") as fallback:
        t = translate(
            ingress(host, host, service="invalid", default_backend="fallback"),
            backends={"fallback": fallback},
        )
        assert errors(t) == []
        gateway = Gateway(ports)
        await serve(store, xds, gateway, t, ready=[(host, "/", 200)])

        answer = await gateway(
            host,
            "/alma/armud?x=1",
            headers={"x-request-id": "something-unique", "Accept": "text/html"},
        )
        assert answer.status == 200
        assert answer.headers["x-backend"] == "fallback"
        echo = answer.json()
        got = echo["headers"]
        assert got["x-code"] == "503"
        assert got["x-ingress-name"] == host
        assert got["x-service-name"] == "invalid"
        assert got["x-request-id"] == "something-unique"
        assert got["x-namespace"] == "tenant-a"
        assert got["x-service-port"] == "80"
        assert got["x-format"] == "text/html"
        assert got["x-original-uri"] == "/alma/armud?x=1"
        assert echo["path"] == "/?x=1"  # nginx: rewrite (.*) / break (the args kept)


async def test_backends_get_the_clients_request_id(
    *, xds: XdsProcess, envoy: subprocess.Popen[bytes], store: RedisTenantStore, ports: Ports
) -> None:
    """ingress-nginx passes the client's X-Request-ID on (``proxy_set_header X-Request-ID
    $req_id``, $req_id being the client's when it sent one), and makes one otherwise."""
    host = "request-id.errors.test"
    with echo_backend() as web:
        t = translate(ingress("web", host), backends={"web": web})
        gateway = Gateway(ports)
        await serve(store, xds, gateway, t, ready=[(host, "/", 200)])

        echo = (await gateway(host, headers={"X-Request-ID": "mine-123"})).json()
        assert echo["headers"]["x-request-id"] == "mine-123"
        echo = (await gateway(host)).json()
        assert len(echo["headers"]["x-request-id"]) >= 16


async def test_custom_http_errors_are_answered_by_the_default_backend(
    *, xds: XdsProcess, envoy: subprocess.Popen[bytes], store: RedisTenantStore, ports: Ports
) -> None:
    """test/e2e/annotations/customhttperrors.go (custom-http-errors 404,503 with the
    default-backend annotation: ``error_page 404 = @custom_custom-default-backend-..._404``,
    ``proxy_intercept_errors on``): the backend's 404 and 503 answers are replaced by the
    default backend's answer to the request at ``/`` with X-Code and the other CUSTOM_ERRORS
    headers; other codes pass. (The status stays the backend's: see "Where ripple differs".)"""
    host = "customerrors.foo.com"
    with echo_backend() as web, echo_backend("fallback") as fallback:
        t = translate(
            ingress(host, host, custom_http_errors="404, 503", default_backend="fallback"),
            backends={"web": web, "fallback": fallback},
        )
        assert errors(t) == []
        gateway = Gateway(ports)
        await serve(store, xds, gateway, t, ready=[(host, "/", 200)])

        for code in (404, 503):
            answer = await gateway(
                host, f"/status/{code}?q=1", headers={"X-Request-ID": f"req-{code}"}
            )
            assert answer.status == code, answer
            assert answer.headers["x-backend"] == "fallback"
            echo = answer.json()
            got = echo["headers"]
            assert echo["path"] == "/?q=1"  # nginx: rewrite (.*) / break (the args kept)
            assert got["x-code"] == str(code)
            assert got["x-original-uri"] == f"/status/{code}?q=1"
            assert got["x-ingress-name"] == host
            assert got["x-service-name"] == "web"
            assert got["x-request-id"] == f"req-{code}"
            assert "x-ripple-error-page" not in got
        answer = await gateway(host, "/status/500")
        assert (answer.status, answer.headers["x-backend"]) == (500, "echo")
        answer = await gateway(host, "/ok")
        assert (answer.status, answer.headers["x-backend"]) == (200, "echo")
