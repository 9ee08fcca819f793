"""Envelopes and errors of the event log.

Envelopes are slotted frozen dataclasses rather than pydantic models: a
catch-up read builds one per row and must stay close to a raw scan's speed.
Domain messages (the event payloads) are the pydantic models.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple


class Position(NamedTuple):
    """A reader's place in the global log: events sort by (transaction_id, global_position)."""

    transaction_id: int
    global_position: int

    def __str__(self) -> str:
        return f"{self.transaction_id}:{self.global_position}"

    @classmethod
    def parse(cls, text: str) -> Position:
        tx, _, pos = text.partition(":")
        return cls(int(tx), int(pos))


START = Position(0, 0)


class ExpectedVersion(enum.Enum):
    ANY = "any"
    NO_STREAM = "no_stream"
    STREAM_EXISTS = "stream_exists"


Expected = int | ExpectedVersion
ANY = ExpectedVersion.ANY
NO_STREAM = ExpectedVersion.NO_STREAM
STREAM_EXISTS = ExpectedVersion.STREAM_EXISTS


@dataclass(frozen=True, slots=True)
class NewEvent:
    event_type: str
    data: dict[str, Any]
    schema_version: int = 1
    metadata: dict[str, Any] = field(default_factory=dict)
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    global_position: int
    transaction_id: int
    stream_id: str
    stream_version: int
    event_id: uuid.UUID
    event_type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime

    @property
    def position(self) -> Position:
        return Position(self.transaction_id, self.global_position)


@dataclass(frozen=True, slots=True)
class AppendResult:
    stream_id: str
    stream_version: int
    """The stream's version after the append (its last event's version)."""
    events: tuple[RecordedEvent, ...]
    duplicate: bool = False
    """True when this very batch was appended before: nothing new was written."""


class EventLogError(Exception):
    pass


class ConcurrencyError(EventLogError):
    """The stream is not at the expected version: reload it and decide again."""

    def __init__(self, stream_id: str, expected: Expected, actual: int) -> None:
        shown = expected.value if isinstance(expected, ExpectedVersion) else expected
        super().__init__(f"stream {stream_id!r} is at version {actual}, expected {shown}")
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class DuplicateEventError(EventLogError):
    """Some, but not all, event ids of a batch were appended before, or elsewhere."""


class RetryableAppendError(EventLogError):
    """The append must be retried in a new transaction (nothing was written)."""


def expected_matches(expected: Expected, actual: int) -> bool:
    if expected is ExpectedVersion.ANY:
        return True
    if expected is ExpectedVersion.NO_STREAM:
        return actual == 0
    if expected is ExpectedVersion.STREAM_EXISTS:
        return actual > 0
    return actual == expected


def stream_type(stream_id: str) -> str:
    return stream_id.split("-", 1)[0]
