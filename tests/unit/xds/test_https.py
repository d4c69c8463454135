"""The gateway's HTTPS listener: one filter chain per TLS host (exact SNI), by SDS the
certificate the translator chose for the host (on its virtual host), of the host's own tenant,
for the hosts the tenant routes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

from ripple_common.resources import Resource, TypeUrl
from ripple_xds.https import (
    HTTPS_LISTENER,
    HttpsFeed,
    HttpsSettings,
    TlsHosts,
    bindings,
    chosen_certificates,
    scope_host,
)
from ripple_xds.identity import Gateway
from ripple_xds.snapshot import SnapshotCache
from tests.unit.xds import certs

SETTINGS = HttpsSettings(address="127.0.0.1", port=10443)


def _scope(name: str) -> Resource:
    return Resource(TypeUrl.SCOPED_ROUTE, name, b"\x0a\x01x")


def _chains(resource: Resource) -> dict[str, str]:
    """server name -> SDS secret name of each filter chain."""
    listener = listener_pb2.Listener.FromString(resource.body)
    assert listener.listener_filters[0].name == "envoy.filters.listener.tls_inspector"
    out = {}
    for chain in listener.filter_chains:
        context = tls_pb2.DownstreamTlsContext()
        assert chain.transport_socket.typed_config.Unpack(context)
        (sds,) = context.common_tls_context.tls_certificate_sds_secret_configs
        assert sds.sds_config.HasField("ads")
        (server_name,) = chain.filter_chain_match.server_names
        assert chain.name == server_name
        assert chain.filters[0].name == "envoy.filters.network.http_connection_manager"
        out[server_name] = sds.name
    return out


def test_scope_names_give_tenant_and_host() -> None:
    assert scope_host("t1/scope/a.example.com") == ("t1", "a.example.com")
    assert scope_host("t1/routes") is None
    assert scope_host("ripple-scope") is None


def test_the_translators_choice_is_read_from_the_virtual_hosts() -> None:
    body = certs.chosen("t1", {"a.example.com": "t1/ns/a", "*.shop.example.com": "t1/ns/w"}).body
    assert chosen_certificates(body) == {
        "a.example.com": "t1/ns/a",
        "*.shop.example.com": "t1/ns/w",
    }
    assert chosen_certificates(b"\xff not a proto") == {}


def test_hosts_get_the_chosen_secret_of_their_own_tenant_when_routed_and_present() -> None:
    chosen = {
        "t1/routes": {"a.example.com": "t1/ns/a", "c.example.com": "t1/ns/gone"},
        "t2/routes": {"x.example.com": "t1/ns/a", "y.example.com": "t2/ns/y"},
    }
    hosts = {"t1": {"a.example.com", "c.example.com"}, "t2": {"x.example.com"}}
    secrets = {"t1/ns/a", "t2/ns/y"}
    # t1/ns/gone is not in the cache, t2 names t1's Secret, t2 does not route y.example.com.
    assert bindings(chosen, hosts, secrets) == {"a.example.com": "t1/ns/a"}


def test_a_host_two_tenants_route_takes_the_smallest_tenants_choice() -> None:
    chosen = {"t2/routes": {"a.x": "t2/ns/s"}, "t1/routes": {"a.x": "t1/ns/s"}}
    hosts = {"t1": {"a.x"}, "t2": {"a.x"}}
    assert bindings(chosen, hosts, {"t1/ns/s", "t2/ns/s"}) == {"a.x": "t1/ns/s"}


def test_listener_has_one_chain_per_bound_host_and_none_without_hosts() -> None:
    tls = TlsHosts(SETTINGS)
    assert tls.listener() is None
    tls.secret("t1/ns/s", certs.secret("t1/ns/s", certs.self_signed("a.x", "b.x")).body)
    assert tls.route("t1/routes", certs.chosen("t1", {"a.x": "t1/ns/s", "b.x": "t1/ns/s"}).body)
    tls.scope("t1/scope/a.x", present=True)
    tls.scope("t1/scope/b.x", present=True)
    tls.scope("t1/scope/c.x", present=True)
    listener = tls.listener()
    assert listener is not None
    assert listener.name == HTTPS_LISTENER
    assert _chains(listener) == {"a.x": "t1/ns/s", "b.x": "t1/ns/s"}
    tls.scope("t1/scope/b.x", present=False)
    again = tls.listener()
    assert again is not None
    assert _chains(again) == {"a.x": "t1/ns/s"}
    tls.secret("t1/ns/s", None)
    assert tls.listener() is None


def test_a_route_change_matters_only_when_the_choice_changes() -> None:
    tls = TlsHosts(SETTINGS)
    body = certs.chosen("t1", {"a.x": "t1/ns/s"}).body
    assert tls.route("t1/routes", body)
    assert not tls.route("t1/routes", body)
    assert not tls.route("t2/routes", certs.chosen("t2", {}).body)
    assert tls.route("t1/routes", None)
    assert not tls.route("t1/routes", None)


def test_encoding_is_deterministic() -> None:
    def build() -> bytes:
        tls = TlsHosts(SETTINGS)
        for host in ("b.x", "a.x"):
            tls.scope(f"t1/scope/{host}", present=True)
        tls.route("t1/routes", certs.chosen("t1", {"b.x": "t1/ns/s", "a.x": "t1/ns/s"}).body)
        tls.secret("t1/ns/s", certs.secret("t1/ns/s", pem).body)
        listener = tls.listener()
        assert listener is not None
        return listener.body

    pem = certs.self_signed("a.x", "b.x")
    assert build() == build()


def test_feed_rebuilds_the_listener_once_per_burst() -> None:
    cache = SnapshotCache()
    scheduled: list[Callable[[], None]] = []
    feed = HttpsFeed(cache, SETTINGS, schedule=scheduled.append)
    pem = certs.self_signed("a.x")
    cache.apply(upserts=[_scope("t1/scope/a.x"), certs.chosen("t1", {"a.x": "t1/ns/s"})])
    cache.apply(upserts=[certs.secret("t1/ns/s", pem)])
    assert len(scheduled) == 1
    scheduled.pop()()
    entry = cache.get(TypeUrl.LISTENER, HTTPS_LISTENER)
    assert entry is not None
    assert _chains(entry.resource) == {"a.x": "t1/ns/s"}
    cache.apply(removals=[(TypeUrl.SCOPED_ROUTE, "t1/scope/a.x")])
    scheduled.pop()()
    assert cache.get(TypeUrl.LISTENER, HTTPS_LISTENER) is None
    assert feed.rebuilds == 2
    feed.close()
    cache.apply(upserts=[_scope("t1/scope/a.x")])
    assert not scheduled


def test_feed_follows_the_translators_choice() -> None:
    """The translator moves a host to another of its tenant's Secrets: the chain follows."""
    cache = SnapshotCache()
    scheduled: list[Callable[[], None]] = []
    feed = HttpsFeed(cache, SETTINGS, schedule=scheduled.append)
    pem = certs.self_signed("a.x")
    cache.apply(
        upserts=[
            _scope("t1/scope/a.x"),
            certs.secret("t1/ns/one", pem),
            certs.secret("t1/ns/two", pem),
            certs.chosen("t1", {"a.x": "t1/ns/two"}),
        ]
    )
    scheduled.pop()()
    entry = cache.get(TypeUrl.LISTENER, HTTPS_LISTENER)
    assert entry is not None
    assert _chains(entry.resource) == {"a.x": "t1/ns/two"}
    cache.apply(upserts=[certs.chosen("t1", {"a.x": "t1/ns/one"})])
    scheduled.pop()()
    entry = cache.get(TypeUrl.LISTENER, HTTPS_LISTENER)
    assert entry is not None
    assert _chains(entry.resource) == {"a.x": "t1/ns/one"}
    feed.close()


