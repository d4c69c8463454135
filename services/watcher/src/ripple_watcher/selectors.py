"""Kubernetes label selectors (pure): the equality- and set-based string syntax.

    ripple.io/managed=true          key=value (also key==value)
    env!=dev                        key!=value (also true when the key is absent)
    env in (prod,staging)           key in (values)
    tier notin (test)               key notin (values) (also true when the key is absent)
    ripple.io/managed               key exists
    !legacy                         key does not exist

Requirements are separated by commas and must all hold; the empty selector matches
everything. `<`/`>` (gt/lt) are not supported here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

# Label key: [prefix/]name; prefix a DNS subdomain, name 1-63 chars.
_NAME: Final = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_PREFIX: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_VALUE: Final = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
# Tokens: punctuation, or a run of characters that can make up a key or a value.
_TOKEN: Final = re.compile(r"\s*(==|!=|=|!|\(|\)|,|<|>|[^\s=!(),<>]+)")


class SelectorError(ValueError):
    """A label selector that does not parse."""


class Operator(StrEnum):
    EQUALS = "="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"


@dataclass(frozen=True, slots=True, kw_only=True)
class Requirement:
    key: str
    operator: Operator
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        match self.operator:
            case Operator.EXISTS:
                return present
            case Operator.DOES_NOT_EXIST:
                return not present
            case Operator.EQUALS | Operator.IN:
                return present and value in self.values
            case Operator.NOT_EQUALS | Operator.NOT_IN:
                return not present or value not in self.values


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A parsed selector: every requirement must hold (none: matches everything)."""

    requirements: tuple[Requirement, ...]
    text: str = ""

    def matches(self, labels: object) -> bool:
        """`labels` as found in an object's metadata (absent or malformed: no labels)."""
        found: dict[str, str] = {}
        if isinstance(labels, Mapping):
            found = {k: v for k, v in labels.items() if isinstance(k, str) and isinstance(v, str)}
        return all(r.matches(found) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


def parse_selector(text: str) -> LabelSelector:
    """Parse `text`; SelectorError (a ValueError) says what is wrong and where."""
    tokens = _tokenize(text)
    requirements: list[Requirement] = []
    pos = 0
    while pos < len(tokens):
        requirement, pos = _requirement(tokens, pos, text)
        requirements.append(requirement)
        if pos < len(tokens):
            if tokens[pos] != ",":
                raise SelectorError(
                    f"label selector {text!r}: expected ',' between requirements, "
                    f"found {tokens[pos]!r}"
                )
            pos += 1
            if pos == len(tokens):
                raise SelectorError(f"label selector {text!r}: trailing ','")
    return LabelSelector(tuple(requirements), text.strip())


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    stripped = text.rstrip()
    while pos < len(stripped):
        m = _TOKEN.match(stripped, pos)
        if m is None:  # pragma: no cover - the pattern matches any non-blank character
            raise SelectorError(f"label selector {text!r}: cannot read from position {pos}")
        tokens.append(m.group(1))
        pos = m.end()
    return tokens


def _requirement(tokens: list[str], pos: int, text: str) -> tuple[Requirement, int]:
    def at(i: int) -> str | None:
        return tokens[i] if i < len(tokens) else None

    if at(pos) == "!":
        key = _key(at(pos + 1), text)
        return Requirement(key=key, operator=Operator.DOES_NOT_EXIST), pos + 2
    key = _key(at(pos), text)
    op = at(pos + 1)
    if op is None or op == ",":
        return Requirement(key=key, operator=Operator.EXISTS), pos + 1
    if op in ("=", "==", "!="):
        value = at(pos + 2)
        if value is None or value == ",":  # key= (the empty value)
            value, after = "", pos + 2
        else:
            after = pos + 3
        operator = Operator.NOT_EQUALS if op == "!=" else Operator.EQUALS
        return Requirement(key=key, operator=operator, values=_values([value], text)), after
    if op in ("in", "notin"):
        values, after = _value_set(tokens, pos + 2, text, key=key, op=op)
        operator = Operator.IN if op == "in" else Operator.NOT_IN
        return Requirement(key=key, operator=operator, values=values), after
    if op in ("<", ">"):
        raise SelectorError(f"label selector {text!r}: '{op}' is not supported")
    raise SelectorError(
        f"label selector {text!r}: after key {key!r} expected =, ==, !=, in, notin or ',', "
        f"found {op!r}"
    )


def _value_set(
    tokens: list[str], pos: int, text: str, *, key: str, op: str
) -> tuple[frozenset[str], int]:
    if pos >= len(tokens) or tokens[pos] != "(":
        raise SelectorError(f"label selector {text!r}: '{key} {op}' needs a '(' value list")
    pos += 1
    values: list[str] = []
    expect_value = True
    while True:
        if pos >= len(tokens):
            raise SelectorError(f"label selector {text!r}: missing ')' after '{key} {op} ('")
        token = tokens[pos]
        pos += 1
        if token == ")":
            if expect_value and values:  # "(a,)": a trailing empty value, as Kubernetes reads it
                values.append("")
            break
        if token == ",":
            if expect_value:
                values.append("")
            expect_value = True
            continue
        if not expect_value:
            raise SelectorError(f"label selector {text!r}: expected ',' or ')', found {token!r}")
        values.append(token)
        expect_value = False
    if not values:
        raise SelectorError(f"label selector {text!r}: '{key} {op} ()' needs at least one value")
    return _values(values, text), pos


def _key(token: str | None, text: str) -> str:
    if token is None or token in ("=", "==", "!=", "!", "(", ")", ",", "<", ">"):
        raise SelectorError(f"label selector {text!r}: expected a label key, found {token!r}")
    prefix, slash, name = token.rpartition("/")
    if (
        not _NAME.match(name)
        or (slash and (not prefix or len(prefix) > 253 or not _PREFIX.match(prefix)))
        or token in ("in", "notin")
    ):
        raise SelectorError(f"label selector {text!r}: {token!r} is not a valid label key")
    return token


def _values(values: list[str], text: str) -> frozenset[str]:
    for value in values:
        if value in ("=", "==", "!=", "!", "(", ")", "<", ">") or not _VALUE.match(value):
            raise SelectorError(f"label selector {text!r}: {value!r} is not a valid label value")
    return frozenset(values)
