"""Logging, telemetry propagation and lifecycle of the shared library."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator

import pytest
import structlog
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from ripple_common.lifecycle import Lifecycle, run_until_stopped
from ripple_common.logs import configure_logging
from ripple_common.telemetry import context_from_headers, context_to_headers, otlp_exporter


@pytest.fixture
def _restore_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.mark.usefixtures("_restore_structlog")
def test_log_lines_are_json_with_trace_ids(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(service="unit", level="INFO", json=True)
    tracer = TracerProvider().get_tracer("unit")
    with tracer.start_as_current_span("work") as span:
        structlog.get_logger().info("handled", tenant="t1")
        want_trace = format(span.get_span_context().trace_id, "032x")
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["event"] == "handled"
    assert line["service"] == "unit"
    assert line["tenant"] == "t1"
    assert line["trace_id"] == want_trace


def test_unknown_log_level_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging(service="unit", level="LOUD")


def test_trace_context_survives_kafka_headers() -> None:
    tracer = TracerProvider().get_tracer("unit")
    with tracer.start_as_current_span("produce") as span:
        headers = context_to_headers()
        sent = span.get_span_context()
    assert [k for k, _ in headers] == ["traceparent"]
    received = trace.get_current_span(context_from_headers(headers)).get_span_context()
    assert (received.trace_id, received.span_id) == (sent.trace_id, sent.span_id)
    assert not trace.get_current_span(context_from_headers([])).get_span_context().is_valid


class _Resource:
    def __init__(self, name: str, journal: list[str]) -> None:
        self.name, self.journal = name, journal

    async def start(self) -> None:
        self.journal.append(f"start {self.name}")

    async def stop(self) -> None:
        self.journal.append(f"stop {self.name}")


async def test_sigterm_stops_and_closes_in_reverse_order() -> None:
    journal: list[str] = []

    async def serve(lc: Lifecycle) -> None:
        await lc.start(_Resource("kafka", journal), name="kafka")
        await lc.start(_Resource("redis", journal), name="redis")
        os.kill(os.getpid(), signal.SIGTERM)
        await lc.stopping.wait()
        journal.append("drained")

    await run_until_stopped(serve)
    assert journal == ["start kafka", "start redis", "drained", "stop redis", "stop kafka"]


def test_otlp_exporter_from_the_setting_or_the_standard_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert otlp_exporter(None, environ={}) is None
    assert otlp_exporter(None, environ={"OTEL_EXPORTER_OTLP_ENDPOINT": ""}) is None
    # The service's own setting wins; plaintext unless https.
    own = otlp_exporter("http://127.0.0.1:14317", environ={})
    assert own is not None
    assert own._endpoint == "127.0.0.1:14317"
    # The standard variables: the exporter reads them itself (here from the real environment).
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector.example:4317")
    std = otlp_exporter(None, environ=os.environ)
    assert std is not None
    assert std._endpoint == "collector.example:4317"
