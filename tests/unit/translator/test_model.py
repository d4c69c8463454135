"""Malformed and duplicated objects: reported on the object, never blocking the others."""

from __future__ import annotations

from typing import Any

import pytest

from ripple_translator.translate import Reason, Severity
from tests.unit.translator import decode, k8s


def broken(mutate: Any) -> k8s.JsonDict:
    ing = k8s.ingress("broken", rules=[k8s.rule("broken.example.com")])
    mutate(ing)
    return ing


@pytest.mark.parametrize(
    "mutate",
    [
        lambda i: i.pop("metadata"),
        lambda i: i["metadata"].pop("namespace"),
        lambda i: i["spec"].update(rules="nope"),
        lambda i: i["spec"]["rules"][0]["http"]["paths"][0].update(pathType="Regex"),
        lambda i: i["spec"]["rules"][0]["http"]["paths"][0].pop("backend"),
        lambda i: i["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"].update(port={}),
        lambda i: i["metadata"].update(creationTimestamp="yesterday"),
        lambda i: i["metadata"].update(annotations={"a": 1}),
    ],
    ids=[
        "no-metadata",
        "no-namespace",
        "rules-not-a-list",
        "bad-path-type",
        "no-backend",
        "port-without-number-or-name",
        "bad-timestamp",
        "non-string-annotation",
    ],
)
def test_malformed_ingress_is_reported_and_the_others_translate(mutate: Any) -> None:
    t = k8s.run(broken(mutate), k8s.ingress())

    assert t.hosts == ("shop.example.com",)
    [d] = decode.diags(t, Reason.INVALID_OBJECT)
    assert (d.object.kind, d.severity) == ("Ingress", Severity.ERROR)


def test_malformed_service_is_reported_and_its_routes_answer_503() -> None:
    bad = k8s.service()
    bad["spec"]["ports"] = [{"name": "http", "port": "eighty"}]
    t = k8s.run(k8s.ingress(), services=[bad])

    assert decode.diags(t, Reason.INVALID_OBJECT)
    assert decode.main_route(t).direct_response.status == 503


def test_object_listed_twice_is_reported_and_left_out() -> None:
    t = k8s.run(k8s.ingress(), k8s.ingress())

    assert t.hosts == ()
    [d] = decode.diags(t, Reason.DUPLICATE_OBJECT)
    assert (d.object.kind, d.object.name) == ("Ingress", "web")


def test_resource_backend_is_unsupported_and_answers_503() -> None:
    ing = k8s.ingress()
    ing["spec"]["rules"][0]["http"]["paths"][0]["backend"] = {
        "resource": {"apiGroup": "example.com", "kind": "Bucket", "name": "b"}
    }
    t = k8s.run(ing)

    assert decode.main_route(t).direct_response.status == 503
    assert decode.diags(t, Reason.UNSUPPORTED_BACKEND)


def test_invalid_host_leaves_that_rule_out() -> None:
    t = k8s.run(k8s.ingress(rules=[k8s.rule("Bad_Host"), k8s.rule("shop.example.com")]))

    assert t.hosts == ("shop.example.com",)
    [d] = decode.diags(t, Reason.INVALID_HOST)
    assert d.severity is Severity.ERROR
