"""The SotW ADS state machine, rule by rule, against a real SnapshotCache (no gRPC)."""

from __future__ import annotations

from ripple_common.resources import PUSH_ORDER, TypeUrl
from ripple_xds.protocol import digest_of
from ripple_xds.snapshot import SnapshotCache
from ripple_xds.sotw import SotwResponse, SotwStream
from tests.unit.xds.helpers import (
    CDS,
    EDS,
    LDS,
    RDS,
    SRDS,
    bodies,
    cache_with,
    eds_cluster,
    names,
    push,
    res,
    sotw_ack,
    sotw_nack,
    sotw_req,
)


def _one(responses: tuple[SotwResponse, ...]) -> SotwResponse:
    assert len(responses) == 1, responses
    return responses[0]


# -- wildcard and named subscriptions --------------------------------------------------------


def test_first_lds_request_naming_nothing_gets_every_listener() -> None:
    stream = SotwStream(cache_with(res(LDS, "a"), res(LDS, "b"), res(CDS, "c")))
    response = _one(stream.on_request(sotw_req(LDS)).responses)
    assert (response.type_url, names(response)) == (LDS, ["a", "b"])


def test_first_cds_request_with_an_empty_cache_gets_an_empty_response() -> None:
    stream = SotwStream(cache_with())
    response = _one(stream.on_request(sotw_req(CDS)).responses)
    assert response.resources == ()


def test_first_srds_request_naming_nothing_gets_every_scope() -> None:
    stream = SotwStream(cache_with(res(SRDS, "s1"), res(SRDS, "s2")))
    response = _one(stream.on_request(sotw_req(SRDS)).responses)
    assert names(response) == ["s1", "s2"]


def test_rds_request_naming_nothing_is_not_a_wildcard() -> None:
    stream = SotwStream(cache_with(res(RDS, "r1")))
    assert stream.on_request(sotw_req(RDS)).responses == ()


def test_named_request_gets_only_the_named_resources() -> None:
    stream = SotwStream(cache_with(res(RDS, "r1"), res(RDS, "r2"), res(RDS, "r3")))
    response = _one(stream.on_request(sotw_req(RDS, "r1", "r3")).responses)
    assert names(response) == ["r1", "r3"]


def test_star_with_names_keeps_the_wildcard() -> None:
    stream = SotwStream(cache_with(res(LDS, "a"), res(LDS, "b")))
    response = _one(stream.on_request(sotw_req(LDS, "*", "a")).responses)
    assert names(response) == ["a", "b"]


def test_naming_resources_ends_the_legacy_wildcard() -> None:
    stream = SotwStream(cache_with(res(LDS, "a"), res(LDS, "b")))
    first = _one(stream.on_request(sotw_req(LDS)).responses)
    second = _one(stream.on_request(sotw_ack(first, "a")).responses)
    assert names(second) == ["a"]


def test_empty_request_after_names_unsubscribes_everything() -> None:
    stream = SotwStream(cache_with(res(LDS, "a")))
    first = _one(stream.on_request(sotw_req(LDS, "a")).responses)
    second = _one(stream.on_request(sotw_ack(first)).responses)
    assert second.resources == ()


# -- nonces, ACK and NACK ----------------------------------------------------------------------


def test_each_response_carries_a_new_nonce() -> None:
    cache = cache_with(res(CDS, "a"))
    stream = SotwStream(cache)
    first = _one(stream.on_request(sotw_req(CDS)).responses)
    push(cache, stream, res(CDS, "a", "v2"))
    second = _one(stream.on_request(sotw_ack(first)).responses)
    assert first.nonce != second.nonce


def test_request_with_a_stale_nonce_is_ignored() -> None:
    cache = cache_with(res(RDS, "r1"), res(RDS, "r2"))
    stream = SotwStream(cache)
    first = _one(stream.on_request(sotw_req(RDS, "r1")).responses)
    push(cache, stream, res(RDS, "r1", "v2"))
    stream.on_request(sotw_ack(first, "r1"))  # first is ACKed; the v2 response is in flight
    step = stream.on_request(sotw_ack(first, "r1", "r2"))  # answers the old nonce
    assert (step.stale_nonce, step.responses, step.acks) == (True, (), ())
    assert stream.subscribed(RDS) == (False, frozenset({"r1"}))


