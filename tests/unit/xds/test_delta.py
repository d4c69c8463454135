"""The Delta ADS state machine, rule by rule, against a real SnapshotCache (no gRPC)."""

from __future__ import annotations

from ripple_common.resources import TypeUrl
from ripple_xds.delta import DeltaResponse, DeltaStream
from ripple_xds.protocol import digest_of
from ripple_xds.snapshot import SnapshotCache
from tests.unit.xds.helpers import (
    CDS,
    EDS,
    LDS,
    RDS,
    SRDS,
    bodies,
    cache_with,
    delta_ack,
    delta_nack,
    delta_req,
    eds_cluster,
    names,
    push,
    res,
)


def _one(responses: tuple[DeltaResponse, ...]) -> DeltaResponse:
    assert len(responses) == 1, responses
    return responses[0]


def _acked(stream: DeltaStream, responses: tuple[DeltaResponse, ...]) -> None:
    for response in responses:
        stream.on_request(delta_ack(response))


# -- wildcard and named subscriptions --------------------------------------------------------


def test_first_request_naming_nothing_subscribes_to_the_wildcard() -> None:
    stream = DeltaStream(cache_with(res(CDS, "a"), res(CDS, "b"), res(LDS, "l")))
    response = _one(stream.on_request(delta_req(CDS)).responses)
    assert (response.type_url, names(response)) == (CDS, ["a", "b"])


def test_first_srds_request_naming_nothing_gets_every_scope() -> None:
    stream = DeltaStream(cache_with(res(SRDS, "s1"), res(SRDS, "s2")))
    assert names(_one(stream.on_request(delta_req(SRDS)).responses)) == ["s1", "s2"]


def test_wildcard_with_an_empty_cache_gets_an_empty_response() -> None:
    stream = DeltaStream(cache_with())
    response = _one(stream.on_request(delta_req(LDS)).responses)
    assert (response.resources, response.removed) == ((), ())


def test_star_subscribes_to_the_wildcard() -> None:
    stream = DeltaStream(cache_with(res(RDS, "r1"), res(RDS, "r2")))
    response = _one(stream.on_request(delta_req(RDS, sub=("*",))).responses)
    assert names(response) == ["r1", "r2"]


def test_named_subscription_gets_only_the_named_resources() -> None:
    stream = DeltaStream(cache_with(res(RDS, "r1"), res(RDS, "r2")))
    response = _one(stream.on_request(delta_req(RDS, sub=("r2",))).responses)
    assert names(response) == ["r2"]


def test_rds_request_naming_nothing_is_not_a_wildcard() -> None:
    stream = DeltaStream(cache_with(res(RDS, "r1")))
    assert stream.on_request(delta_req(RDS)).responses == ()


def test_later_subscription_adds_to_the_earlier_ones() -> None:
    cache = cache_with(res(RDS, "r1"), res(RDS, "r2"))
    stream = DeltaStream(cache)
    _acked(stream, stream.on_request(delta_req(RDS, sub=("r1",))).responses)
    response = _one(stream.on_request(delta_req(RDS, sub=("r2",))).responses)
    assert names(response) == ["r2"]
    assert stream.subscribed(RDS) == (False, frozenset({"r1", "r2"}))


def test_unsubscribing_the_star_ends_the_wildcard() -> None:
    cache = cache_with(res(LDS, "a"))
    stream = DeltaStream(cache)
    _acked(stream, stream.on_request(delta_req(LDS)).responses)
    stream.on_request(delta_req(LDS, unsub=("*",)))
    assert push(cache, stream, res(LDS, "b")).responses == ()


# -- nonces, ACK and NACK ----------------------------------------------------------------------


def test_subscription_applies_even_with_a_stale_nonce() -> None:
    cache = cache_with(res(RDS, "r1"), res(RDS, "r2"))
    stream = DeltaStream(cache)
    first = _one(stream.on_request(delta_req(RDS, sub=("r1",))).responses)
    stream.on_request(delta_ack(first))
    step = stream.on_request(delta_req(RDS, sub=("r2",), nonce=first.nonce))  # stale now
    assert step.stale_nonce
    assert names(_one(step.responses)) == ["r2"]


