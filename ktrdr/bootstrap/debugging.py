"""What `ktrdr events …`, the as-of API and ``scripts/`` share: reading the event log.

Everything here goes through the event log's own API (``read_stream``,
``read_all``, ``subscribe``, ``append``); the pure parts (folding, rendering,
the export format) are in ``ktrdr.projections.timeline``.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from ktrdr.bootstrap import database
from ktrdr.bootstrap.system import bootstrap, prepare_database
from ktrdr.config import Settings, redact
from ktrdr.domain import OperationNotFound, operation_stream
from ktrdr.eventlog import (
    START,
    ConcurrencyError,
    DuplicateEventError,
    EventLog,
    Position,
    RecordedEvent,
)
from ktrdr.eventlog.model import stream_type
from ktrdr.projections import replay, timeline, views
from ktrdr.projections.operations import OPERATION_PREFIX
from ktrdr.projections.registry import all_projections

PAGE = 1000
APPEND_BATCH = 500


class DatabaseNotReady(database.DatabaseUnavailable):
    """The configured database is reachable but not migrated to this code's schema."""


class ImportRefused(Exception):
    """An exported stream cannot be appended where asked (the stream is there already)."""


def debug_database(settings: Settings) -> str:
    """The URL of the database to read, migrating only the embedded default.

    A database named by KTRDR_DATABASE_URL is never migrated behind the user's
    back: it must be at the migrations' head already.
    """
    url = prepare_database(settings, migrate=settings.database_url is None)
    current, head = database.current_revision(url), database.head_revision()
    if current != head:
        raise DatabaseNotReady(
            f"the database at {redact(url)} is at migration {current or 'none'}, not {head}:"
            " run `ktrdr db migrate` first (or point KTRDR_DATABASE_URL at a ktrdr database)"
        )
    return url


@contextlib.contextmanager
def scratch_database(*, keep: bool = False) -> Iterator[str]:
    """A migrated database on a throwaway embedded PostgreSQL, gone afterwards unless ``keep``."""
    with database.throwaway_server("ktrdr-replay-", keep=keep) as url:
        database.migrate(url)
        yield url


async def operation_events(log: EventLog, operation_id: str) -> list[RecordedEvent]:
    """The operation's stream, oldest first; OperationNotFound when it has none."""
    events = await log.read_stream(operation_stream(operation_id))
    if not events:
        raise OperationNotFound(operation_id)
    return events


async def operation_steps(log: EventLog, operation_id: str) -> list[timeline.Step]:
    return timeline.replay(await operation_events(log, operation_id))


async def operation_as_of(log: EventLog, operation_id: str, version: int) -> dict[str, Any]:
    """The operation as the API showed it right after event ``version`` of its stream."""
    step = timeline.at_version(await operation_steps(log, operation_id), version)
    return views.state_json(step.state)


EventFilter = Callable[[RecordedEvent], bool]


def event_filter(types: Iterable[str] = (), stream: str | None = None) -> EventFilter:
    """Events of any of ``types`` (all when empty) in the streams ``stream`` names.

    ``stream`` is an operation id, a stream type (``operation`` or ``operation-``),
    or a whole stream id (``worker-gpu-1``).
    """
    wanted = frozenset(types)
    in_stream = _stream_matcher(stream)
    return lambda event: (not wanted or event.event_type in wanted) and in_stream(event.stream_id)


def _stream_matcher(stream: str | None) -> Callable[[str], bool]:
    if not stream:
        return lambda _: True
    with contextlib.suppress(ValueError):
        operation = operation_stream(uuid.UUID(stream))
        return lambda stream_id: stream_id == operation
    if "-" not in stream or stream.endswith("-"):
        kind = stream.removesuffix("-")
        return lambda stream_id: stream_type(stream_id) == kind
    return lambda stream_id: stream_id == stream


