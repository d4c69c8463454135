"""The gateway default backend (ingress-nginx's --default-backend-service, issue #16 point 6):
who writes the catch-all, what it is, and custom-http-errors falling back to it."""

from __future__ import annotations

from typing import Any

import pytest
from envoy.extensions.filters.http.custom_response.v3 import custom_response_pb2
from envoy.extensions.http.custom_response.redirect_policy.v3 import redirect_policy_pb2
from pydantic import ValidationError

from ripple_common.resources import TypeUrl
from ripple_translator.settings import TranslatorSettings
from ripple_translator.translate import Reason, TranslateOptions, Translation
from ripple_translator.translate.default_backend import (
    DefaultBackendService,
    parse_default_backend,
)
from tests.unit.translator import decode, k8s

HOST = "shop.example.com"
CATCH_ALL = f"{k8s.TENANT}/default-backend"
CUSTOM_RESPONSE = "envoy.filters.http.custom_response"


def options(value: str | None = f"{k8s.NS}/fallback") -> TranslateOptions:
    return TranslateOptions(default_backend=parse_default_backend(value) if value else None)


def with_fallback(*ingresses: Any, value: str | None = f"{k8s.NS}/fallback") -> Translation:
    """Tenant t1 (namespace shop) with Services web and fallback (ports 80 http, 8080 admin)."""
    ports = ({"name": "http", "port": 80}, {"name": "admin", "port": 8080})
    return k8s.run(
        *ingresses,
        services=[k8s.service("web"), k8s.service("fallback", ports=ports)],
        slices=[
            k8s.endpoint_slice(endpoints=[k8s.endpoint("10.0.0.1")]),
            k8s.endpoint_slice(
                "fallback-x",
                service_name="fallback",
                endpoints=[k8s.endpoint("10.0.0.9")],
                ports=[{"name": "http", "port": 8080}, {"name": "admin", "port": 9090}],
            ),
        ],
        options=options(value),
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ns/svc", DefaultBackendService("ns", "svc")),
        ("ns/svc:80", DefaultBackendService("ns", "svc", 80)),
        ("ns/svc:http", DefaultBackendService("ns", "svc", "http")),
        (
            " kube-system/default-http-backend ",
            DefaultBackendService("kube-system", "default-http-backend"),
        ),
    ],
)
def test_the_setting_names_a_service_and_its_port(
    value: str, expected: DefaultBackendService
) -> None:
    assert parse_default_backend(value) == expected


@pytest.mark.parametrize(
    "value",
    ["svc", "ns/", "/svc", "ns/svc/x", "NS/svc", "ns/svc:0", "ns/svc:70000", "ns/s_c", "ns/svc:"],
)
def test_a_bad_setting_is_refused_with_a_clear_error(value: str) -> None:
    with pytest.raises(ValueError, match="default backend service"):
        parse_default_backend(value)
    with pytest.raises(ValidationError, match="default backend service"):
        TranslatorSettings(default_backend_service=value)


def test_the_setting_is_optional() -> None:
    assert TranslatorSettings().default_backend_service is None
    assert TranslatorSettings(default_backend_service=" ").default_backend_service is None
    assert TranslatorSettings(default_backend_service="a/b:80").default_backend_service == "a/b:80"


def test_the_tenant_owning_the_service_writes_the_catch_all_scope_and_routes() -> None:
    t = with_fallback(k8s.ingress(rules=[k8s.rule(HOST, k8s.path("/"))]))

    scope = decode.one(t, TypeUrl.SCOPED_ROUTE, CATCH_ALL)
    assert scope.route_configuration_name == CATCH_ALL
    assert [f.string_key for f in scope.key.fragments] == ["_"]
    routes = decode.one(t, TypeUrl.ROUTE, CATCH_ALL)
    assert list(routes.request_headers_to_remove) == ["x-ripple-scope", "x-ripple-error-page"]
    [vhost] = routes.virtual_hosts
    assert list(vhost.domains) == ["*"]
    assert vhost.metadata.filter_metadata["ripple.scope"].fields["served"].bool_value
    [route] = vhost.routes
    assert route.match.prefix == "/"
    # No port in the setting: the Service's first (ingress-nginx), its own EDS cluster.
    assert route.route.cluster == f"{k8s.TENANT}/{k8s.NS}/fallback:80"
    assert decode.endpoints(t, f"{k8s.TENANT}/{k8s.NS}/fallback:80").endpoints
    # The tenant's own hosts are untouched.
    assert decode.one(t, TypeUrl.ROUTE, f"{k8s.TENANT}/routes").virtual_hosts[0].name == HOST