def test_request_with_a_nonce_never_sent_is_stale() -> None:
    stream = SotwStream(cache_with(res(CDS, "a")))
    step = stream.on_request(sotw_req(CDS, nonce="42"))
    assert (step.stale_nonce, step.responses) == (True, ())


def test_echoed_version_without_error_is_an_ack() -> None:
    stream = SotwStream(cache_with(res(CDS, "a")))
    sent = _one(stream.on_request(sotw_req(CDS)).responses)
    step = stream.on_request(sotw_ack(sent))
    [ack] = step.acks
    assert (ack.type_url, ack.nonce, ack.version, ack.names) == (
        CDS,
        sent.nonce,
        sent.version_info,
        ("a",),
    )
    assert step.nacks == ()


def test_error_detail_is_a_nack_with_the_error_text_and_kept_version() -> None:
    cache = cache_with(res(CDS, "a"))
    stream = SotwStream(cache)
    good = _one(stream.on_request(sotw_req(CDS)).responses)
    stream.on_request(sotw_ack(good))
    bad = _one(push(cache, stream, res(CDS, "a", "broken")).responses)
    step = stream.on_request(sotw_nack(bad, kept=good.version_info, error="cluster a: bad lb"))
    [nack] = step.nacks
    assert (nack.rejected_version, nack.kept_version, nack.error, nack.names) == (
        bad.version_info,
        good.version_info,
        "cluster a: bad lb",
        ("a",),
    )
    assert step.acks == ()


def test_other_version_without_error_detail_is_a_nack() -> None:
    stream = SotwStream(cache_with(res(CDS, "a")))
    sent = _one(stream.on_request(sotw_req(CDS)).responses)
    step = stream.on_request(sotw_req(CDS, version="old", nonce=sent.nonce))
    [nack] = step.nacks
    assert "not the version sent" in nack.error


def test_nacked_full_state_is_not_sent_again() -> None:
    cache = cache_with(res(LDS, "l"))
    stream = SotwStream(cache)
    bad = _one(stream.on_request(sotw_req(LDS)).responses)
    stream.on_request(sotw_nack(bad))
    assert push(cache, stream, res(CDS, "unrelated")).responses == ()


def test_nacked_named_resource_is_not_sent_again() -> None:
    stream = SotwStream(cache_with(res(RDS, "r")))
    bad = _one(stream.on_request(sotw_req(RDS, "r")).responses)
    assert stream.on_request(sotw_nack(bad, "r")).responses == ()


def test_content_after_a_nack_is_sent_when_it_changes() -> None:
    cache = cache_with(res(RDS, "r", "broken"))
    stream = SotwStream(cache)
    bad = _one(stream.on_request(sotw_req(RDS, "r")).responses)
    stream.on_request(sotw_nack(bad, "r"))
    fixed = _one(push(cache, stream, res(RDS, "r", "fixed")).responses)
    assert bodies(fixed) == {"r": b"r:fixed"}


# -- full state (LDS, CDS, SRDS) and by name (RDS, EDS, SDS) ----------------------------------


def test_full_state_response_carries_unchanged_resources_too() -> None:
    cache = cache_with(res(CDS, "a"), res(CDS, "b"))
    stream = SotwStream(cache)
    stream.on_request(sotw_ack(_one(stream.on_request(sotw_req(CDS)).responses)))
    response = _one(push(cache, stream, res(CDS, "a", "v2")).responses)
    assert bodies(response) == {"a": b"a:v2", "b": b"b:v1"}


def test_full_state_response_leaves_out_a_deleted_resource() -> None:
    cache = cache_with(res(SRDS, "s1"), res(SRDS, "s2"))
    stream = SotwStream(cache)
    stream.on_request(sotw_ack(_one(stream.on_request(sotw_req(SRDS)).responses)))
    response = _one(push(cache, stream, removals=((SRDS, "s1"),)).responses)
    assert names(response) == ["s2"]


