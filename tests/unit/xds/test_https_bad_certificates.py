"""One tenant's certificate never fails the HTTPS listener shared with the others: a Secret
whose key does not match its certificate is not served (counted against its tenant), and if
Envoy still rejects a Secret or the listener, the Secrets at fault are left out of the
listener until their content changes."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from envoy.config.listener.v3 import listener_pb2

from ripple_common.resources import Resource, TypeUrl
from ripple_common.sealing import Sealer
from ripple_translator.seal import seal_secret
from ripple_xds.https import HTTPS_LISTENER, HttpsFeed, HttpsSettings
from ripple_xds.propagation import Propagation
from ripple_xds.protocol import Ack, Nack, Step
from ripple_xds.secrets import SecretOpener, pair_problem
from ripple_xds.snapshot import SnapshotCache
from tests.unit.translator import test_certificates
from tests.unit.xds import certs

SEALER = Sealer(os.urandom(32))
SETTINGS = HttpsSettings(address="127.0.0.1", port=10443)


def mismatched(host: str) -> certs.Pem:
    """A certificate for `host` with the key of another certificate."""
    good, other = certs.self_signed(host), certs.self_signed(host)
    return certs.Pem(certificate=good.certificate, private_key=other.private_key, der=good.der)


def _host(tenant: str, host: str) -> list[Resource]:
    """`host` routed for `tenant`, served with its Secret `<tenant>/ns/s` (the translator's
    choice)."""
    scope = Resource(TypeUrl.SCOPED_ROUTE, f"{tenant}/scope/{host}", b"\x0a\x01x")
    return [scope, certs.chosen(tenant, {host: f"{tenant}/ns/s"})]


def _server_names(cache: SnapshotCache) -> list[str]:
    entry = cache.get(TypeUrl.LISTENER, HTTPS_LISTENER)
    if entry is None:
        return []
    listener = listener_pb2.Listener.FromString(entry.resource.body)
    return [c.filter_chain_match.server_names[0] for c in listener.filter_chains]


def test_pair_problem_finds_a_key_of_another_certificate() -> None:
    good, bad = certs.self_signed("a.x"), mismatched("b.x")
    assert pair_problem(good.certificate, good.private_key) is None
    problem = pair_problem(bad.certificate, bad.private_key)
    assert problem is not None
    assert "KEY_VALUES_MISMATCH" in problem


def test_pair_problem_finds_garbage_and_keys_envoy_does_not_serve() -> None:
    good = certs.self_signed("a.x")
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    small_pem = small.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    inconsistent = test_certificates.inconsistent_rsa_key()
    rsa_cert = test_certificates.cert_pem(inconsistent).encode()
    rsa_problem = pair_problem(rsa_cert, test_certificates.key_pem(inconsistent).encode())
    assert rsa_problem is not None
    assert "do not fit" in rsa_problem
    assert pair_problem(b"garbage", good.private_key) is not None
    assert pair_problem(good.certificate, b"garbage") is not None
    small_problem = pair_problem(good.certificate, small_pem)
    assert small_problem is not None
    assert "1024 bits" in small_problem


def test_a_mismatched_secret_is_not_served_and_is_counted_against_its_tenant() -> None:
    opener = SecretOpener(SEALER)
    bad = seal_secret(certs.secret("t2/ns/bad", mismatched("b.x")), SEALER)
    plain_bad = certs.secret("t2/ns/plain", mismatched("c.x"))
    good = seal_secret(certs.secret("t1/ns/good", certs.self_signed("a.x")), SEALER)

    assert opener(bad) is None
    assert opener(plain_bad) is None
    assert opener(good) is not None
    assert opener.stats.rejected == Counter({"t2": 2})
    assert opener.stats.opened == 1


def test_other_tenants_new_https_hosts_are_served_beside_a_rejected_secret() -> None:
    """Through the source's `prepare` hook and the feed: tenant t2's bad Secret never reaches
    the cache, so t3's new host gets its filter chain and t1 keeps its own."""
    cache = SnapshotCache()
    scheduled: list[Callable[[], None]] = []
    HttpsFeed(cache, SETTINGS, schedule=scheduled.append)
    opener = SecretOpener(SEALER)

    def write(*resources: Resource) -> None:
        ready = [p for r in resources if (p := opener(r)) is not None]
        cache.apply(upserts=ready)
        while scheduled:
            scheduled.pop()()

    write(*_host("t1", "a.x"), certs.secret("t1/ns/s", certs.self_signed("a.x")))
    write(*_host("t2", "b.x"), seal_secret(certs.secret("t2/ns/s", mismatched("b.x")), SEALER))
    write(*_host("t3", "c.x"), certs.secret("t3/ns/s", certs.self_signed("c.x")))

    assert _server_names(cache) == ["a.x", "c.x"]
    assert cache.get(TypeUrl.SECRET, "t2/ns/s") is None
    assert opener.stats.rejected == Counter({"t2": 1})


def _feed() -> tuple[SnapshotCache, HttpsFeed, list[Callable[[], None]]]:
    cache = SnapshotCache()
    scheduled: list[Callable[[], None]] = []
    feed = HttpsFeed(cache, SETTINGS, schedule=scheduled.append, nack_tenants=Counter())
    return cache, feed, scheduled


def _run(scheduled: list[Callable[[], None]]) -> None:
    while scheduled:
        scheduled.pop()()