def test_a_named_port_picks_that_port() -> None:
    t = with_fallback(value=f"{k8s.NS}/fallback:admin")

    route = decode.one(t, TypeUrl.ROUTE, CATCH_ALL).virtual_hosts[0].routes[0]
    assert route.route.cluster == f"{k8s.TENANT}/{k8s.NS}/fallback:8080"


def test_a_missing_port_is_a_warning_on_the_service_and_no_catch_all() -> None:
    t = with_fallback(value=f"{k8s.NS}/fallback:9999")

    assert CATCH_ALL not in decode.names(t, TypeUrl.SCOPED_ROUTE)
    [d] = decode.diags(t, Reason.SERVICE_PORT_NOT_FOUND)
    assert (d.object.kind, d.object.name) == ("Service", "fallback")
    assert "default backend" in d.message


@pytest.mark.parametrize("value", ["other/fallback", "shop/missing", None])
def test_other_tenants_and_missing_services_write_nothing(value: str | None) -> None:
    """Only the Service the operator named makes the catch-all: a tenant whose namespace is
    not that one (whatever its Services are called) writes none."""
    t = with_fallback(k8s.ingress(rules=[k8s.rule(HOST, k8s.path("/"))]), value=value)

    assert decode.names(t, TypeUrl.SCOPED_ROUTE) == [f"{k8s.TENANT}/scope/{HOST}"]
    assert decode.names(t, TypeUrl.ROUTE) == [f"{k8s.TENANT}/routes"]


@pytest.mark.parametrize("host", ["_", "*._"])
def test_a_tenant_cannot_claim_the_catch_all_key_by_naming_it(host: str) -> None:
    t = with_fallback(k8s.ingress(rules=[k8s.rule(host, k8s.path("/"))]), value=None)

    assert decode.names(t, TypeUrl.SCOPED_ROUTE) == []
    assert t.hosts == ()


def errored_routes(t: Translation) -> list[Any]:
    """The routes of HOST that hand some codes to the custom_response filter."""
    [vhost] = decode.one(t, TypeUrl.ROUTE, f"{k8s.TENANT}/routes").virtual_hosts
    return [r for r in vhost.routes if CUSTOM_RESPONSE in r.typed_per_filter_config]


def error_policy(route: Any) -> Any:
    config = custom_response_pb2.CustomResponse.FromString(
        route.typed_per_filter_config[CUSTOM_RESPONSE].value
    )
    [matcher, *_] = config.custom_response_matcher.matcher_list.matchers
    policy = redirect_policy_pb2.RedirectPolicy()
    matcher.on_match.action.typed_config.Unpack(policy)
    return policy


def test_custom_http_errors_without_default_backend_use_the_gateways() -> None:
    t = with_fallback(
        k8s.ingress(
            rules=[k8s.rule(HOST, k8s.path("/app"))],
            annotations=k8s.nginx(custom_http_errors="404"),
        )
    )

    assert not decode.diags(t, Reason.ANNOTATION_IGNORED)
    [route] = errored_routes(t)
    policy = error_policy(route)
    added = {h.header.key: h.header.value for h in policy.request_headers_to_add}
    assert added["x-ripple-scope"] == "_"  # the catch-all scope
    assert added["X-Code"] == "404"
    assert added["X-Namespace"] == k8s.NS
    assert added["X-Service-Name"] == "web"
    assert added["X-Service-Port"] == "80"
    assert added["X-Format"] == "%REQ(accept)%"
    assert added["x-ripple-redirect"] == "%DYNAMIC_METADATA(ripple.scope:token)%"
    assert policy.redirect_action.path_redirect == "/"


def test_custom_http_errors_without_any_default_backend_are_still_ignored() -> None:
    t = with_fallback(
        k8s.ingress(
            rules=[k8s.rule(HOST, k8s.path("/app"))],
            annotations=k8s.nginx(custom_http_errors="404"),
        ),
        value=None,
    )

    [d] = decode.diags(t, Reason.ANNOTATION_IGNORED)
    assert "no default backend configured" in d.message


def test_the_annotations_error_page_redirect_proves_itself_too() -> None:
    """The error page of the default-backend annotation: its redirect carries the scope
    filter's token, without which the gateway removes the marker."""
    t = with_fallback(
        k8s.ingress(
            rules=[k8s.rule(HOST, k8s.path("/app"))],
            annotations=k8s.nginx(custom_http_errors="404", default_backend="web"),
        ),
        value=None,
    )

    route, *_ = errored_routes(t)  # the /app route (the default backend has its own)
    added = {h.header.key: h.header.value for h in error_policy(route).request_headers_to_add}
    assert added["x-ripple-redirect"] == "%DYNAMIC_METADATA(ripple.scope:token)%"
    assert added["x-ripple-error-page"] == f"{k8s.NS}/web"
    assert added["x-ripple-scope"] == HOST
