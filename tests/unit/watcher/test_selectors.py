from __future__ import annotations

import pytest

from ripple_watcher.selectors import (
    LabelSelector,
    Operator,
    Requirement,
    SelectorError,
    parse_selector,
)


def _ops(text: str) -> list[tuple[str, Operator, frozenset[str]]]:
    return [(r.key, r.operator, r.values) for r in parse_selector(text).requirements]


def test_equality_forms() -> None:
    assert _ops("ripple.io/managed=true, env==prod,tier!=test") == [
        ("ripple.io/managed", Operator.EQUALS, frozenset({"true"})),
        ("env", Operator.EQUALS, frozenset({"prod"})),
        ("tier", Operator.NOT_EQUALS, frozenset({"test"})),
    ]


def test_set_forms_and_existence() -> None:
    assert _ops("env in (prod, staging),tier notin (test),managed,!legacy") == [
        ("env", Operator.IN, frozenset({"prod", "staging"})),
        ("tier", Operator.NOT_IN, frozenset({"test"})),
        ("managed", Operator.EXISTS, frozenset()),
        ("legacy", Operator.DOES_NOT_EXIST, frozenset()),
    ]


def test_empty_value_is_a_value() -> None:
    assert _ops("a=,b") == [
        ("a", Operator.EQUALS, frozenset({""})),
        ("b", Operator.EXISTS, frozenset()),
    ]


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("", {}, True),
        ("managed=true", {"managed": "true"}, True),
        ("managed=true", {"managed": "false"}, False),
        ("managed=true", {}, False),
        ("env!=dev", {}, True),
        ("env!=dev", {"env": "dev"}, False),
        ("env in (prod,staging)", {"env": "staging"}, True),
        ("env in (prod,staging)", {"env": "dev"}, False),
        ("env notin (dev)", {}, True),
        ("env notin (dev)", {"env": "dev"}, False),
        ("managed", {"managed": ""}, True),
        ("!legacy", {"legacy": "x"}, False),
        ("env in (prod),managed=true", {"env": "prod"}, False),
        ("env in (prod),managed=true", {"env": "prod", "managed": "true"}, True),
    ],
)
def test_matching(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_selector(text).matches(labels) is expected


def test_absent_or_malformed_labels_are_no_labels() -> None:
    selector = parse_selector("!legacy")
    assert selector.matches(None) is True
    assert selector.matches(["legacy"]) is True


def test_empty_selector_is_empty() -> None:
    assert parse_selector("  ").empty
    assert LabelSelector(()).matches({"a": "b"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("env in ()", "at least one value"),
        ("env in (a", "missing '\\)'"),
        ("env in a", "needs a '\\('"),
        ("env in (a b)", "expected ',' or '\\)'"),
        ("a=b c=d", "expected ',' between"),
        ("a=b,", "trailing ','"),
        ("=b", "expected a label key"),
        ("!", "expected a label key"),
        ("a b", "expected =, ==, !=, in, notin"),
        ("a>1", "'>' is not supported"),
        ("-bad=x", "not a valid label key"),
        ("Bad.Prefix/x=y", "not a valid label key"),
        ("a=-bad", "not a valid label value"),
        ("a=" + "x" * 64, "not a valid label value"),
        ("a==(", "not a valid label value"),
    ],
)
def test_bad_syntax_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(SelectorError, match=message):
        parse_selector(text)


def test_requirement_is_a_value() -> None:
    r = Requirement(key="a", operator=Operator.IN, values=frozenset({"x"}))
    assert r == Requirement(key="a", operator=Operator.IN, values=frozenset({"x"}))


def test_trailing_comma_in_a_set_is_the_empty_value_as_in_kubernetes() -> None:
    assert _ops("env in (prod,)") == [("env", Operator.IN, frozenset({"prod", ""}))]
