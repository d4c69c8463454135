"""The tenant owning a resource name (the translator names resources `<tenant>/...`): what a
NACK reports as the offending tenant."""

from __future__ import annotations

from ripple_xds.tenants import tenant_of, tenants_of


def test_tenant_is_the_text_before_the_first_slash() -> None:
    assert tenant_of("t1/routes") == "t1"
    assert tenant_of("t1/scope/a.example.com") == "t1"
    assert tenant_of("t1/ns/web:80~h2") == "t1"


def test_gateway_names_have_no_tenant() -> None:
    assert tenant_of("ripple-http") is None
    assert tenant_of("/routes") is None


def test_tenants_of_names_are_sorted_and_unique() -> None:
    names = ["t2/routes", "t1/ns/web:80", "ripple-http", "t1/routes"]
    assert tenants_of(names) == ("t1", "t2")
    assert tenants_of([]) == ()