async def last_events(
    log: EventLog, matches: EventFilter, limit: int
) -> tuple[list[RecordedEvent], Position]:
    """The last ``limit`` matching events, and the position newer ones come after.

    The log is read forward from its start (the event log reads forward only).
    """
    kept: deque[RecordedEvent] = deque(maxlen=limit)
    after = START
    while batch := await log.read_all(after, PAGE):
        kept.extend(event for event in batch if matches(event))
        after = batch[-1].position
    return list(kept), after


async def follow(
    log: EventLog, matches: EventFilter, after: Position, *, poll_interval: float = 0.5
) -> AsyncIterator[RecordedEvent]:
    """Matching events after ``after`` as they commit, for as long as the caller iterates."""
    async for event in log.subscribe(after, poll_interval=poll_interval):
        if matches(event):
            yield event


@dataclass(frozen=True)
class ImportReport:
    appended: int
    already_there: int
    streams: tuple[str, ...]


async def import_events(log: EventLog, events: Sequence[timeline.ExportedEvent]) -> ImportReport:
    """Append exported events at their original stream versions, with their ids and metadata.

    Appending the same export twice appends nothing the second time.
    """
    appended = already = 0
    for stream_id, same_stream in groupby(events, key=lambda e: e.stream_id):
        batch = list(same_stream)
        for start in range(0, len(batch), APPEND_BATCH):
            chunk = batch[start : start + APPEND_BATCH]
            if await _append_chunk(log, stream_id, chunk):
                appended += len(chunk)
            else:
                already += len(chunk)
    streams = tuple(dict.fromkeys(e.stream_id for e in events))
    return ImportReport(appended, already, streams)


async def _append_chunk(
    log: EventLog, stream_id: str, chunk: Sequence[timeline.ExportedEvent]
) -> bool:
    first = chunk[0].stream_version
    for offset, item in enumerate(chunk):
        if item.stream_version != first + offset:
            raise ImportRefused(
                f"the export jumps from version {first + offset - 1} to {item.stream_version}"
                f" of {stream_id}: export the whole stream"
            )
    try:
        result = await log.append(stream_id, [e.event for e in chunk], first - 1)
    except ConcurrencyError as exc:
        raise ImportRefused(
            f"{stream_id} is at version {exc.actual} in the target database, so version"
            f" {first} cannot be appended: replay into an empty database"
        ) from None
    except DuplicateEventError as exc:
        raise ImportRefused(f"{exc}: replay into an empty database") from None
    return not result.duplicate


async def export_stream(log: EventLog, operation_id: str) -> list[str]:
    """The operation's events as JSON lines, with their ids and metadata."""
    events = await operation_events(log, operation_id)
    return [json.dumps(timeline.event_json(event)) for event in events]


@dataclass(frozen=True)
class ReplayOutcome:
    imported: ImportReport
    operations: list[dict[str, Any]]
    """Each imported operation as GET /api/v1/operations/{id} now shows it."""
    verified: replay.ReplayReport


async def replay_into(
    settings: Settings, url: str, events: Sequence[timeline.ExportedEvent]
) -> ReplayOutcome:
    """Append exported events into an empty database, read the operations back, verify.

    Appending through the event log runs the inline projections, so the read
    models are built exactly as the live system builds them.
    """
    async with bootstrap(settings, database_url=url, pool_size=2) as system:
        existing = await system.event_log.count()
        if existing:
            raise ImportRefused(
                f"the database at {redact(url)} already holds {existing} events:"
                " replay into an empty database"
            )
        imported = await import_events(system.event_log, events)
        async with system.pool.connection() as conn:
            operations = [
                await views.get_operation(conn, stream_id.removeprefix(OPERATION_PREFIX))
                for stream_id in imported.streams
                if stream_id.startswith(OPERATION_PREFIX)
            ]
            verified = await replay.verify(conn, all_projections())
    return ReplayOutcome(imported, [op for op in operations if op is not None], verified)