def test_unsubscription_applies_even_with_a_stale_nonce() -> None:
    cache = cache_with(res(RDS, "r1"))
    stream = DeltaStream(cache)
    first = _one(stream.on_request(delta_req(RDS, sub=("r1",))).responses)
    stream.on_request(delta_ack(first))
    stream.on_request(delta_req(RDS, unsub=("r1",), nonce=first.nonce))
    assert push(cache, stream, res(RDS, "r1", "v2")).responses == ()


def test_stale_nonce_is_neither_ack_nor_nack() -> None:
    stream = DeltaStream(cache_with(res(CDS, "a")))
    sent = _one(stream.on_request(delta_req(CDS)).responses)
    stream.on_request(delta_ack(sent))
    step = stream.on_request(delta_nack(sent))
    assert (step.stale_nonce, step.acks, step.nacks) == (True, (), ())


def test_response_without_error_is_acked() -> None:
    stream = DeltaStream(cache_with(res(CDS, "a")))
    sent = _one(stream.on_request(delta_req(CDS)).responses)
    [ack] = stream.on_request(delta_ack(sent)).acks
    assert (ack.type_url, ack.nonce, ack.version, ack.names) == (
        CDS,
        sent.nonce,
        sent.system_version_info,
        ("a",),
    )


def test_error_detail_is_a_nack_with_the_error_text() -> None:
    stream = DeltaStream(cache_with(res(RDS, "r")))
    sent = _one(stream.on_request(delta_req(RDS, sub=("r",))).responses)
    step = stream.on_request(delta_nack(sent, error="route r: invalid regex"))
    [nack] = step.nacks
    assert (nack.rejected_version, nack.error, nack.names) == (
        sent.system_version_info,
        "route r: invalid regex",
        ("r",),
    )
    assert step.acks == ()


def test_nacked_content_is_not_sent_again() -> None:
    cache = cache_with(res(RDS, "r", "broken"), res(RDS, "q"))
    stream = DeltaStream(cache)
    bad = _one(stream.on_request(delta_req(RDS, sub=("r",))).responses)
    stream.on_request(delta_nack(bad))
    assert names(_one(stream.on_request(delta_req(RDS, sub=("q",))).responses)) == ["q"]


def test_content_after_a_nack_is_sent_when_it_changes() -> None:
    cache = cache_with(res(RDS, "r", "broken"))
    stream = DeltaStream(cache)
    stream.on_request(delta_nack(_one(stream.on_request(delta_req(RDS, sub=("r",))).responses)))
    fixed = _one(push(cache, stream, res(RDS, "r", "fixed")).responses)
    assert bodies(fixed) == {"r": b"r:fixed"}


# -- what is sent: only changes, removals, names that appear later ----------------------------


def test_only_the_changed_resource_is_sent() -> None:
    cache = cache_with(res(CDS, "a"), res(CDS, "b"))
    stream = DeltaStream(cache)
    _acked(stream, stream.on_request(delta_req(CDS)).responses)
    response = _one(push(cache, stream, res(CDS, "b", "v2")).responses)
    assert (bodies(response), response.removed) == ({"b": b"b:v2"}, ())


def test_deleted_resource_is_sent_in_removed_resources() -> None:
    cache = cache_with(res(CDS, "a"), res(CDS, "b"))
    stream = DeltaStream(cache)
    _acked(stream, stream.on_request(delta_req(CDS)).responses)
    response = _one(push(cache, stream, removals=((CDS, "a"),)).responses)
    assert (response.resources, response.removed) == ((), ("a",))


def test_name_that_does_not_exist_yet_is_sent_when_it_appears() -> None:
    cache = cache_with()
    stream = DeltaStream(cache)
    assert stream.on_request(delta_req(EDS, sub=("later",))).responses == ()
    assert names(_one(push(cache, stream, res(EDS, "later")).responses)) == ["later"]


