"""Jaeger: a span exported over OTLP/gRPC comes back from the query API."""

from __future__ import annotations

import json
import urllib.request
import uuid
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.conftest import StackEnv
from tests.waiting import eventually_blocking

HTTP_NOT_FOUND = 404


def test_span_round_trip_through_jaeger(stack: StackEnv) -> None:
    service = f"it-{uuid.uuid4().hex[:8]}"
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    exporter = OTLPSpanExporter(endpoint=stack["RIPPLE_OTLP_ENDPOINT"], insecure=True)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("it").start_as_current_span("probe") as span:
        span.set_attribute("ripple.tenant", "t1")
        trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()

    url = f"{stack['RIPPLE_JAEGER_QUERY_URL']}/api/traces/{trace_id}"

    def stored() -> list[dict[str, Any]] | None:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                found: list[dict[str, Any]] = json.load(resp)["data"]
        except urllib.error.HTTPError as exc:
            if exc.code != HTTP_NOT_FOUND:
                raise
            return None  # not stored yet
        return found

    data = eventually_blocking(stored, within_s=20, every_s=0.2, what=f"trace {trace_id} in Jaeger")
    spans = data[0]["spans"]
    assert [s["operationName"] for s in spans] == ["probe"]
    assert data[0]["processes"][spans[0]["processID"]]["serviceName"] == service
    assert {"key": "ripple.tenant", "type": "string", "value": "t1"} in spans[0]["tags"]