def test_full_state_answers_a_changed_subscription_with_unchanged_content() -> None:
    stream = SotwStream(cache_with(res(LDS, "a")))
    first = _one(stream.on_request(sotw_req(LDS, "a")).responses)
    second = _one(stream.on_request(sotw_ack(first, "a", "missing")).responses)
    assert (names(second), second.version_info) == (["a"], first.version_info)


def test_by_name_response_carries_only_what_changed() -> None:
    cache = cache_with(res(RDS, "r1"), res(RDS, "r2"))
    stream = SotwStream(cache)
    first = _one(stream.on_request(sotw_req(RDS, "r1", "r2")).responses)
    stream.on_request(sotw_ack(first, "r1", "r2"))
    response = _one(push(cache, stream, res(RDS, "r2", "v2")).responses)
    assert bodies(response) == {"r2": b"r2:v2"}


def test_name_that_does_not_exist_yet_is_sent_when_it_appears() -> None:
    cache = cache_with()
    stream = SotwStream(cache)
    assert stream.on_request(sotw_req(EDS, "later")).responses == ()
    response = _one(push(cache, stream, res(EDS, "later")).responses)
    assert names(response) == ["later"]


def test_resource_that_reappears_with_the_same_content_is_sent_again() -> None:
    cache = cache_with(res(RDS, "r"))
    stream = SotwStream(cache)
    stream.on_request(sotw_ack(_one(stream.on_request(sotw_req(RDS, "r")).responses), "r"))
    assert push(cache, stream, removals=((RDS, "r"),)).responses == ()
    assert names(_one(push(cache, stream, res(RDS, "r")).responses)) == ["r"]


def test_newly_requested_name_is_sent_even_if_sent_before() -> None:
    stream = SotwStream(cache_with(res(RDS, "r")))
    first = _one(stream.on_request(sotw_req(RDS, "r")).responses)
    unsubscribed = stream.on_request(sotw_ack(first))  # names nothing: drops r
    assert unsubscribed.responses == ()
    again = _one(stream.on_request(sotw_ack(first, "r")).responses)
    assert names(again) == ["r"]


def test_name_first_sent_under_the_wildcard_is_sent_again_when_named() -> None:
    stream = SotwStream(cache_with(res(RDS, "r")))
    first = _one(stream.on_request(sotw_req(RDS, "*")).responses)
    again = _one(stream.on_request(sotw_ack(first, "r")).responses)
    assert names(again) == ["r"]


def test_change_to_an_unsubscribed_name_is_not_sent() -> None:
    cache = cache_with(res(RDS, "r1"), res(RDS, "r2"))
    stream = SotwStream(cache)
    first = _one(stream.on_request(sotw_req(RDS, "r1", "r2")).responses)
    stream.on_request(sotw_ack(first, "r1"))
    assert push(cache, stream, res(RDS, "r2", "v2")).responses == ()


def _clusters_and_endpoints_acked(stream: SotwStream, *clusters: str) -> None:
    for response in stream.on_request(sotw_req(CDS)).responses:
        stream.on_request(sotw_ack(response))
    for response in stream.on_request(sotw_req(EDS, *clusters)).responses:
        stream.on_request(sotw_ack(response, *clusters))


def test_changed_cluster_is_followed_by_its_unchanged_endpoints() -> None:
    cache = cache_with(res(CDS, "c"), res(EDS, "c"))
    stream = SotwStream(cache)
    _clusters_and_endpoints_acked(stream, "c")
    step = push(cache, stream, res(CDS, "c", "v2"))
    assert [(r.type_url, names(r)) for r in step.responses] == [(CDS, ["c"]), (EDS, ["c"])]


def test_unchanged_cluster_in_a_full_state_response_does_not_resend_endpoints() -> None:
    cache = cache_with(res(CDS, "c"), res(EDS, "c"))
    stream = SotwStream(cache)
    _clusters_and_endpoints_acked(stream, "c")
    step = push(cache, stream, res(CDS, "other"))
    assert [(r.type_url, names(r)) for r in step.responses] == [(CDS, ["c", "other"])]


