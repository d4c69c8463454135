"""`ripple replay` from export files, no network: output per step, --at, --object, --explain,
progress, the export format, and the clear errors (unknown tenant, unreadable file, newer
schema, bad arguments)."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import pytest

from ripple_cli.__main__ import build_parser
from ripple_cli.replay import build_request, export
from ripple_cli.replay.command import Environment, Request, execute
from ripple_cli.replay.model import EXIT_ERROR, EXIT_OK, LogRecord, ReplayError, Window
from ripple_cli.replay.select import ObjectFilter, decode, parse_time
from ripple_common.envelope import Envelope, EventType
from ripple_common.sealing import Sealer
from ripple_translator.hosts import HostPolicy
from ripple_translator.translate import TranslateOptions
from tests.unit.translator_service.support import (
    cluster,
    deleted,
    event,
    ingress,
    ingress_class,
    service,
)

A = "team-a"
T0 = 1_764_000_000_000  # ms
KEY = Sealer(b"k" * 32)
SEALED = KEY.seal_value(b"-----BEGIN PRIVATE KEY-----", context=f"{A}/tls/tls.key")


def records(envelopes: list[Envelope]) -> list[LogRecord]:
    return [
        LogRecord(
            topic="ripple.events",
            partition=1,
            offset=10 + i,
            timestamp_ms=T0 + 1000 * i,
            key=env.key,
            value=env.to_bytes(),
        )
        for i, env in enumerate(envelopes)
    ]


def history() -> list[Envelope]:
    secret = {
        "kind": "Secret",
        "metadata": {"name": "tls", "namespace": A},
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": "Y2VydA==",
            "tls.key": SEALED,
        },
    }
    return [
        cluster(ingress_class()),
        event(A, service(A)),
        event(A, secret),
        event(A, ingress(A, "web", "web.a.test")),
        event(A, ingress(A, "api", "api.a.test")),
        event(A, ingress(A, "web", "www.a.test"), type_=EventType.MODIFIED),
        deleted(A, "Ingress", A, "api"),
    ]


@pytest.fixture
def history_file(tmp_path: Path) -> Path:
    path = tmp_path / "h.ndjson"
    with path.open("w") as out:
        assert export.write(records(history()), out) == len(history())
    return path


def env() -> Environment:
    return Environment(
        bootstrap="127.0.0.1:1",
        topic="ripple.events",
        redis_url="redis://127.0.0.1:1",
        prefix="ripple",
        options=TranslateOptions(),
        sealer=KEY,
        host_policy=HostPolicy(),
    )


def run(path: Path, *, tenants: tuple[str, ...] = (A,), **kwargs: Any) -> tuple[int, str, str]:
    request = Request(
        tenants=tenants, window=kwargs.pop("window", Window()), source_file=path, **kwargs
    )
    out, err = io.StringIO(), io.StringIO()
    try:
        code = execute(request, env(), out=out, err=err)
    except ReplayError as exc:
        return EXIT_ERROR, out.getvalue(), str(exc)
    return code, out.getvalue(), err.getvalue()


def test_steps_print_events_versions_and_redacted_diffs(history_file: Path) -> None:
    code, out, _ = run(history_file)
    assert code == EXIT_OK
    lines = [line for line in out.splitlines() if line.startswith("@")]
    assert len(lines) == 7
    assert lines[3].startswith("@13 ")
    assert "ADDED Ingress team-a/web" in lines[3]
    assert "-> team-a v" in lines[3]
    assert "added srds team-a/scope/web.a.test" in out
    assert "removed srds team-a/scope/api.a.test" in out
    assert "PRIVATE KEY" not in out


def test_window_and_object_filter_limit_what_is_printed(history_file: Path) -> None:
    _, out, _ = run(
        history_file, window=Window(from_offset=14), objects=(ObjectFilter.parse("api"),)
    )
    lines = [line for line in out.splitlines() if line.startswith("@")]
    assert [line.split()[0] for line in lines] == ["@14", "@16"]
    _, out, _ = run(history_file, window=Window(until_ms=T0 + 3000))
    assert [line.split()[0] for line in out.splitlines() if line.startswith("@")][-1] == "@13"


def test_at_prints_the_whole_config_at_that_time(history_file: Path) -> None:
    code, out, _ = run(history_file, at_ms=T0 + 4500)
    assert code == EXIT_OK
    assert "--- srds team-a/scope/web.a.test" in out
    assert "--- srds team-a/scope/api.a.test" in out
    assert "www.a.test" not in out
    assert "--- sds team-a/team-a/tls" not in out or "redacted" in out


def test_explain_lists_the_events_that_shaped_a_host(history_file: Path) -> None:
    _, out, _ = run(history_file, explain="www.a.test")
    heads = [line for line in out.splitlines() if line.startswith("@")]
    assert len(heads) == 1
    assert "MODIFIED Ingress team-a/web" in heads[0]
    _, out, _ = run(history_file, explain="api.a.test")
    heads = [line.split()[0] for line in out.splitlines() if line.startswith("@")]
    assert heads == ["@14", "@16"]


def test_progress_goes_to_stderr(history_file: Path) -> None:
    _, _, err = run(history_file, progress_every_s=0.0, quiet=True)
    assert "replay: ripple.events/1: 7/7 records (100%)" in err


def test_export_keeps_secrets_sealed_and_round_trips(history_file: Path) -> None:
    text = history_file.read_text()
    assert "ripple:aesgcm:v1:" in text
    assert "PRIVATE KEY" not in text
    back = list(export.read(history_file))
    assert back == records(history())
    assert [decode(r) for r in back] == history()


def test_errors_are_clear(tmp_path: Path, history_file: Path) -> None:
    code, _, err = run(history_file, tenants=("nobody",))
    assert code == EXIT_ERROR
    assert "unknown tenant 'nobody'" in err
    code, _, err = run(tmp_path / "missing.ndjson")
    assert code == EXIT_ERROR
    assert "cannot read" in err
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\xff\xfe not text")
    code, _, err = run(garbage)
    assert code == EXIT_ERROR
    assert "not a text file" in err
    notjson = tmp_path / "notjson"
    notjson.write_text("hello\n")
    code, _, err = run(notjson)
    assert code == EXIT_ERROR
    assert "notjson:1: not a JSON line" in err
    newer = tmp_path / "newer.ndjson"
    line = json.loads(export.encode_line(records(history())[1]) or "")
    line["envelope"]["schema"] = 3
    newer.write_text(history_file.read_text() + json.dumps(line) + "\n")
    code, _, err = run(newer)
    assert code == EXIT_ERROR
    assert "schema version 3, newer than this ripple understands" in err


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["replay", *argv])


def test_arguments() -> None:
    request = build_request(parse("a", "b", "a", "--since", "2026-11-25T14:03:00Z", "-q"))
    assert request.tenants == ("a", "b")
    assert request.quiet
    assert request.window.since_ms == parse_time("2026-11-25T14:03:00+00:00")
    with pytest.raises(ReplayError, match="no --until"):
        build_request(parse("a", "--compare", "--until", "1"))
    with pytest.raises(ReplayError, match="ISO 8601"):
        build_request(parse("a", "--at", "yesterday"))
    with pytest.raises(ReplayError, match="Kind/"):
        build_request(parse("a", "--object", "a/b/c/d"))


def test_a_window_starts_from_the_state_before_it(history_file: Path) -> None:
    _, out, _ = run(history_file, window=Window(from_offset=14))
    first = out.split("\n@15 ")[0]
    assert first.splitlines()[0].startswith("@14 ")
    assert "added srds team-a/scope/api.a.test" in first
    assert "added srds team-a/scope/web.a.test" not in first  # already there before @14
    _, out, _ = run(history_file, window=Window(from_offset=15), explain="api.a.test")
    assert [line.split()[0] for line in out.splitlines() if line.startswith("@")] == ["@16"]
