"""TLS Secrets, host bindings, and the https redirects that depend on them."""

from __future__ import annotations

from typing import Any

import pytest

from ripple_common import gateway_contract as contract
from ripple_common.resources import TypeUrl
from ripple_translator.translate import Reason, Severity, Translation
from tests.unit.translator import decode, k8s
from tests.unit.xds import certs

TLS = [{"hosts": ["shop.example.com"], "secretName": "web-tls"}]


def https_redirects(t: Translation) -> list[Any]:
    return [r for r in decode.routes(t) if r.HasField("redirect") and r.redirect.https_redirect]


def test_referenced_secret_becomes_an_sds_secret() -> None:
    t = k8s.run(k8s.ingress(tls=TLS), secrets=[k8s.tls_secret()])

    secret = decode.one(t, TypeUrl.SECRET)
    assert secret.name == "t1/shop/web-tls"
    assert secret.tls_certificate.certificate_chain.inline_bytes == k8s.CERT.encode()
    assert secret.tls_certificate.private_key.inline_bytes == k8s.KEY.encode()


def test_string_data_secrets_are_accepted() -> None:
    secret = k8s.tls_secret()
    secret["stringData"] = {"tls.crt": k8s.CERT, "tls.key": k8s.KEY}
    del secret["data"]
    t = k8s.run(k8s.ingress(tls=TLS), secrets=[secret])

    assert decode.names(t, TypeUrl.SECRET) == ["t1/shop/web-tls"]


def test_tls_binding_names_host_and_secret() -> None:
    t = k8s.run(k8s.ingress(tls=TLS), secrets=[k8s.tls_secret()])

    assert [(b.host, b.secret) for b in t.tls] == [("shop.example.com", "t1/shop/web-tls")]


def test_tls_entry_without_hosts_covers_the_ingress_rule_hosts() -> None:
    t = k8s.run(k8s.ingress(tls=[{"secretName": "web-tls"}]), secrets=[k8s.tls_secret()])

    assert [b.host for b in t.tls] == ["shop.example.com"]


def test_unreferenced_secret_is_not_emitted() -> None:
    t = k8s.run(k8s.ingress(), secrets=[k8s.tls_secret()])

    assert decode.names(t, TypeUrl.SECRET) == []


def test_missing_secret_is_reported() -> None:
    t = k8s.run(k8s.ingress(tls=TLS))

    [d] = decode.diags(t, Reason.SECRET_NOT_FOUND)
    assert d.severity is Severity.WARNING
    assert t.tls == ()


@pytest.mark.parametrize(
    ("cert", "key"),
    [
        ("not a cert", k8s.KEY),
        (k8s.CERT, "not a key"),
        (k8s.CERT, "-----BEGIN ENCRYPTED PRIVATE KEY-----\nx\n-----END ENCRYPTED PRIVATE KEY-----"),
        ("", k8s.KEY),
    ],
)
def test_invalid_secret_is_reported_and_not_emitted(cert: str, key: str) -> None:
    t = k8s.run(k8s.ingress(tls=TLS), secrets=[k8s.tls_secret(cert=cert, key=key)])

    assert decode.names(t, TypeUrl.SECRET) == []
    assert decode.diags(t, Reason.INVALID_SECRET, Severity.WARNING)


def test_host_bound_twice_keeps_the_older_ingress_secret() -> None:
    t = k8s.run(
        k8s.ingress("a", tls=TLS),
        k8s.ingress(
            "b",
            rules=[k8s.rule("shop.example.com", k8s.path("/b"))],
            tls=[{"hosts": ["shop.example.com"], "secretName": "other-tls"}],
            created="2024-02-01T00:00:00Z",
        ),
        secrets=[k8s.tls_secret(), k8s.tls_secret("other-tls")],
    )

    assert [b.secret for b in t.tls] == ["t1/shop/web-tls"]
    [d] = decode.diags(t, Reason.SETTING_CONFLICT)
    assert d.object.name == "b"


def test_host_with_certificate_redirects_plain_http_to_https_first() -> None:
    t = k8s.run(k8s.ingress(tls=TLS), secrets=[k8s.tls_secret()])

    # GET / (a Host without port) -> https://host exactly, then the https redirect, then the
    # path's route (test_nginx_parity.py has the details).
    root, first, second = decode.routes(t)
    assert root.direct_response.status == 308
    assert [(h.name, h.string_match.exact) for h in first.match.headers] == [
        ("x-forwarded-proto", "http")
    ]
    assert first.redirect.https_redirect
    assert first.redirect.response_code == first.redirect.PERMANENT_REDIRECT
    assert decode.match_of(root) == decode.match_of(first) == decode.match_of(second)


def test_host_without_certificate_does_not_redirect() -> None:
    assert https_redirects(k8s.run(k8s.ingress())) == []