def _nack(type_url: TypeUrl, names: tuple[str, ...], error: str) -> Nack:
    return Nack(
        type_url, nonce="7", rejected_version="v", kept_version="", error=error, names=names
    )


def test_a_nacked_secret_leaves_the_listener_until_its_content_changes() -> None:
    cache, feed, scheduled = _feed()
    cache.apply(upserts=[*_host("t1", "a.x"), certs.secret("t1/ns/s", certs.self_signed("a.x"))])
    cache.apply(upserts=[*_host("t2", "b.x"), certs.secret("t2/ns/s", certs.self_signed("b.x"))])
    _run(scheduled)
    assert _server_names(cache) == ["a.x", "b.x"]

    blamed = feed.nacked(_nack(TypeUrl.SECRET, ("t2/ns/s",), "Failed to load private key"))
    _run(scheduled)

    assert blamed == ("t2",)
    assert _server_names(cache) == ["a.x"]
    assert feed.nack_tenants == Counter()  # the server counts a Secret's NACK by its name
    cache.apply(upserts=[certs.secret("t2/ns/s", certs.self_signed("b.x"))])  # fixed
    _run(scheduled)
    assert _server_names(cache) == ["a.x", "b.x"]


def test_a_nack_of_several_tenants_secrets_blames_only_the_one_its_error_names() -> None:
    cache, feed, scheduled = _feed()
    for tenant, host in (("t1", "a.x"), ("t2", "b.x")):
        cache.apply(
            upserts=[
                *_host(tenant, host),
                certs.secret(f"{tenant}/ns/s", certs.self_signed(host)),
            ]
        )
    _run(scheduled)
    both = ("t1/ns/s", "t2/ns/s")

    assert feed.nacked(_nack(TypeUrl.SECRET, both, "Failed to load private key")) == ()
    assert feed.hosts.quarantined == frozenset()
    assert feed.nacked(_nack(TypeUrl.SECRET, both, "secret t2/ns/s: bad key")) == ("t2",)
    _run(scheduled)
    assert _server_names(cache) == ["a.x"]


def test_a_nacked_listener_blames_the_secret_its_error_names() -> None:
    cache, feed, scheduled = _feed()
    cache.apply(upserts=[*_host("t1", "a.x"), certs.secret("t1/ns/s", certs.self_signed("a.x"))])
    _run(scheduled)
    cache.apply(
        upserts=[
            *_host("t2", "b.x"),
            certs.secret("t2/ns/s", certs.self_signed("b.x")),
            *_host("t3", "c.x"),
            certs.secret("t3/ns/s", certs.self_signed("c.x")),
        ]
    )
    _run(scheduled)

    error = "Error adding/updating listener(s) ripple-https: secret t2/ns/s: KEY_VALUES_MISMATCH"
    assert feed.nacked(_nack(TypeUrl.LISTENER, (HTTPS_LISTENER,), error)) == ("t2",)
    _run(scheduled)

    assert _server_names(cache) == ["a.x", "c.x"]
    assert feed.nack_tenants == Counter({"t2": 1})


def test_a_nacked_listener_naming_nothing_blames_the_newest_chains() -> None:
    cache, feed, scheduled = _feed()
    cache.apply(upserts=[*_host("t1", "a.x"), certs.secret("t1/ns/s", certs.self_signed("a.x"))])
    _run(scheduled)
    cache.apply(upserts=[*_host("t2", "b.x"), certs.secret("t2/ns/s", certs.self_signed("b.x"))])
    _run(scheduled)

    assert feed.nacked(_nack(TypeUrl.LISTENER, (HTTPS_LISTENER,), "bad listener")) == ("t2",)
    _run(scheduled)

    assert _server_names(cache) == ["a.x"]
    assert feed.nack_tenants == Counter({"t2": 1})
    # Other listeners' and types' NACKs are none of the feed's business.
    assert feed.nacked(_nack(TypeUrl.LISTENER, ("ripple-http",), "x")) == ()
    assert feed.nacked(_nack(TypeUrl.ROUTE, ("t1/routes",), "x")) == ()


def test_propagation_hands_every_nack_to_its_listeners() -> None:
    propagation = Propagation()
    seen: list[Nack] = []
    propagation.nack_listeners.append(seen.append)
    stream = propagation.stream(mode="delta")
    nack = _nack(TypeUrl.LISTENER, (HTTPS_LISTENER,), "bad")
    ack = Ack(TypeUrl.CLUSTER, nonce="1", version="v", names=())

    stream.answered(Step(acks=(ack,), nacks=(nack,)))

    assert seen == [nack]


def test_a_nacked_listener_naming_nothing_blames_no_one_when_several_tenants_were_added() -> None:
    cache, feed, scheduled = _feed()
    cache.apply(upserts=[*_host("t1", "a.x"), certs.secret("t1/ns/s", certs.self_signed("a.x"))])
    cache.apply(upserts=[*_host("t2", "b.x"), certs.secret("t2/ns/s", certs.self_signed("b.x"))])
    _run(scheduled)

    assert feed.nacked(_nack(TypeUrl.LISTENER, (HTTPS_LISTENER,), "bad listener")) == ()
    assert _server_names(cache) == ["a.x", "b.x"]
    assert feed.nack_tenants == Counter()
