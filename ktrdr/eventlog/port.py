"""The event log port: one behaviour, proved by one contract suite for every backend."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence

from ktrdr.eventlog.model import START, AppendResult, Expected, NewEvent, Position, RecordedEvent


class EventLog(abc.ABC):
    @abc.abstractmethod
    async def append(
        self, stream_id: str, events: Sequence[NewEvent], expected_version: Expected
    ) -> AppendResult:
        """Append a batch atomically when the stream is at ``expected_version``.

        Raises ConcurrencyError when it is not. Appending a batch whose event ids
        were all appended before to the same stream is a no-op returning the
        original result, so a retried request never appends twice.
        """

    @abc.abstractmethod
    async def read_stream(self, stream_id: str, from_version: int = 1) -> list[RecordedEvent]:
        """The stream's events with version >= from_version, oldest first."""

    @abc.abstractmethod
    async def read_all(self, after: Position = START, limit: int = 1000) -> list[RecordedEvent]:
        """Up to ``limit`` events after ``after`` in (transaction_id, global_position) order.

        Only events no still-running transaction can precede are returned, so a
        reader that resumes from the last position it saw never skips one.
        """

    @abc.abstractmethod
    def subscribe(
        self, after: Position = START, *, poll_interval: float = 1.0, batch_size: int = 500
    ) -> AsyncIterator[RecordedEvent]:
        """Every event after ``after``, in read_all order, then live ones as they commit."""
