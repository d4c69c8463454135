"""IngressClass selection: which Ingresses this controller serves."""

from __future__ import annotations

import pytest

from ripple_translator.translate import ClassPolicy, TranslateOptions
from tests.unit.translator import k8s

OURS = k8s.ingress_class("ripple")
THEIRS = k8s.ingress_class("other", controller="example.com/other")


def served(
    ingress: k8s.JsonDict,
    classes: list[k8s.JsonDict],
    policy: ClassPolicy | None = None,
) -> bool:
    options = TranslateOptions(classes=policy) if policy else None
    return k8s.run(ingress, classes=classes, options=options).hosts != ()


def legacy(value: str) -> k8s.JsonDict:
    return k8s.ingress(class_name=None, annotations={"kubernetes.io/ingress.class": value})


@pytest.mark.parametrize(
    ("ingress", "classes", "expected"),
    [
        (k8s.ingress(class_name="ripple"), [OURS, THEIRS], True),
        (k8s.ingress(class_name="other"), [OURS, THEIRS], False),
        (k8s.ingress(class_name="missing"), [OURS, THEIRS], False),
        (legacy("ripple"), [OURS], True),
        (legacy("other"), [OURS, THEIRS], False),
        (k8s.ingress(class_name=None), [OURS, THEIRS], False),
        (k8s.ingress(class_name=None), [k8s.ingress_class(default=True)], True),
        (
            k8s.ingress(class_name=None),
            [OURS, k8s.ingress_class("other", controller="x/y", default=True)],
            False,
        ),
    ],
    ids=[
        "class-name-ours",
        "class-name-theirs",
        "class-name-unknown",
        "legacy-annotation-ours",
        "legacy-annotation-theirs",
        "no-class-no-default",
        "no-class-default-ours",
        "no-class-default-theirs",
    ],
)
def test_class_selection(
    ingress: k8s.JsonDict, classes: list[k8s.JsonDict], expected: bool
) -> None:
    assert served(ingress, classes) is expected


def test_newest_default_class_decides() -> None:
    classes = [
        k8s.ingress_class("ripple", default=True, created="2024-01-01T00:00:00Z"),
        k8s.ingress_class("other", controller="x/y", default=True, created="2024-05-01T00:00:00Z"),
    ]

    assert not served(k8s.ingress(class_name=None), classes)


def test_legacy_annotation_wins_over_class_name() -> None:
    ing = k8s.ingress(class_name="ripple", annotations={"kubernetes.io/ingress.class": "other"})

    assert not served(ing, [OURS, THEIRS])


def test_watch_without_class_serves_classless_ingresses() -> None:
    policy = ClassPolicy(controllers=frozenset({k8s.CONTROLLER}), watch_without_class=True)

    assert served(k8s.ingress(class_name=None), [OURS], policy)


def test_watch_without_class_defers_to_a_foreign_default_class() -> None:
    policy = ClassPolicy(controllers=frozenset({k8s.CONTROLLER}), watch_without_class=True)
    theirs_default = k8s.ingress_class("other", controller="x/y", default=True)

    assert not served(k8s.ingress(class_name=None), [OURS, theirs_default], policy)


def test_extra_class_names_are_served_without_an_ingress_class_object() -> None:
    policy = ClassPolicy(extra_class_names=frozenset({"nginx"}))

    assert served(legacy("nginx"), [], policy)


def test_configured_controller_names_pick_the_classes() -> None:
    nginx_class = k8s.ingress_class("nginx", controller="k8s.io/ingress-nginx")
    policy = ClassPolicy(controllers=frozenset({"k8s.io/ingress-nginx"}))

    assert served(k8s.ingress(class_name="nginx"), [nginx_class], policy)


def test_ingresses_of_other_classes_get_no_diagnostics() -> None:
    t = k8s.run(
        k8s.ingress(class_name="other", annotations=k8s.nginx(auth_url="http://x")),
        classes=[OURS, THEIRS],
    )

    assert t.diagnostics == ()