# A cluster added beside one that shares its EDS service name (the translator's variant of a
# service port, e.g. ring hash for cookie affinity): the EDS response of the same flush must
# carry the assignment again, or the new cluster warms for 15 s (issue #15).
SHARED = "t/ns/web:80"
VARIANT = f"{SHARED}~ring_hash"


def _holding_shared_endpoints() -> tuple[SnapshotCache, SotwStream]:
    cache = cache_with(eds_cluster(SHARED, endpoints=SHARED), res(EDS, SHARED))
    stream = SotwStream(cache)
    _clusters_and_endpoints_acked(stream, SHARED)
    return cache, stream


def test_new_cluster_sharing_held_endpoints_is_followed_by_them() -> None:
    cache, stream = _holding_shared_endpoints()
    step = push(cache, stream, eds_cluster(VARIANT, endpoints=SHARED))
    assert [(r.type_url, names(r)) for r in step.responses] == [
        (CDS, sorted([SHARED, VARIANT])),
        (EDS, [SHARED]),
    ]


def test_changed_cluster_is_followed_by_the_endpoints_its_eds_service_name_names() -> None:
    cache, stream = _holding_shared_endpoints()
    for response in push(cache, stream, eds_cluster(VARIANT, endpoints=SHARED)).responses:
        stream.on_request(sotw_ack(response, *([SHARED] if response.type_url is EDS else [])))
    step = push(cache, stream, eds_cluster(VARIANT, endpoints=SHARED, connect_timeout_s=2))
    assert [(r.type_url, names(r)) for r in step.responses] == [
        (CDS, sorted([SHARED, VARIANT])),
        (EDS, [SHARED]),
    ]


def test_shared_endpoints_are_resent_once_not_again_on_envoys_repeated_request() -> None:
    """Envoy's SotW EDS request after the new cluster names the same set: the assignment
    went out with the CDS response already and is not sent twice."""
    cache, stream = _holding_shared_endpoints()
    cds, eds = push(cache, stream, eds_cluster(VARIANT, endpoints=SHARED)).responses
    stream.on_request(sotw_ack(cds))
    assert stream.on_request(sotw_ack(eds, SHARED)).responses == ()


# -- send only on change, no duplicates, coalescing, order ------------------------------------


def test_ack_with_nothing_changed_sends_nothing() -> None:
    stream = SotwStream(cache_with(res(CDS, "a")))
    sent = _one(stream.on_request(sotw_req(CDS)).responses)
    assert stream.on_request(sotw_ack(sent)).responses == ()


def test_change_elsewhere_in_the_full_state_type_that_is_undone_sends_nothing() -> None:
    cache = cache_with(res(CDS, "a"))
    stream = SotwStream(cache)
    first = _one(stream.on_request(sotw_req(CDS)).responses)
    push(cache, stream, res(CDS, "a", "v2"))
    push(cache, stream, res(CDS, "a", "v1"))  # back to what the client holds
    assert stream.on_request(sotw_ack(first)).responses == ()


def test_a_name_requested_twice_is_sent_once() -> None:
    stream = SotwStream(cache_with(res(RDS, "r")))
    response = _one(stream.on_request(sotw_req(RDS, "r", "r")).responses)
    assert [e.name for e in response.resources] == ["r"]


def test_changes_before_the_ack_are_coalesced_into_one_response() -> None:
    cache = cache_with(res(RDS, "r1"), res(RDS, "r2"))
    stream = SotwStream(cache)
    first = _one(stream.on_request(sotw_req(RDS, "r1", "r2")).responses)
    assert push(cache, stream, res(RDS, "r1", "v2")).responses == ()  # first not ACKed yet
    assert push(cache, stream, res(RDS, "r2", "v2")).responses == ()
    response = _one(stream.on_request(sotw_ack(first, "r1", "r2")).responses)
    assert bodies(response) == {"r1": b"r1:v2", "r2": b"r2:v2"}


def _subscribed_and_acked(stream: SotwStream) -> None:
    for request in (
        sotw_req(CDS),
        sotw_req(EDS, "c"),
        sotw_req(LDS),
        sotw_req(SRDS),
        sotw_req(RDS, "r"),
    ):
        for response in stream.on_request(request).responses:
            stream.on_request(sotw_ack(response, *request.resource_names))


