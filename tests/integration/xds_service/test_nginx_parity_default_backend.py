"""The gateway's default backend (ingress-nginx's ``--default-backend-service``) and the
error-page marker a client must not be able to send, through a real Envoy (issue #16 point 6).

ingress-nginx's answers:

- test/e2e/defaultbackend/custom_default_backend.go ("uses custom default backend that returns
  200 as status code"): with ``--default-backend-service=<ns>/<echo>``, ``GET /`` without an
  Ingress for the host is answered 200 by that Service (nginx's default server ``_``);
- test/e2e/defaultbackend/default_backend.go: without one, every unknown host, over HTTP and
  HTTPS, any method and path, is 404;
- test/e2e/defaultbackend/ssl.go: HTTPS to an unknown host is the catch-all server with the
  fake certificate;
- test/e2e/annotations/customhttperrors.go ("configures Nginx correctly"): custom-http-errors
  without a default-backend annotation sends those codes to the gateway's default backend
  (``error_page 404 = @custom_upstream-default-backend_404``).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

from ripple_translator.store import RedisTenantStore
from ripple_translator.translate import TranslateOptions, Translation
from ripple_translator.translate.default_backend import parse_default_backend
from tests.conftest import StackEnv
from tests.integration.loopback import free_port
from tests.integration.xds_service import parity_support
from tests.integration.xds_service.nginx_parity import (
    Gateway,
    echo_backend,
    errors,
    ingress,
    serve,
    services,
)
from tests.integration.xds_service.support import A, Ports, XdsProcess, until, write_tenant
from tests.unit.translator import k8s

GATEWAY_DEFAULT = f"{A}/fallback"  # RIPPLE_TRANSLATOR_DEFAULT_BACKEND_SERVICE


def translate(
    *ingresses: Any, backends: dict[str, int], default_backend: str | None = GATEWAY_DEFAULT
) -> Translation:
    """Tenant A's translation, with the gateway default backend set as the translator would."""
    svcs, slices = services(backends)
    options = TranslateOptions(
        default_backend=parse_default_backend(default_backend) if default_backend else None
    )
    return k8s.run(*ingresses, services=svcs, slices=slices, tenant=A, options=options)


async def test_unknown_hosts_go_to_the_gateway_default_backend(
    *, xds: XdsProcess, envoy: subprocess.Popen[bytes], store: RedisTenantStore, ports: Ports
) -> None:
    """custom_default_backend.go: an unknown host's ``GET /`` is the default backend's 200 (the
    request as sent: path, query, method); default_backend.go's other requests (POST, /demo,
    no Host) as well. Hosts served by an Ingress keep their routes, a wildcard host its
    wildcard, and an exact host whose path matches nothing stays its owner's 404. Once the
    setting is gone (the catch-all removed), unknown hosts are 404 again (default_backend.go).
    Before: 404 always."""
    with echo_backend() as web, echo_backend("fallback") as fallback:
        backends = {"web": web, "fallback": fallback}
        t = translate(
            ingress("web", "known.default.test", path="/app"),
            ingress("wild", "*.wild.default.test"),
            backends=backends,
        )
        assert errors(t) == []
        gateway = Gateway(ports)
        await serve(store, xds, gateway, t, ready=[("unknown.example", "/", 200)])

        for method, host, path in (
            ("GET", "unknown.example", "/"),
            ("GET", "foo.bar.com", "/demo?x=1"),
            ("POST", "foo.bar.com", "/"),
            ("GET", "127.0.0.1", "/demo"),
            ("GET", "localhost", "/"),
            ("GET", "a.b.wild.default.test", "/"),  # two labels: not the wildcard's
        ):
            answer = await gateway(host, path, method=method)
            assert (answer.status, answer.headers["x-backend"]) == (200, "fallback"), host
            echo = answer.json()
            assert (echo["method"], echo["path"]) == (method, path)
            assert echo["headers"]["host"] == host
            assert "x-ripple-scope" not in echo["headers"]
        answer = await gateway("known.default.test", "/app")
        assert (answer.status, answer.headers["x-backend"]) == (200, "echo")
        assert (await gateway("known.default.test", "/other")).status == 404  # its owner's
        answer = await gateway("x.wild.default.test", "/")
        assert (answer.status, answer.headers["x-backend"]) == (200, "echo")

        # Without the setting: no catch-all, 404.
        t = translate(
            ingress("web", "known.default.test", path="/app"),
            backends=backends,
            default_backend=None,
        )
        await serve(store, xds, gateway, t, ready=[("unknown.example", "/", 404)])
        assert (await gateway("foo.bar.com", "/demo", method="POST")).status == 404