def test_equal_content_is_not_sent_again() -> None:
    cache = cache_with(res(CDS, "a"))
    stream = DeltaStream(cache)
    _acked(stream, stream.on_request(delta_req(CDS)).responses)
    _acked(stream, push(cache, stream, res(CDS, "a", "v2")).responses)
    assert stream.on_change({CDS: {"a"}}).responses == ()  # told again, nothing new


def test_resubscribing_a_held_name_sends_it_again() -> None:
    cache = cache_with(res(RDS, "r"))
    stream = DeltaStream(cache)
    _acked(stream, stream.on_request(delta_req(RDS, sub=("r",))).responses)
    assert names(_one(stream.on_request(delta_req(RDS, sub=("r",))).responses)) == ["r"]


def test_phantom_unsubscription_is_ignored() -> None:
    stream = DeltaStream(cache_with(res(RDS, "r")))
    _acked(stream, stream.on_request(delta_req(RDS, sub=("r",))).responses)
    assert stream.on_request(delta_req(RDS, unsub=("never",))).responses == ()


def test_unsubscribing_a_name_in_the_wildcard_resends_it() -> None:
    stream = DeltaStream(cache_with(res(CDS, "a")))
    _acked(stream, stream.on_request(delta_req(CDS, sub=("*", "a"))).responses)
    response = _one(stream.on_request(delta_req(CDS, unsub=("a",))).responses)
    assert (names(response), response.removed) == (["a"], ())


def test_unsubscribing_a_name_outside_the_wildcard_reports_it_removed() -> None:
    stream = DeltaStream(cache_with(res(CDS, "a")))
    _acked(stream, stream.on_request(delta_req(CDS, sub=("*", "ghost"))).responses)
    response = _one(stream.on_request(delta_req(CDS, unsub=("ghost",))).responses)
    assert (response.resources, response.removed) == ((), ("ghost",))


def test_changed_cluster_is_followed_by_its_unchanged_endpoints() -> None:
    cache = cache_with(res(CDS, "c"), res(EDS, "c"))
    stream = DeltaStream(cache)
    _acked(stream, stream.on_request(delta_req(CDS)).responses)
    _acked(stream, stream.on_request(delta_req(EDS, sub=("c",))).responses)
    step = push(cache, stream, res(CDS, "c", "v2"))
    assert [(r.type_url, names(r)) for r in step.responses] == [(CDS, ["c"]), (EDS, ["c"])]


def test_new_cluster_does_not_push_endpoints_nobody_asked_for() -> None:
    cache = cache_with(res(EDS, "new"))
    stream = DeltaStream(cache)
    _acked(stream, stream.on_request(delta_req(CDS)).responses)
    _acked(stream, stream.on_request(delta_req(EDS, sub=("other",))).responses)
    step = push(cache, stream, res(CDS, "new"))
    assert [r.type_url for r in step.responses] == [CDS]


# A cluster added beside one that shares its EDS service name (the translator's variant of a
# service port, e.g. ring hash for cookie affinity): Envoy subscribes to nothing new, so unless
# the assignment it holds is sent again the new cluster warms for 15 s (issue #15).
SHARED = "t/ns/web:80"
VARIANT = f"{SHARED}~ring_hash"


def _holding_shared_endpoints() -> tuple[SnapshotCache, DeltaStream]:
    cache = cache_with(eds_cluster(SHARED, endpoints=SHARED), res(EDS, SHARED))
    stream = DeltaStream(cache)
    _acked(stream, stream.on_request(delta_req(CDS)).responses)
    _acked(stream, stream.on_request(delta_req(EDS, sub=(SHARED,))).responses)
    return cache, stream


def test_new_cluster_sharing_held_endpoints_is_followed_by_them() -> None:
    cache, stream = _holding_shared_endpoints()
    step = push(cache, stream, eds_cluster(VARIANT, endpoints=SHARED))
    assert [(r.type_url, names(r)) for r in step.responses] == [
        (CDS, [VARIANT]),
        (EDS, [SHARED]),
    ]


