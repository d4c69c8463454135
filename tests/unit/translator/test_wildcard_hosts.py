"""Wildcard hosts (`*.foo.com`): each gets its own scope keyed by the wildcard itself (the
gateway's scope key filter falls back to it), a marked virtual host, and a host claim."""

from __future__ import annotations

from ripple_common.resources import TypeUrl
from ripple_translator.translate import Reason, TranslateOptions, Translation
from tests.unit.translator import gwapi, k8s
from tests.unit.translator.decode import decode, diags, of_type, one

WILD = "*.example.com"


def _scopes(t: Translation) -> dict[str, str]:
    return {
        s.key.fragments[0].string_key: s.name for s in map(decode, of_type(t, TypeUrl.SCOPED_ROUTE))
    }


def test_ingress_wildcard_host_gets_a_scope_keyed_by_the_wildcard() -> None:
    t = k8s.run(k8s.ingress(rules=[k8s.rule(WILD), k8s.rule("shop.example.com")]))

    assert t.hosts == (WILD, "shop.example.com")
    assert _scopes(t) == {
        WILD: f"{k8s.TENANT}/scope/{WILD}",
        "shop.example.com": f"{k8s.TENANT}/scope/shop.example.com",
    }
    rc = one(t, TypeUrl.ROUTE)
    [vh] = [vh for vh in rc.virtual_hosts if vh.name == WILD]
    assert list(vh.domains) == [WILD]
    assert [c.host for c in t.claims] == [WILD, "shop.example.com"]
    assert not t.diagnostics


def test_every_virtual_host_is_marked_and_the_scope_header_never_reaches_the_upstream() -> None:
    t = k8s.run(k8s.ingress(rules=[k8s.rule(WILD), k8s.rule("shop.example.com")]))

    rc = one(t, TypeUrl.ROUTE)
    assert list(rc.request_headers_to_remove) == ["x-ripple-scope"]
    for vh in rc.virtual_hosts:
        assert vh.metadata.filter_metadata["ripple.scope"].fields["served"].bool_value


def test_denied_wildcard_is_a_host_not_allowed_error() -> None:
    options = TranslateOptions(host_allowed=lambda host: host != WILD)
    t = k8s.run(k8s.ingress(rules=[k8s.rule(WILD), k8s.rule("shop.example.com")]), options=options)

    assert t.hosts == ("shop.example.com",)
    [d] = diags(t, Reason.HOST_NOT_ALLOWED)
    assert WILD in d.message
    assert WILD in [c.host for c in t.claims]  # still claimed, for arbitration


def test_httproute_wildcard_hostname_is_served() -> None:
    t = gwapi.run(gwapi.http_route(hostnames=[WILD, "a.example.com"]))

    assert t.hosts == (WILD, "a.example.com")
    assert set(_scopes(t)) == {WILD, "a.example.com"}
