"""OpenTelemetry setup and W3C trace-context propagation through Kafka headers and the
Redis change stream."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

KafkaHeaders = Sequence[tuple[str, bytes]]


def init_tracing(
    *, service: str, otlp_endpoint: str | None, exporter: SpanExporter | None = None
) -> TracerProvider:
    """Create the process's tracer provider. With no endpoint and no exporter, spans are
    created (so ids reach the logs) but not exported."""
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    if exporter is None and otlp_endpoint:
        exporter = OTLPSpanExporter(endpoint=otlp_endpoint, insecure=True)
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