def test_changed_cluster_is_followed_by_the_endpoints_its_eds_service_name_names() -> None:
    cache, stream = _holding_shared_endpoints()
    _acked(stream, push(cache, stream, eds_cluster(VARIANT, endpoints=SHARED)).responses)
    step = push(cache, stream, eds_cluster(VARIANT, endpoints=SHARED, connect_timeout_s=2))
    assert [(r.type_url, names(r)) for r in step.responses] == [
        (CDS, [VARIANT]),
        (EDS, [SHARED]),
    ]


def test_shared_endpoints_are_sent_once_for_several_new_clusters() -> None:
    cache, stream = _holding_shared_endpoints()
    step = push(
        cache,
        stream,
        eds_cluster(VARIANT, endpoints=SHARED),
        eds_cluster(f"{SHARED}~h2", endpoints=SHARED),
    )
    assert [(r.type_url, names(r)) for r in step.responses] == [
        (CDS, sorted([VARIANT, f"{SHARED}~h2"])),
        (EDS, [SHARED]),
    ]


def test_endpoints_held_back_by_an_eds_response_in_flight_follow_its_ack() -> None:
    cache, stream = _holding_shared_endpoints()
    in_flight = _one(push(cache, stream, res(EDS, SHARED, "v2")).responses)
    step = push(cache, stream, eds_cluster(VARIANT, endpoints=SHARED))
    assert [r.type_url for r in step.responses] == [CDS]
    after_ack = _one(stream.on_request(delta_ack(in_flight)).responses)
    assert (after_ack.type_url, names(after_ack)) == (EDS, [SHARED])


# -- reconnect with initial_resource_versions ---------------------------------------------------


def test_reconnect_holding_everything_gets_an_empty_wildcard_response() -> None:
    cache = cache_with(res(CDS, "a"), res(CDS, "b"))
    held = {n: res(CDS, n).version for n in ("a", "b")}
    response = _one(DeltaStream(cache).on_request(delta_req(CDS, initial=held)).responses)
    assert (response.resources, response.removed) == ((), ())


def test_reconnect_gets_only_what_it_lacks() -> None:
    cache = cache_with(res(RDS, "r1"), res(RDS, "r2", "v2"), res(RDS, "r3"))
    held = {"r1": res(RDS, "r1").version, "r2": res(RDS, "r2").version}  # r2 is outdated
    request = delta_req(RDS, sub=("r1", "r2", "r3"), initial=held)
    response = _one(DeltaStream(cache).on_request(request).responses)
    assert bodies(response) == {"r2": b"r2:v2", "r3": b"r3:v1"}


def test_reconnect_is_told_what_no_longer_exists() -> None:
    cache = cache_with(res(CDS, "a"))
    held = {"a": res(CDS, "a").version, "gone": "0123"}
    response = _one(DeltaStream(cache).on_request(delta_req(CDS, initial=held)).responses)
    assert (response.resources, response.removed) == ((), ("gone",))


def test_reconnect_holding_all_named_resources_is_sent_nothing() -> None:
    cache = cache_with(res(RDS, "r"))
    request = delta_req(RDS, sub=("r",), initial={"r": res(RDS, "r").version})
    assert DeltaStream(cache).on_request(request).responses == ()


# -- versions, coalescing, order ----------------------------------------------------------------


def test_system_version_names_the_held_content_the_same_on_every_stream() -> None:
    cache = cache_with(res(CDS, "a"))
    one = _one(DeltaStream(cache).on_request(delta_req(CDS)).responses)
    two = _one(DeltaStream(cache).on_request(delta_req(CDS)).responses)
    assert one.system_version_info == two.system_version_info != ""


