"""The Postgres event log (append, read, subscribe) and its in-memory twin."""

from ktrdr.eventlog.memory import InMemoryEventLog
from ktrdr.eventlog.model import (
    ANY,
    NO_STREAM,
    START,
    STREAM_EXISTS,
    AppendResult,
    ConcurrencyError,
    DuplicateEventError,
    EventLogError,
    Expected,
    ExpectedVersion,
    NewEvent,
    Position,
    RecordedEvent,
    RetryableAppendError,
)
from ktrdr.eventlog.port import EventLog
from ktrdr.eventlog.postgres import PostgresEventLog, append_on

__all__ = [
    "ANY",
    "NO_STREAM",
    "START",
    "STREAM_EXISTS",
    "AppendResult",
    "ConcurrencyError",
    "DuplicateEventError",
    "EventLog",
    "EventLogError",
    "Expected",
    "ExpectedVersion",
    "InMemoryEventLog",
    "NewEvent",
    "Position",
    "PostgresEventLog",
    "RecordedEvent",
    "RetryableAppendError",
    "append_on",
]