def _setup() -> tuple[SnapshotCache, SotwStream]:
    cache = cache_with(res(CDS, "c"), res(EDS, "c"), res(LDS, "l"), res(SRDS, "s"), res(RDS, "r"))
    stream = SotwStream(cache)
    _subscribed_and_acked(stream)
    return cache, stream


def _types(responses: tuple[SotwResponse, ...]) -> list[TypeUrl]:
    return [r.type_url for r in responses]


def test_changes_across_types_go_out_in_push_order() -> None:
    cache, stream = _setup()
    upserts = [res(t, n, "v2") for t, n in [(RDS, "r"), (SRDS, "s"), (LDS, "l"), (EDS, "c")]]
    step = push(cache, stream, *upserts, res(CDS, "c", "v2"))
    assert _types(step.responses) == [CDS, EDS]
    cds, eds = step.responses
    assert stream.on_request(sotw_ack(cds)).responses == ()  # EDS still in flight
    sent = _types(stream.on_request(sotw_ack(eds, "c")).responses)
    assert sent == [t for t in PUSH_ORDER if t in sent]
    assert sent == [LDS, SRDS, RDS]


def test_later_type_waits_while_an_earlier_change_is_held_back() -> None:
    cache = cache_with(res(CDS, "c"), res(RDS, "r"))
    stream = SotwStream(cache)
    cds = _one(stream.on_request(sotw_req(CDS)).responses)  # in flight, not ACKed
    assert stream.on_request(sotw_req(RDS, "r")).responses == ()  # waits for CDS
    assert push(cache, stream, res(CDS, "c", "v2"), res(RDS, "r", "v2")).responses == ()
    after_ack = stream.on_request(sotw_ack(cds))
    assert _types(after_ack.responses) == [CDS]
    rds = _one(stream.on_request(sotw_ack(after_ack.responses[0])).responses)
    assert bodies(rds) == {"r": b"r:v2"}


# -- make before break -------------------------------------------------------------------------


def test_route_to_a_new_cluster_waits_for_the_cds_and_eds_acks() -> None:
    cache, stream = _setup()
    step = push(cache, stream, res(CDS, "new"), res(EDS, "new"), res(RDS, "r", "to-new"))
    cds = _one(step.responses)
    assert names(cds) == ["c", "new"]
    eds = _one(stream.on_request(sotw_req(EDS, "c", "new", nonce="", version="")).responses)
    assert (eds.type_url, names(eds)) == (EDS, ["new"])
    assert stream.on_request(sotw_ack(cds)).responses == ()
    rds = _one(stream.on_request(sotw_ack(eds, "c", "new")).responses)
    assert (rds.type_url, bodies(rds)) == (RDS, {"r": b"r:to-new"})


def test_nack_of_the_cluster_unblocks_the_route() -> None:
    cache, stream = _setup()
    cds = _one(push(cache, stream, res(CDS, "new"), res(RDS, "r", "v2")).responses)
    step = stream.on_request(sotw_nack(cds, kept="old"))
    assert len(step.nacks) == 1
    assert _types(step.responses) == [RDS]


def test_cluster_removal_waits_for_the_route_update_ack() -> None:
    cache, stream = _setup()
    step = push(cache, stream, res(RDS, "r", "no-c"), removals=((CDS, "c"), (EDS, "c")))
    rds = _one(step.responses)  # the route stops using the cluster first
    assert (rds.type_url, bodies(rds)) == (RDS, {"r": b"r:no-c"})
    cds = _one(stream.on_request(sotw_ack(rds, "r")).responses)
    assert (cds.type_url, names(cds)) == (CDS, [])


def test_cluster_removal_waits_for_a_route_update_already_in_flight() -> None:
    cache, stream = _setup()
    rds = _one(push(cache, stream, res(RDS, "r", "no-c")).responses)
    assert push(cache, stream, removals=((CDS, "c"),)).responses == ()
    cds = _one(stream.on_request(sotw_ack(rds, "r")).responses)
    assert (cds.type_url, names(cds)) == (CDS, [])