def test_changes_before_the_ack_are_coalesced_into_one_response() -> None:
    cache = cache_with(res(CDS, "a"))
    stream = DeltaStream(cache)
    first = _one(stream.on_request(delta_req(CDS)).responses)
    assert push(cache, stream, res(CDS, "b")).responses == ()
    assert push(cache, stream, res(CDS, "a", "v2")).responses == ()
    response = _one(stream.on_request(delta_ack(first)).responses)
    assert bodies(response) == {"a": b"a:v2", "b": b"b:v1"}


def _subscribed_and_acked() -> tuple[SnapshotCache, DeltaStream]:
    cache = cache_with(res(CDS, "c"), res(EDS, "c"), res(LDS, "l"), res(SRDS, "s"), res(RDS, "r"))
    stream = DeltaStream(cache)
    for request in (
        delta_req(CDS),
        delta_req(EDS, sub=("c",)),
        delta_req(LDS),
        delta_req(SRDS),
        delta_req(RDS, sub=("r",)),
    ):
        _acked(stream, stream.on_request(request).responses)
    return cache, stream


def _types(responses: tuple[DeltaResponse, ...]) -> list[TypeUrl]:
    return [r.type_url for r in responses]


def test_changes_across_types_go_out_in_push_order() -> None:
    cache, stream = _subscribed_and_acked()
    upserts = [res(t, n, "v2") for t, n in [(RDS, "r"), (SRDS, "s"), (LDS, "l"), (EDS, "c")]]
    step = push(cache, stream, *upserts, res(CDS, "c", "v2"))
    assert _types(step.responses) == [CDS, EDS]
    cds, eds = step.responses
    assert stream.on_request(delta_ack(cds)).responses == ()  # EDS still in flight
    assert _types(stream.on_request(delta_ack(eds)).responses) == [LDS, SRDS, RDS]


def test_later_type_waits_while_an_earlier_change_is_held_back() -> None:
    cache = cache_with(res(CDS, "c"), res(RDS, "r"))
    stream = DeltaStream(cache)
    cds = _one(stream.on_request(delta_req(CDS)).responses)  # in flight, not ACKed
    assert stream.on_request(delta_req(RDS, sub=("r",))).responses == ()  # waits for CDS
    assert push(cache, stream, res(CDS, "c", "v2"), res(RDS, "r", "v2")).responses == ()
    after_ack = stream.on_request(delta_ack(cds))
    assert _types(after_ack.responses) == [CDS]
    rds = _one(stream.on_request(delta_ack(after_ack.responses[0])).responses)
    assert bodies(rds) == {"r": b"r:v2"}


# -- make before break -------------------------------------------------------------------------


def test_route_to_a_new_cluster_waits_for_the_cds_and_eds_acks() -> None:
    cache, stream = _subscribed_and_acked()
    step = push(cache, stream, res(CDS, "new"), res(EDS, "new"), res(RDS, "r", "to-new"))
    assert _types(step.responses) == [CDS]
    eds_sub = stream.on_request(delta_req(EDS, sub=("new",)))  # Envoy asks for endpoints
    assert _types(eds_sub.responses) == [EDS]
    assert stream.on_request(delta_ack(step.responses[0])).responses == ()
    rds = _one(stream.on_request(delta_ack(eds_sub.responses[0])).responses)
    assert (rds.type_url, bodies(rds)) == (RDS, {"r": b"r:to-new"})


def test_cluster_and_endpoints_sent_together_then_route_after_both_acks() -> None:
    cache, stream = _subscribed_and_acked()
    step = push(cache, stream, res(CDS, "c", "v2"), res(EDS, "c", "v2"), res(RDS, "r", "v2"))
    assert _types(step.responses) == [CDS, EDS]
    cds, eds = step.responses
    assert stream.on_request(delta_ack(eds)).responses == ()
    assert _types(stream.on_request(delta_ack(cds)).responses) == [RDS]


def test_nack_of_the_cluster_unblocks_the_route() -> None:
    cache, stream = _subscribed_and_acked()
    cds = _one(push(cache, stream, res(CDS, "new"), res(RDS, "r", "v2")).responses)
    step = stream.on_request(delta_nack(cds))
    assert len(step.nacks) == 1
    assert _types(step.responses) == [RDS]