def test_missing_secret_still_redirects_as_ingress_nginx() -> None:
    """ingress-nginx serves its default certificate then (test/e2e/annotations/
    preservetrailingslash.go: a tls section without its Secret, 308 to https)."""
    assert len(https_redirects(k8s.run(k8s.ingress(tls=TLS)))) == 1


def test_ssl_redirect_false_turns_the_redirect_off() -> None:
    t = k8s.run(
        k8s.ingress(tls=TLS, annotations=k8s.nginx(ssl_redirect="false")),
        secrets=[k8s.tls_secret()],
    )

    assert https_redirects(t) == []


def test_force_ssl_redirect_redirects_without_a_certificate() -> None:
    t = k8s.run(k8s.ingress(annotations=k8s.nginx(force_ssl_redirect="true")))

    assert len(https_redirects(t)) == 1


def test_wildcard_certificate_covers_a_subdomain_for_the_redirect() -> None:
    t = k8s.run(
        k8s.ingress(tls=[{"hosts": ["*.example.com"], "secretName": "web-tls"}]),
        secrets=[k8s.tls_secret()],
    )

    assert [b.host for b in t.tls] == ["*.example.com"]
    assert len(https_redirects(t)) == 1


# --- one decision: the certificate the gateway serves is the one reported here ------------------

WILD = certs.self_signed("*.example.com")
EXACT = certs.self_signed("shop.example.com")


def _secret(name: str, pem: certs.Pem) -> dict[str, Any]:
    return k8s.tls_secret(name, cert=pem.certificate.decode(), key=pem.private_key.decode())


def _served_with(t: Translation, host: str = "shop.example.com") -> str | None:
    """The Secret the gateway serves `host` with: the one on its virtual host."""
    metadata = decode.vhost(t, host).metadata.filter_metadata
    if contract.TLS_METADATA not in metadata:
        return None
    value: str = metadata[contract.TLS_METADATA].fields[contract.TLS_SECRET_KEY].string_value
    return value


def _two_ingresses(older: tuple[str, certs.Pem], younger: tuple[str, certs.Pem]) -> Translation:
    """Ingress a, then b (younger) for shop.example.com, each with its (Secret, certificate)."""
    return k8s.run(
        k8s.ingress("a", tls=[{"hosts": ["shop.example.com"], "secretName": older[0]}]),
        k8s.ingress(
            "b",
            rules=[k8s.rule("shop.example.com", k8s.path("/b"))],
            tls=[{"hosts": ["shop.example.com"], "secretName": younger[0]}],
            created="2024-02-01T00:00:00Z",
        ),
        secrets=[_secret(*older), _secret(*younger)],
    )


def test_the_virtual_host_names_the_secret_the_translator_chose() -> None:
    """Older Ingress with a wildcard certificate, younger with an exact one (an exact SAN would
    have won at the gateway before): the older's, reported on the younger, and served."""
    t = _two_ingresses(("wild", WILD), ("exact", EXACT))

    assert [(b.host, b.secret) for b in t.tls] == [("shop.example.com", "t1/shop/wild")]
    assert _served_with(t) == "t1/shop/wild"
    [d] = decode.diags(t, Reason.SETTING_CONFLICT)
    assert (d.object.name, d.severity) == ("b", Severity.WARNING)
    assert "already uses Secret t1/shop/wild of the older Ingress shop/a" in d.message
    assert decode.names(t, TypeUrl.SECRET) == ["t1/shop/wild"]


def test_a_certificate_that_does_not_name_the_host_is_not_used_for_it() -> None:
    """As ingress-nginx: the older Ingress's Secret names another host, so the younger's
    (which names it) serves the host; the older gets a Warning."""
    t = _two_ingresses(("other", certs.self_signed("other.example.org")), ("exact", EXACT))

    assert [(b.host, b.secret) for b in t.tls] == [("shop.example.com", "t1/shop/exact")]
    assert _served_with(t) == "t1/shop/exact"
    [d] = decode.diags(t, Reason.CERTIFICATE_HOST_MISMATCH)
    assert (d.object.name, d.severity) == ("a", Severity.WARNING)
    assert "does not name TLS host shop.example.com (its DNS names: other.example.org)" in (
        d.message
    )
    assert decode.names(t, TypeUrl.SECRET) == ["t1/shop/exact"]


def test_a_host_without_a_binding_is_served_with_its_wildcards_secret() -> None:
    t = k8s.run(
        k8s.ingress(tls=[{"hosts": ["*.example.com"], "secretName": "wild"}]),
        secrets=[_secret("wild", WILD)],
    )

    assert [b.host for b in t.tls] == ["*.example.com"]
    assert _served_with(t) == "t1/shop/wild"


def test_a_host_without_a_certificate_names_none() -> None:
    assert _served_with(k8s.run(k8s.ingress())) is None
