"""Redirects answered as ingress-nginx answers them, through a real Envoy (issue #16, point 3):
the Location exactly as configured, the https redirect of a host whose tls Secret is missing,
relative-redirects, preserve-trailing-slash, permanent-redirect to a path."""

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


async def test_redirect_locations_are_exactly_as_configured(
    *, xds: XdsProcess, envoy: subprocess.Popen[bytes], store: RedisTenantStore, ports: Ports
) -> None:
    """test/e2e/annotations/redirect.go ("should respond with a standard/custom redirect
    code": Location equal to the URL, no slash added), relativeredirects.go ("should respond
    with absolute/relative URL in Location" for permanent-redirect /new-location), and a final
    $request_uri (nginx's ``return 301 URL$request_uri``)."""
    redirect, custom = "redirect.redir.test", "custom.redir.test"
    absolute, relative, uri = "rr.foo.com", "rr-relative.redir.test", "uri.redir.test"
    with echo_backend() as web:
        t = translate(
            ingress(
                "redirect", redirect, path="/something",
                permanent_redirect="http://redirect.example.com",
            ),
            ingress(
                "custom", custom, path="/something",
                permanent_redirect="http://redirect.example.com", permanent_redirect_code="302",
            ),
            ingress(
                "absolute", absolute, path="/something",
                permanent_redirect="/new-location", relative_redirects="false",
            ),
            ingress(
                "relative", relative, path="/something",
                permanent_redirect="/new-location", relative_redirects="true",
            ),
            ingress("uri", uri, permanent_redirect="https://new.example.com$request_uri"),
            backends={"web": web},
        )  # fmt: skip
        assert errors(t) == []
        gateway = Gateway(ports)
        await serve(store, xds, gateway, t, ready=[(redirect, "/something", 301)])

        answer = await gateway(redirect, "/something")
        assert (answer.status, answer.headers["location"]) == (301, "http://redirect.example.com")
        answer = await gateway(custom, "/something")
        assert (answer.status, answer.headers["location"]) == (302, "http://redirect.example.com")
        answer = await gateway(absolute, "/something")
        assert (answer.status, answer.headers["location"]) == (
            301,
            "http://rr.foo.com/new-location",
        )
        answer = await gateway(relative, "/something")
        assert (answer.status, answer.headers["location"]) == (301, "/new-location")
        answer = await gateway(uri, "/a/b?x=1")
        assert (answer.status, answer.headers["location"]) == (
            301,
            "https://new.example.com/a/b?x=1",
        )


async def test_https_redirect_as_ingress_nginx(
    *, xds: XdsProcess, envoy: subprocess.Popen[bytes], store: RedisTenantStore, ports: Ports
) -> None:
    """test/e2e/annotations/forcesslredirect.go ("should redirect to https": GET / ->
    308 https://forcesslredirect.bar.com, no trailing slash), preservetrailingslash.go (a tls
    section whose Secret does not exist, ssl-redirect and preserve-trailing-slash: 308
    https://HOST/), settings/tls.go ("should not use ports during the HTTP to HTTPS
    redirection": a tls host, GET / -> https://HOST)."""
    force, keep, tls = "forcesslredirect.bar.com", "preserve.redir.test", "tls.redir.test"
    with echo_backend() as web:
        t = translate(
            ingress("force", force, force_ssl_redirect="true"),
            ingress("keep", keep, tls=True, ssl_redirect="true", preserve_trailing_slash="true"),
            ingress("tls", tls, tls=True),
            backends={"web": web},
        )
        assert errors(t) == []
        gateway = Gateway(ports)
        await serve(store, xds, gateway, t, ready=[(force, "/", 308), (keep, "/", 308)])

        answer = await gateway(force)
        assert (answer.status, answer.headers["location"]) == (308, f"https://{force}")
        answer = await gateway(keep)
        assert (answer.status, answer.headers["location"]) == (308, f"https://{keep}/")
        answer = await gateway(tls)  # its Secret does not exist
        assert (answer.status, answer.headers["location"]) == (308, f"https://{tls}")
        # nginx strips one trailing slash of the request URI and keeps the rest.
        answer = await gateway(tls, "/docs/")
        assert answer.headers["location"] == f"https://{tls}/docs"
        answer = await gateway(tls, "/docs?page=2")
        assert answer.headers["location"] == f"https://{tls}/docs?page=2"
        answer = await gateway(keep, "/docs/")
        assert answer.headers["location"] == f"https://{keep}/docs/"