def test_nack_of_the_route_update_releases_the_removal() -> None:
    cache, stream = _setup()
    step = push(cache, stream, res(RDS, "r", "no-c"), removals=((CDS, "c"),))
    cds = _one(stream.on_request(sotw_nack(_one(step.responses), "r")).responses)
    assert (cds.type_url, names(cds)) == (CDS, [])


def test_lone_cluster_removal_is_not_delayed() -> None:
    cache, stream = _setup()
    cds = _one(push(cache, stream, removals=((CDS, "c"),)).responses)
    assert (cds.type_url, names(cds)) == (CDS, [])


def test_lone_route_change_is_not_delayed() -> None:
    cache, stream = _setup()
    assert _types(push(cache, stream, res(RDS, "r", "v2")).responses) == [RDS]


def test_cluster_upsert_keeps_a_held_back_removal_in_the_full_state() -> None:
    cache, stream = _setup()
    step = push(cache, stream, res(CDS, "new"), res(RDS, "r", "v2"), removals=((CDS, "c"),))
    cds = _one(step.responses)
    assert bodies(cds) == {"c": b"c:v1", "new": b"new:v1"}  # "c" still in use
    expected = digest_of({"c": res(CDS, "c").version, "new": res(CDS, "new").version})
    assert cds.version_info == expected
    rds = _one(stream.on_request(sotw_ack(cds)).responses)
    assert rds.type_url == RDS
    removal = _one(stream.on_request(sotw_ack(rds, "r")).responses)
    assert (removal.type_url, names(removal)) == (CDS, ["new"])


def test_removed_cluster_that_comes_back_before_release_is_not_sent_again() -> None:
    cache, stream = _setup()
    rds = _one(push(cache, stream, res(RDS, "r", "no-c"), removals=((CDS, "c"),)).responses)
    assert push(cache, stream, res(CDS, "c")).responses == ()
    assert stream.on_request(sotw_ack(rds, "r")).responses == ()


# -- versions and reconnects -------------------------------------------------------------------


def test_version_names_the_content_the_same_on_every_stream() -> None:
    cache = cache_with(res(CDS, "a"), res(CDS, "b"))
    one = _one(SotwStream(cache).on_request(sotw_req(CDS)).responses)
    two = _one(SotwStream(cache).on_request(sotw_req(CDS)).responses)
    expected = digest_of({"a": res(CDS, "a").version, "b": res(CDS, "b").version})
    assert one.version_info == two.version_info == expected


def test_reconnect_with_the_current_version_is_sent_nothing() -> None:
    cache = cache_with(res(CDS, "a"))
    held = _one(SotwStream(cache).on_request(sotw_req(CDS)).responses).version_info
    step = SotwStream(cache).on_request(sotw_req(CDS, version=held))
    assert step.responses == ()


def test_reconnect_with_an_older_version_gets_the_current_state() -> None:
    cache = cache_with(res(RDS, "r"))
    held = _one(SotwStream(cache).on_request(sotw_req(RDS, "r")).responses).version_info
    cache.apply(upserts=[res(RDS, "r", "v2")])
    response = _one(SotwStream(cache).on_request(sotw_req(RDS, "r", version=held)).responses)
    assert bodies(response) == {"r": b"r:v2"}


def test_resumed_stream_still_sends_later_changes() -> None:
    cache = cache_with(res(CDS, "a"))
    held = _one(SotwStream(cache).on_request(sotw_req(CDS)).responses).version_info
    stream = SotwStream(cache)
    stream.on_request(sotw_req(CDS, version=held))
    assert names(_one(push(cache, stream, res(CDS, "b")).responses)) == ["a", "b"]


def test_unknown_type_is_reported_and_not_answered() -> None:
    stream = SotwStream(cache_with())
    step = stream.on_request(sotw_req("type.googleapis.com/envoy.service.runtime.v3.Runtime"))
    assert (step.unknown_type, step.responses) == (
        "type.googleapis.com/envoy.service.runtime.v3.Runtime",
        (),
    )
