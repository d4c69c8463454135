from __future__ import annotations

import pytest
from envoy.config.listener.v3 import listener_pb2
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import ValidationError

from ripple_common.resources import TypeUrl
from ripple_common.store_contract import ChangeEntry
from ripple_xds.app import ListenAddress, gateway_resources, parse_listen
from ripple_xds.gateway import HTTP_LISTENER
from ripple_xds.service import applied_tracer
from ripple_xds.settings import XdsSettings
from ripple_xds.snapshot import CacheChange


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:18000", ListenAddress("127.0.0.1", 18000)),
        ("0.0.0.0:0", ListenAddress("0.0.0.0", 0)),
        ("[::]:18000", ListenAddress("[::]", 18000)),
    ],
)
def test_listen_address_is_parsed(value: str, expected: ListenAddress) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize("value", ["18000", ":18000", "host:port", "h:70000"])
def test_bad_listen_address_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="listen"):
        parse_listen(value)


def test_settings_names_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIPPLE_XDS_REDIS_PREFIX", "p1")
    monkeypatch.setenv("RIPPLE_XDS_GATEWAY_HTTP_ADDRESS", "127.0.0.1")
    monkeypatch.setenv("RIPPLE_XDS_GATEWAY_HTTP_PORT", "10081")
    monkeypatch.setenv("RIPPLE_XDS_HEALTH_PORT", "9901")
    settings = XdsSettings()
    assert (settings.redis_prefix, settings.gateway_http_address) == ("p1", "127.0.0.1")
    assert (settings.gateway_http_port, settings.health_port) == (10081, 9901)
    assert settings.listen == "127.0.0.1:18000"
    assert settings.require_node_id is True


@pytest.mark.parametrize(
    ("name", "value"),
    [("block_ms", "5000"), ("block_ms", "0"), ("gateway_http_port", "0"), ("read_count", "0")],
)
def test_unsafe_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(f"RIPPLE_XDS_{name.upper()}", value)
    with pytest.raises(ValidationError):
        XdsSettings()


def test_gateway_listener_binds_where_the_settings_say() -> None:
    settings = XdsSettings(gateway_http_address="127.0.0.1", gateway_http_port=12345)
    (resource,) = gateway_resources(settings)
    assert (resource.type_url, resource.name) == (TypeUrl.LISTENER, HTTP_LISTENER)
    address = listener_pb2.Listener.FromString(resource.body).address.socket_address
    assert (address.address, address.port_value) == ("127.0.0.1", 12345)


def test_applied_change_is_a_span_in_the_translations_trace() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    entry = ChangeEntry(
        tenant="ta",
        version=3,
        upserts={TypeUrl.ROUTE: ("ta/routes",)},
        trace={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
    )
    change = CacheChange(names={TypeUrl.ROUTE: frozenset({"ta/routes"})}, revisions={})
    applied_tracer(tracer)(entry, change)
    (span,) = exporter.get_finished_spans()
    assert span.name == "xds.apply"
    assert format(span.context.trace_id, "032x") == trace_id
    assert span.attributes is not None
    assert dict(span.attributes) == {
        "ripple.tenant": "ta",
        "ripple.version": 3,
        "ripple.full": False,
        "ripple.resources_changed": 1,
        "ripple.resources": ("ta/routes",),
    }
    assert isinstance(tracer, trace.Tracer)
