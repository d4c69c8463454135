"""Export files: the selected history as NDJSON, one record per line, so a bug report can
carry the history that reproduces it and be replayed on a machine with no Kafka.

Each line is one Kafka record of the events topic: where it was (topic, partition, offset,
timestamp) and the envelope as the watcher wrote it, untouched (TLS private keys stay sealed:
the file is as sensitive as the topic, no more):

    {"envelope":{...},"key":"team-a","offset":17,"partition":1,"timestampMs":1764082980000,
     "topic":"ripple.events"}
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from ripple_cli.replay.model import LogRecord, ReplayError

_FIELDS = ("topic", "partition", "offset", "timestampMs", "envelope")
_HEAD = '{"envelope":'
_KEY = ',"key":'


def encode_line(record: LogRecord) -> str | None:
    """The record as one NDJSON line; None for a message that is not JSON (no envelope)."""
    try:
        envelope = json.loads(record.value)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    doc = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestampMs": record.timestamp_ms,
        "key": None if record.key is None else record.key.decode(errors="replace"),
        "envelope": envelope,
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


def decode_line(line: str, *, where: str) -> LogRecord:
    fast = _split_line(line)
    if fast is not None:  # as `encode_line` writes it: parse the small tail only
        head, text = fast
        return _record(head, text.encode(), where=where)
    try:
        doc: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ReplayError(f"{where}: not a JSON line: {exc}") from None
    if not isinstance(doc, dict) or any(f not in doc for f in _FIELDS):
        raise ReplayError(f"{where}: not a replay export line (want fields {', '.join(_FIELDS)})")
    envelope = json.dumps(doc["envelope"], separators=(",", ":"), sort_keys=True).encode()
    return _record(doc, envelope, where=where)


def _split_line(line: str) -> tuple[dict[str, Any], str] | None:
    """A line written by `encode_line` (keys sorted: the envelope first, then key, offset,
    partition, timestampMs, topic, none of which can hold `,"key":`) split into its small
    tail, parsed, and the envelope's text, untouched. None for any other line."""
    if not line.startswith(_HEAD):
        return None
    cut = line.rfind(_KEY)
    if cut < 0:
        return None
    try:
        tail = json.loads("{" + line[cut + 1 :])
    except json.JSONDecodeError:
        return None
    if not isinstance(tail, dict) or set(tail) != {
        "key",
        "offset",
        "partition",
        "timestampMs",
        "topic",
    }:
        return None
    return tail, line[len(_HEAD) : cut]


def _record(doc: dict[str, Any], envelope: bytes, *, where: str) -> LogRecord:
    try:
        key = doc.get("key")
        return LogRecord(
            topic=str(doc["topic"]),
            partition=int(doc["partition"]),
            offset=int(doc["offset"]),
            timestamp_ms=int(doc["timestampMs"]),
            key=None if key is None else str(key).encode(),
            value=envelope,
        )
    except (TypeError, ValueError) as exc:
        raise ReplayError(f"{where}: bad field: {exc}") from None


def write(records: Iterable[LogRecord], out: IO[str]) -> int:
    """Write the records; the number written."""
    count = 0
    for record in records:
        line = encode_line(record)
        if line is not None:
            out.write(line + "\n")
            count += 1
    return count


def read(path: Path) -> Iterator[LogRecord]:
    """The records of an export file, in file order."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise ReplayError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield decode_line(line, where=f"{path}:{number}")
        except UnicodeDecodeError as exc:
            raise ReplayError(f"{path} is not a text file: {exc}") from None
        except OSError as exc:
            raise ReplayError(f"cannot read {path}: {exc.strerror or exc}") from None
