"""The Redis contract's pure parts: key names, change entries, script replies."""

from __future__ import annotations

import pytest

from ripple_common.resources import Resource, TypeUrl
from ripple_common.store_contract import (
    TYPE_ORDER,
    ChangeEntry,
    ContractError,
    KafkaOffset,
    KeyLayout,
    fetch_names_args,
    parse_fetch_names,
    parse_tenant_state,
)

CDS, RDS, SDS = TypeUrl.CLUSTER, TypeUrl.ROUTE, TypeUrl.SECRET


def hash_tag(key: str) -> str:
    """The part of a key Redis Cluster hashes (the first {...} with content)."""
    start = key.index("{")
    return key[start + 1 : key.index("}", start)]


def test_every_tenant_key_carries_the_tenant_hash_tag() -> None:
    layout = KeyLayout()
    keys = layout.tenant_keys("shop-a")
    assert keys[0] == "ripple:{shop-a}:meta"
    assert keys[1:] == [f"ripple:{{shop-a}}:res:{t.short}" for t in TYPE_ORDER]
    assert {hash_tag(k) for k in keys} == {"shop-a"}
    assert layout.resources("shop-a", RDS) == "ripple:{shop-a}:res:rds"


def test_global_keys_and_host_keys() -> None:
    layout = KeyLayout(prefix="it-1")
    assert (layout.changes, layout.tenants) == ("it-1.changes", "it-1.tenants")
    assert layout.host("*.example.com") == "it-1:host:{*.example.com}"
    assert layout.meta("t") == "it-1:{t}:meta"


@pytest.mark.parametrize("bad", ["", "a{b", "a}b"])
def test_key_parts_with_braces_are_rejected(bad: str) -> None:
    with pytest.raises(ContractError):
        KeyLayout().meta(bad)
    with pytest.raises(ContractError):
        KeyLayout(prefix=bad)


def test_change_entry_round_trip_with_trace_fields() -> None:
    entry = ChangeEntry(
        tenant="t1",
        version=7,
        upserts={CDS: ("c1", "c2"), RDS: ("r",)},
        removals={SDS: ("s",)},
        trace={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"},
    )
    fields = entry.encode()
    assert fields["version"] == "7"
    assert fields["up"] == '{"cds":["c1","c2"],"rds":["r"]}'
    raw = {k.encode(): v.encode() for k, v in fields.items()}
    assert ChangeEntry.decode(raw) == entry
    assert ChangeEntry.decode(fields) == entry
    assert entry.names() == {CDS: {"c1", "c2"}, RDS: {"r"}, SDS: {"s"}}


def test_full_entry_round_trip() -> None:
    entry = ChangeEntry(tenant="t1", version=3, full=True)
    assert entry.encode()["full"] == "1"
    assert ChangeEntry.decode(entry.encode()) == entry


@pytest.mark.parametrize(
    "fields",
    [
        {"tenant": "t", "version": "1"},  # no schema
        {"schema": "9", "tenant": "t", "version": "1"},
        {"schema": "1", "version": "1"},
        {"schema": "1", "tenant": "t", "version": "x"},
        {"schema": "1", "tenant": "t", "version": "1", "up": "not json"},
        {"schema": "1", "tenant": "t", "version": "1", "up": '{"zzz": ["a"]}'},
        {"schema": "1", "tenant": "t", "version": "1", "rm": '{"cds": "a"}'},
        {"schema": "1", "tenant": "t", "version": "1", "rm": "[]"},
    ],
)
def test_malformed_entries_are_rejected(fields: dict[str, str]) -> None:
    with pytest.raises(ContractError):
        ChangeEntry.decode(fields)


def test_trace_field_may_not_shadow_an_entry_field() -> None:
    with pytest.raises(ContractError):
        ChangeEntry(tenant="t", version=1, trace={"tenant": "x"}).encode()


def test_parse_tenant_state() -> None:
    per_type: list[object] = [[] for _ in TYPE_ORDER]
    per_type[TYPE_ORDER.index(CDS)] = [b"c1", b"body1", b"c2", b"body2"]
    reply: list[object] = [b"4", b"ripple.events", b"3", b"120", *per_type]
    state = parse_tenant_state("t", reply)
    assert state.version == 4
    assert state.offset == KafkaOffset(topic="ripple.events", partition=3, offset=120)
    assert state.resources == (Resource(CDS, "c1", b"body1"), Resource(CDS, "c2", b"body2"))


def test_parse_tenant_state_of_a_tenant_never_written() -> None:
    state = parse_tenant_state("t", [b"0", b"", b"", b"", *([] for _ in TYPE_ORDER)])
    assert (state.version, state.offset, state.resources) == (0, None, ())


def test_parse_tenant_state_rejects_wrong_shapes() -> None:
    with pytest.raises(ContractError):
        parse_tenant_state("t", [b"0"])
    with pytest.raises(ContractError):
        parse_tenant_state("t", [b"0", b"", b"", b"", [b"odd"], *([] for _ in TYPE_ORDER[1:])])


def test_fetch_names_args_and_reply() -> None:
    names = {RDS: ["r1", "r2"], CDS: ["c"]}
    args = fetch_names_args(names)
    expected: list[str] = []
    for t in TYPE_ORDER:
        expected += [str(len(names.get(t, []))), *names.get(t, [])]
    assert args == expected
    values: list[object] = [[] for _ in TYPE_ORDER]
    values[TYPE_ORDER.index(RDS)] = [b"R1", None]
    values[TYPE_ORDER.index(CDS)] = [b"C"]
    version, present, absent = parse_fetch_names(names, [b"9", *values])
    assert version == 9
    assert sorted(present, key=lambda r: r.name) == [
        Resource(CDS, "c", b"C"),
        Resource(RDS, "r1", b"R1"),
    ]
    assert absent == [(RDS, "r2")]
    with pytest.raises(ContractError):
        parse_fetch_names(names, [b"9", *([] for _ in TYPE_ORDER)])


def test_every_key_of_a_tenant_shares_its_slot_and_a_partition_has_its_own() -> None:
    from redis.crc import key_slot

    layout = KeyLayout(prefix="p")
    tenant = [
        *layout.tenant_keys("t"),
        layout.inputs("t"),
        layout.host_states("t"),
    ]
    assert {key_slot(k.encode()) for k in tenant} == {key_slot(b"{t}")}
    host = layout.host_keys("h.example")
    assert {key_slot(k.encode()) for k in host} == {key_slot(b"{h.example}")}
    partition = [layout.partition("e", 3), layout.partition_tenants("e", 3)]
    assert len({key_slot(k.encode()) for k in partition}) == 1
    assert layout.partition("e", 3) == "p:{_p.e.3}:partition"
    assert layout.host_notices == "p.hostevents"
