"""A TOO_LARGE event in a replay removes the object, as the translator does."""

from __future__ import annotations

from ripple_cli.replay.run import PartitionReplay
from ripple_common.envelope import EventType
from ripple_common.resources import TypeUrl
from ripple_translator.translate import TranslateOptions
from tests.unit.translator_service.support import cluster, event, ingress, ingress_class, service

A = "team-a"


def test_a_too_large_object_is_no_longer_served_in_the_replay() -> None:
    run = PartitionReplay([A], options=TranslateOptions())
    web = event(A, ingress(A, "web", "web.a.test"))
    for offset, env in enumerate([cluster(ingress_class()), event(A, service(A)), web]):
        run.apply(env, offset=offset)
    scope = (TypeUrl.SCOPED_ROUTE, f"{A}/scope/web.a.test")
    assert scope in run.resources(A)
    (step,) = run.apply(web.too_large_marker(encoded_bytes=3, limit_bytes=2), offset=3)
    assert step.envelope.type is EventType.TOO_LARGE
    assert any(c.after is None for c in step.changes)
    assert scope not in run.resources(A)