@pytest.mark.parametrize("port", [0, 70000])
def test_bad_port_is_refused(port: int) -> None:
    tls = TlsHosts(HttpsSettings(address="127.0.0.1", port=port))
    tls.scope("t1/scope/a.x", present=True)
    tls.route("t1/routes", certs.chosen("t1", {"a.x": "t1/ns/s"}).body)
    tls.secret("t1/ns/s", certs.secret("t1/ns/s", certs.self_signed("a.x")).body)
    with pytest.raises(ValueError, match="out of range"):
        tls.listener()


def test_each_gateway_has_its_own_listener_with_its_tenants_hosts() -> None:
    cache = SnapshotCache()
    scheduled: list[Callable[[], None]] = []
    blue, green = Gateway("blue", frozenset({"t1"})), Gateway("green", frozenset({"t2"}))
    HttpsFeed(cache, SETTINGS, schedule=scheduled.append, gateways=(blue, green))
    cache.apply(
        upserts=[
            _scope("t1/scope/a.x"),
            _scope("t2/scope/b.x"),
            certs.chosen("t1", {"a.x": "t1/ns/s"}),
            certs.chosen("t2", {"b.x": "t2/ns/s"}),
            certs.secret("t1/ns/s", certs.self_signed("a.x")),
            certs.secret("t2/ns/s", certs.self_signed("b.x")),
        ]
    )
    scheduled.pop()()
    assert cache.get(TypeUrl.LISTENER, HTTPS_LISTENER) is None
    blue_listener = cache.get(TypeUrl.LISTENER, "ripple-https.blue")
    green_listener = cache.get(TypeUrl.LISTENER, "ripple-https.green")
    assert blue_listener is not None
    assert green_listener is not None
    assert _chains(blue_listener.resource) == {"a.x": "t1/ns/s"}
    assert _chains(green_listener.resource) == {"b.x": "t2/ns/s"}
