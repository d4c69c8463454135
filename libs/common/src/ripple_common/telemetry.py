"""OpenTelemetry setup and W3C trace-context propagation through Kafka headers and the
Redis change stream."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

KafkaHeaders = Sequence[tuple[str, bytes]]
# The standard variables naming an OTLP trace endpoint (the exporter reads them, and the rest
# of OTEL_EXPORTER_OTLP_*: headers, certificate, insecure, compression, timeout).
OTEL_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def otlp_exporter(
    otlp_endpoint: str | None, environ: Mapping[str, str] = os.environ
) -> OTLPSpanExporter | None:
    """The OTLP/gRPC span exporter to use: the service's own endpoint setting
    (RIPPLE_<SVC>_OTLP_ENDPOINT; plaintext unless it is https://), else the standard
    OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT with the rest of the OTEL_EXPORTER_OTLP_* variables,
    else None (spans are not exported)."""
    if otlp_endpoint:
        return OTLPSpanExporter(
            endpoint=otlp_endpoint, insecure=not otlp_endpoint.startswith("https://")
        )
    if any(environ.get(var) for var in OTEL_ENDPOINT_VARS):
        return OTLPSpanExporter()
    return None


def init_tracing(
    *, service: str, otlp_endpoint: str | None, exporter: SpanExporter | None = None
) -> TracerProvider:
    """Create the process's tracer provider. With no endpoint and no exporter, spans are
    created (so ids reach the logs) but not exported. The standard OTEL_RESOURCE_ATTRIBUTES
    and OTEL_TRACES_SAMPLER(_ARG) apply; the service name is ripple's own."""
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    if exporter is None:
        exporter = otlp_exporter(otlp_endpoint)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def context_to_headers(ctx: otel_context.Context | None = None) -> list[tuple[str, bytes]]:
    """W3C `traceparent` (and `tracestate`) of `ctx` (default: current) as Kafka headers."""
    carrier: dict[str, str] = {}
    inject(carrier, context=ctx)
    return [(k, v.encode()) for k, v in sorted(carrier.items())]


def context_from_headers(headers: Iterable[tuple[str, bytes]] | None) -> otel_context.Context:
    """The remote trace context carried by Kafka headers (empty context when absent)."""
    carrier = {k: v.decode(errors="replace") for k, v in headers or ()}
    return extract(carrier)


def context_to_fields(ctx: otel_context.Context | None = None) -> dict[str, str]:
    """Trace context as plain string fields (for Redis stream entries)."""
    carrier: dict[str, str] = {}
    inject(carrier, context=ctx)
    return carrier


def context_from_fields(fields: Mapping[str, str]) -> otel_context.Context:
    return extract(dict(fields))
