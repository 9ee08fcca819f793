"""The in-memory twin of the event log; it passes the same contract suite."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

from ktrdr.eventlog.model import (
    START,
    AppendResult,
    ConcurrencyError,
    DuplicateEventError,
    Expected,
    NewEvent,
    Position,
    RecordedEvent,
    expected_matches,
)
from ktrdr.eventlog.port import EventLog


class InMemoryEventLog(EventLog):
    def __init__(self) -> None:
        self._events: list[RecordedEvent] = []
        self._streams: dict[str, list[RecordedEvent]] = {}
        self._by_id: dict[object, RecordedEvent] = {}
        self._transactions = itertools.count(1)
        self._changed = asyncio.Condition()

    async def append(
        self, stream_id: str, events: Sequence[NewEvent], expected_version: Expected
    ) -> AppendResult:
        stream = self._streams.get(stream_id, [])
        if not events:
            return AppendResult(stream_id, len(stream), ())
        known = [self._by_id.get(e.event_id) for e in events]
        if any(k is not None for k in known):
            if any(k is None or k.stream_id != stream_id for k in known):
                raise DuplicateEventError("some event ids of this batch were appended elsewhere")
            found = tuple(k for k in known if k is not None)
            return AppendResult(stream_id, found[-1].stream_version, found, duplicate=True)
        if not expected_matches(expected_version, len(stream)):
            raise ConcurrencyError(stream_id, expected_version, len(stream))
        tx = next(self._transactions)
        now = datetime.now(UTC)
        recorded = tuple(
            RecordedEvent(
                global_position=len(self._events) + i + 1,
                transaction_id=tx,
                stream_id=stream_id,
                stream_version=len(stream) + i + 1,
                event_id=e.event_id,
                event_type=e.event_type,
                schema_version=e.schema_version,
                data=e.data,
                metadata=e.metadata,
                recorded_at=now,
            )
            for i, e in enumerate(events)
        )
        self._events.extend(recorded)
        self._streams[stream_id] = [*stream, *recorded]
        self._by_id.update((r.event_id, r) for r in recorded)
        async with self._changed:
            self._changed.notify_all()
        return AppendResult(stream_id, recorded[-1].stream_version, recorded)

    async def read_stream(self, stream_id: str, from_version: int = 1) -> list[RecordedEvent]:
        return [e for e in self._streams.get(stream_id, []) if e.stream_version >= from_version]

    async def read_all(self, after: Position = START, limit: int = 1000) -> list[RecordedEvent]:
        return [e for e in self._events if e.position > after][:limit]

    async def subscribe(
        self, after: Position = START, *, poll_interval: float = 1.0, batch_size: int = 500
    ) -> AsyncIterator[RecordedEvent]:
        while True:
            batch = await self.read_all(after, batch_size)
            for event in batch:
                yield event
            if batch:
                after = batch[-1].position
            if len(batch) < batch_size:
                async with self._changed:
                    try:
                        await asyncio.wait_for(self._changed.wait(), poll_interval)
                    except TimeoutError:
                        pass