async def test_custom_http_errors_without_default_backend_use_the_gateways(
    *, xds: XdsProcess, envoy: subprocess.Popen[bytes], store: RedisTenantStore, ports: Ports
) -> None:
    """customhttperrors.go: custom-http-errors without the default-backend annotation sends the
    backend's 404 and 503 to the gateway's default backend at ``/`` with X-Code,
    X-Original-URI and the other CUSTOM_ERRORS headers (X-Namespace, X-Ingress-Name,
    X-Service-Name, X-Service-Port, X-Format); other codes pass. Before: the annotation was
    ignored with a Warning (the backend's own 404 came back)."""
    host = "customerrors.gateway.test"
    with echo_backend() as web, echo_backend("fallback") as fallback:
        t = translate(
            ingress(host, host, custom_http_errors="404,503"),
            backends={"web": web, "fallback": fallback},
        )
        assert errors(t) == []
        assert not [d for d in t.diagnostics if "custom-http-errors" in d.message]
        gateway = Gateway(ports)
        await serve(store, xds, gateway, t, ready=[(host, "/ok", 200)])

        for code in (404, 503):
            answer = await gateway(
                host, f"/status/{code}?q=1", headers={"Accept": "text/html", "X-Request-ID": "r1"}
            )
            assert (answer.status, answer.headers["x-backend"]) == (code, "fallback"), answer
            echo = answer.json()
            got = echo["headers"]
            assert echo["path"] == "/?q=1"
            assert got["x-code"] == str(code)
            assert got["x-original-uri"] == f"/status/{code}?q=1"
            assert got["x-namespace"] == A
            assert got["x-ingress-name"] == host
            assert got["x-service-name"] == "web"
            assert got["x-service-port"] == "80"
            assert got["x-format"] == "text/html"
            assert got["x-request-id"] == "r1"
            for internal in ("x-ripple-error-page", "x-ripple-scope", "x-ripple-redirect"):
                assert internal not in got
        answer = await gateway(host, "/status/500")
        assert (answer.status, answer.headers["x-backend"]) == (500, "echo")


async def test_a_client_cannot_send_the_error_page_marker(
    *, xds: XdsProcess, envoy: subprocess.Popen[bytes], store: RedisTenantStore, ports: Ports
) -> None:
    """The error page is reached only through the gateway's own re-routing: a request carrying
    ``x-ripple-error-page`` (and a made-up ``x-ripple-redirect`` proof) is routed as any other,
    to the Ingress's backend; the backend's 404 still reaches the error page. Before: the
    marker matched the error page's route, so a client got the default backend at will."""
    host = "marker.errors.test"
    with echo_backend() as web, echo_backend("fallback") as fallback:
        t = translate(
            ingress(host, host, custom_http_errors="404", default_backend="fallback"),
            backends={"web": web, "fallback": fallback},
            default_backend=None,
        )
        assert errors(t) == []
        gateway = Gateway(ports)
        await serve(store, xds, gateway, t, ready=[(host, "/", 200)])

        for forged in (
            {"x-ripple-error-page": f"{A}/{host}"},
            {"x-ripple-error-page": f"{A}/{host}", "x-ripple-redirect": "guess"},
            {"x-ripple-error-page": f"{A}/{host}", "x-ripple-redirect": ""},
        ):
            answer = await gateway(host, "/mine", headers=forged)
            assert (answer.status, answer.headers["x-backend"]) == (200, "echo"), forged
            echo = answer.json()
            assert echo["path"] == "/mine"
            assert "x-ripple-error-page" not in echo["headers"]
            assert "x-ripple-redirect" not in echo["headers"]
        answer = await gateway(host, "/status/404")
        assert (answer.status, answer.headers["x-backend"]) == (404, "fallback")


async def test_unknown_hosts_over_https_get_the_default_backend(
    *, stack: StackEnv, store: RedisTenantStore, prefix: str, ports: Ports, tmp_path: Path
) -> None:
    """ssl.go and custom_default_backend.go over HTTPS: an unknown host (with SNI, and without)
    gets the fake certificate and the default backend's answer. Before: 404."""
    https_port = free_port()
    with echo_backend() as web, echo_backend("fallback") as fallback:
        t = translate(
            ingress("web", "known.https.test"), backends={"web": web, "fallback": fallback}
        )
        await write_tenant(store, A, list(t.resources))
        async with parity_support.gateway(
            stack=stack, prefix=prefix, ports=ports, tmp_path=tmp_path, https_port=https_port
        ) as (xds, _):

            async def https(host: str, sni: str | None) -> parity_support.Answer | None:
                xds.check_alive()
                try:
                    return await asyncio.to_thread(
                        parity_support.request, https_port, host, tls=True, sni=sni
                    )
                except OSError:
                    return None

            async def served() -> bool:
                got = await https("foo.bar.com", "foo.bar.com")
                return got is not None and got.status == 200

            await until("https unknown host -> 200", served, logs=[xds.log])
            for host, sni in (("foo.bar.com", "foo.bar.com"), ("127.0.0.1", None)):
                got = await https(host, sni)
                assert got is not None
                assert got.status == 200, (host, got)
                assert parity_support.common_name(got.certificate) == (
                    "Kubernetes Ingress Controller Fake Certificate"
                )
                echo = json.loads(got.body)  # only the default backend serves this host
                assert echo["headers"]["host"] == host
                assert echo["headers"]["x-forwarded-proto"] == "https"