def test_cluster_removal_waits_for_the_route_update_ack() -> None:
    cache, stream = _subscribed_and_acked()
    step = push(cache, stream, res(RDS, "r", "no-c"), removals=((CDS, "c"), (EDS, "c")))
    rds = _one(step.responses)  # the route stops using the cluster first
    assert (rds.type_url, bodies(rds)) == (RDS, {"r": b"r:no-c"})
    after = stream.on_request(delta_ack(rds)).responses
    assert [(r.type_url, r.removed, r.resources) for r in after] == [
        (EDS, ("c",), ()),
        (CDS, ("c",), ()),
    ]


def test_cluster_removal_waits_for_a_route_update_already_in_flight() -> None:
    cache, stream = _subscribed_and_acked()
    rds = _one(push(cache, stream, res(RDS, "r", "no-c")).responses)
    assert push(cache, stream, removals=((CDS, "c"),)).responses == ()
    cds = _one(stream.on_request(delta_ack(rds)).responses)
    assert (cds.type_url, cds.removed) == (CDS, ("c",))


def test_nack_of_the_route_update_releases_the_removal() -> None:
    cache, stream = _subscribed_and_acked()
    step = push(cache, stream, res(RDS, "r", "no-c"), removals=((CDS, "c"),))
    cds = _one(stream.on_request(delta_nack(_one(step.responses))).responses)
    assert (cds.type_url, cds.removed) == (CDS, ("c",))


def test_lone_cluster_removal_is_not_delayed() -> None:
    cache, stream = _subscribed_and_acked()
    cds = _one(push(cache, stream, removals=((CDS, "c"),)).responses)
    assert (cds.type_url, cds.removed) == (CDS, ("c",))


def test_lone_route_change_is_not_delayed() -> None:
    cache, stream = _subscribed_and_acked()
    assert _types(push(cache, stream, res(RDS, "r", "v2")).responses) == [RDS]


def test_lone_endpoint_change_is_not_delayed() -> None:
    cache, stream = _subscribed_and_acked()
    assert _types(push(cache, stream, res(EDS, "c", "v2")).responses) == [EDS]


def test_cluster_upsert_goes_out_while_a_removal_is_held_back() -> None:
    cache, stream = _subscribed_and_acked()
    step = push(cache, stream, res(CDS, "new"), res(RDS, "r", "v2"), removals=((CDS, "c"),))
    cds = _one(step.responses)
    assert (names(cds), cds.removed) == (["new"], ())
    rds = _one(stream.on_request(delta_ack(cds)).responses)
    assert rds.type_url == RDS
    removal = _one(stream.on_request(delta_ack(rds)).responses)
    assert (removal.type_url, removal.removed) == (CDS, ("c",))


def test_removed_cluster_that_comes_back_before_release_is_not_removed() -> None:
    cache, stream = _subscribed_and_acked()
    rds = _one(push(cache, stream, res(RDS, "r", "no-c"), removals=((CDS, "c"),)).responses)
    assert push(cache, stream, res(CDS, "c")).responses == ()  # same content as held
    assert stream.on_request(delta_ack(rds)).responses == ()


def test_version_of_a_held_back_removal_names_what_the_client_holds() -> None:
    cache, stream = _subscribed_and_acked()
    step = push(cache, stream, res(CDS, "new"), res(RDS, "r", "v2"), removals=((CDS, "c"),))
    cds = _one(step.responses)
    expected = digest_of({"c": res(CDS, "c").version, "new": res(CDS, "new").version})
    assert cds.system_version_info == expected


def test_unknown_type_is_reported_and_not_answered() -> None:
    stream = DeltaStream(cache_with())
    step = stream.on_request(delta_req("type.googleapis.com/some.Other"))
    assert (step.unknown_type, step.responses) == ("type.googleapis.com/some.Other", ())
