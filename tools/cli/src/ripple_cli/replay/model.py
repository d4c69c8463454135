"""Values shared by the replay modules: a record read from the event log (Kafka or a file),
the selection an operator asked for, and the errors the command reports (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# Exit codes of `ripple replay`.
EXIT_OK: Final = 0
EXIT_DIVERGED: Final = 1
EXIT_ERROR: Final = 2


class ReplayError(Exception):
    """A condition the operator must fix (unknown tenant, time before retention, unreadable
    file, newer envelope schema, ...): printed as one line, exit code EXIT_ERROR."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LogRecord:
    """One message of the events topic: where it sits and its raw envelope bytes."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    """Which steps are printed: offsets [from_offset, to_offset] and times [since_ms,
    until_ms] (inclusive, None = open). The state is always rebuilt from the start of the log;
    reading stops after `to_offset` / `until_ms`."""

    from_offset: int | None = None
    to_offset: int | None = None
    since_ms: int | None = None
    until_ms: int | None = None

    def shows(self, record: LogRecord) -> bool:
        return (
            (self.from_offset is None or record.offset >= self.from_offset)
            and (self.since_ms is None or record.timestamp_ms >= self.since_ms)
            and not self.past(record)
        )

    def past(self, record: LogRecord) -> bool:
        """The record lies after the window: reading may stop."""
        return (self.to_offset is not None and record.offset > self.to_offset) or (
            self.until_ms is not None and record.timestamp_ms > self.until_ms
        )
