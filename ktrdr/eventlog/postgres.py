"""The PostgreSQL event log (docs/design.md §3)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, LiteralString, Protocol

import psycopg
from psycopg import AsyncConnection, errors
from psycopg_pool import AsyncConnectionPool, PoolClosed

from ktrdr.eventlog import queries
from ktrdr.eventlog.model import (
    START,
    AppendResult,
    ConcurrencyError,
    DuplicateEventError,
    Expected,
    ExpectedVersion,
    NewEvent,
    Position,
    RecordedEvent,
    RetryableAppendError,
)
from ktrdr.eventlog.port import EventLog

log = logging.getLogger(__name__)


# NaN/Infinity are not JSON: refuse them here rather than store what readers reject.
# One encoder for every append: json.dumps builds a new one per call when given options.
_STRICT_JSON = json.JSONEncoder(allow_nan=False)


def _strict(value: Any) -> str:
    return _STRICT_JSON.encode(value)


_EXPECTED_CODES = {
    ExpectedVersion.ANY: -1,
    ExpectedVersion.STREAM_EXISTS: -2,
    ExpectedVersion.NO_STREAM: 0,
}
_ANY_RETRIES = 20
NOTIFY_COALESCE_SECONDS = 0.02
NOTIFY_FLUSH_SECONDS = 1.0
"""On close, how long the notification in flight may take before it is given up."""
_ANNOUNCE: LiteralString = """
SELECT pg_notify(channel, payload)
FROM unnest(%(channels)s::text[], %(payloads)s::text[]) AS announced(channel, payload)
"""


class InlineProjection(Protocol):
    """A read model updated in the append's own transaction (read-your-writes)."""

    name: str

    async def apply(self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None: ...


def row_to_event(row: tuple[Any, ...]) -> RecordedEvent:
    return RecordedEvent(
        global_position=row[0],
        transaction_id=int(row[1]),
        stream_id=row[2],
        stream_version=row[3],
        event_id=row[4],
        event_type=row[5],
        schema_version=row[6],
        data=row[7],
        metadata=row[8],
        recorded_at=row[9],
    )


async def append_on(
    conn: AsyncConnection[Any],
    stream_id: str,
    events: Sequence[NewEvent],
    expected_version: Expected,
) -> AppendResult:
    """Append inside the caller's transaction; the caller commits or rolls back.

    Raises ConcurrencyError or RetryableAppendError (the transaction took its id
    before this append and is older than the stream's last event); a unique
    violation propagates so that the caller can roll back and diagnose.
    """
    code = (
        _EXPECTED_CODES[expected_version]
        if isinstance(expected_version, ExpectedVersion)
        else expected_version
    )
    cur = await conn.execute(*_append_statement(stream_id, events, code))
    rows = sorted(await cur.fetchall(), key=lambda r: r[2])
    if not rows:
        earlier = await find_appended(conn, stream_id, events)
        if earlier is not None:
            return earlier
        cur = await conn.execute(queries.STREAM_HEAD, {"stream_id": stream_id})
        head = await cur.fetchone()
        assert head is not None
        actual, xid_too_old = head
        if xid_too_old:
            raise RetryableAppendError(
                f"transaction is older than the last event of {stream_id!r}; retry the append"
                " in a new transaction"
            )
        raise ConcurrencyError(stream_id, expected_version, actual)
    recorded = tuple(
        RecordedEvent(
            global_position=row[0],
            transaction_id=int(row[1]),
            stream_id=stream_id,
            stream_version=row[2],
            event_id=event.event_id,
            event_type=event.event_type,
            schema_version=event.schema_version,
            data=event.data,
            metadata=event.metadata,
            recorded_at=row[3],
        )
        for row, event in zip(rows, events, strict=True)
    )
    return AppendResult(stream_id, recorded[-1].stream_version, recorded)


def _append_statement(
    stream_id: str, events: Sequence[NewEvent], code: int
) -> tuple[LiteralString, dict[str, Any]]:
    if len(events) == 1:
        [event] = events
        return queries.APPEND_ONE, {
            "stream_id": stream_id,
            "expected": code,
            "event_id": event.event_id,
            "event_type": event.event_type,
            "schema_version": event.schema_version,
            "data": _strict(event.data),
            "metadata": _strict(event.metadata),
        }
    batch = [
        {
            "event_id": str(e.event_id),
            "event_type": e.event_type,
            "schema_version": e.schema_version,
            "data": e.data,
            "metadata": e.metadata,
        }
        for e in events
    ]
    return queries.APPEND, {"stream_id": stream_id, "expected": code, "events": _strict(batch)}


async def find_appended(
    conn: AsyncConnection[Any], stream_id: str, events: Sequence[NewEvent]
) -> AppendResult | None:
    """The earlier append of this very batch, None if none of its ids is known.

    Raises DuplicateEventError when only some ids are known, or in another stream.
    """
    ids = [e.event_id for e in events]
    cur = await conn.execute(queries.EVENTS_BY_ID, {"event_ids": ids})
    by_id = {e.event_id: e for e in map(row_to_event, await cur.fetchall())}
    if not by_id:
        return None
    recorded = tuple(by_id[i] for i in ids if i in by_id)
    if len(recorded) != len(ids) or any(e.stream_id != stream_id for e in recorded):
        raise DuplicateEventError(
            f"event ids {sorted(map(str, by_id))} were already appended, but not as this batch"
            f" of stream {stream_id!r}"
        )
    return AppendResult(stream_id, recorded[-1].stream_version, recorded, duplicate=True)


class PostgresEventLog(EventLog):
    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        *,
        inline_projections: Sequence[InlineProjection] = (),
        notify: bool = True,
    ) -> None:
        self._pool = pool
        self._notify_enabled = notify
        self._inline = tuple(inline_projections)
        self._notify_pending = False
        self._announced: set[tuple[str, str]] = set()
        self._notifier: asyncio.Task[None] | None = None

    @property
    def conninfo(self) -> str:
        assert isinstance(self._pool.conninfo, str)
        return self._pool.conninfo

    async def append(
        self, stream_id: str, events: Sequence[NewEvent], expected_version: Expected
    ) -> AppendResult:
        if not events:
            return AppendResult(stream_id, await self._stream_version(stream_id), ())
        for _ in range(_ANY_RETRIES):
            try:
                result = await self._append_once(stream_id, events, expected_version)
                self._wake_subscribers()
                return result
            except errors.UniqueViolation as exc:
                if exc.diag.constraint_name == "events_event_id_key":
                    return await self._already_appended(stream_id, events)
                if expected_version is not ExpectedVersion.ANY:
                    actual = await self._stream_version(stream_id)
                    raise ConcurrencyError(stream_id, expected_version, actual) from None
        raise ConcurrencyError(stream_id, expected_version, await self._stream_version(stream_id))

    async def _append_once(
        self, stream_id: str, events: Sequence[NewEvent], expected_version: Expected
    ) -> AppendResult:
        # getconn/putconn rather than pool.connection(), whose `async with conn` commits
        # an autocommit connection for nothing: 6 µs of CPU per checkout instead of 16.
        # putconn still rolls back a connection returned in a transaction and discards
        # one returned mid-query (a cancelled append).
        conn = await self._pool.getconn()
        try:
            if not self._inline:
                # Pool connections autocommit: the append is one statement, one round
                # trip, its own transaction.
                return await append_on(conn, stream_id, events, expected_version)
            async with conn.transaction():
                result = await append_on(conn, stream_id, events, expected_version)
                if result.duplicate:
                    return result
                for projection in self._inline:
                    await projection.apply(conn, result.events)
                return result
        finally:
            await self._pool.putconn(conn)

    def announce(self, channel: str, payload: str) -> None:
        """NOTIFY ``channel`` with ``payload`` along with the log's next notification: after
        the append that just returned has committed, never inside its transaction."""
        if self._notify_enabled:
            self._announced.add((channel, payload))
            self._wake_subscribers()

    def _wake_subscribers(self) -> None:
        """Debounced: at most one NOTIFY in flight; appends meanwhile share the next one."""
        if not self._notify_enabled:
            return
        self._notify_pending = True
        loop = asyncio.get_running_loop()
        # The log may be shared by several event loops (tests drive an app's log from theirs).
        if self._notifier is None or self._notifier.done() or self._notifier.get_loop() is not loop:
            self._notifier = loop.create_task(self._notify())

    async def _notify(self) -> None:
        while self._notify_pending:
            self._notify_pending = False
            announced, self._announced = self._announced, set()
            try:
                async with self._pool.connection() as conn:
                    await conn.execute(queries.NOTIFY)
                    if announced:
                        await conn.execute(_ANNOUNCE, _announcements(announced))
            except (psycopg.Error, PoolClosed) as exc:
                log.warning("NOTIFY failed, subscribers will poll: %s", exc)
                return
            # A burst of appends shares one wake-up; the first after a quiet spell is at once.
            await asyncio.sleep(NOTIFY_COALESCE_SECONDS)

    async def aclose(self) -> None:
        """Wait for the notification in flight (before the pool closes)."""
        task = self._notifier
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            # Sent if the database answers soon: a process that exits right after its
            # append (a short-lived command) still wakes whoever waits for that work.
            await asyncio.wait({task}, timeout=NOTIFY_FLUSH_SECONDS)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _already_appended(self, stream_id: str, events: Sequence[NewEvent]) -> AppendResult:
        async with self._pool.connection() as conn:
            earlier = await find_appended(conn, stream_id, events)
        if earlier is None:
            raise DuplicateEventError("an event id of this batch was appended concurrently")
        return earlier

    async def _stream_version(self, stream_id: str) -> int:
        async with self._pool.connection() as conn:
            cur = await conn.execute(queries.STREAM_HEAD, {"stream_id": stream_id})
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def read_stream(self, stream_id: str, from_version: int = 1) -> list[RecordedEvent]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                queries.READ_STREAM, {"stream_id": stream_id, "from_version": from_version}
            )
            return [row_to_event(r) for r in await cur.fetchall()]

    async def read_all(self, after: Position = START, limit: int = 1000) -> list[RecordedEvent]:
        async with self._pool.connection() as conn:
            return await read_all_on(conn, after, limit)

    async def subscribe(
        self, after: Position = START, *, poll_interval: float = 1.0, batch_size: int = 500
    ) -> AsyncIterator[RecordedEvent]:
        async with Waker(self.conninfo) as waker:
            while True:
                batch = await self.read_all(after, batch_size)
                for event in batch:
                    yield event
                if batch:
                    after = batch[-1].position
                if len(batch) < batch_size:
                    await waker.wait(poll_interval)

    async def last_position(self) -> Position:
        async with self._pool.connection() as conn:
            cur = await conn.execute(queries.LAST_POSITION)
            row = await cur.fetchone()
        return Position(int(row[0]), row[1]) if row else START

    async def count(self) -> int:
        async with self._pool.connection() as conn:
            cur = await conn.execute(queries.COUNT_EVENTS)
            row = await cur.fetchone()
        return int(row[0]) if row else 0


def _announcements(announced: set[tuple[str, str]]) -> dict[str, list[str]]:
    return {
        "channels": [channel for channel, _ in announced],
        "payloads": [payload for _, payload in announced],
    }


async def read_all_on(
    conn: AsyncConnection[Any], after: Position, limit: int
) -> list[RecordedEvent]:
    cur = await conn.execute(
        queries.READ_ALL,
        {"tx": str(after.transaction_id), "pos": after.global_position, "limit": limit},
    )
    return [row_to_event(r) for r in await cur.fetchall()]


class Waker:
    """Wakes a reader early on NOTIFY; the reader polls on its own whatever happens here.

    A lost LISTEN connection (killed backend, network) only costs the poll
    interval: it is re-opened on the next wait.
    """

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._conn: AsyncConnection[Any] | None = None

    async def __aenter__(self) -> Waker:
        await self._connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._conn is not None:
            await self._conn.close()

    async def _connect(self) -> None:
        try:
            self._conn = await AsyncConnection.connect(self._conninfo, autocommit=True)
            await self._conn.execute(queries.LISTEN)
        except psycopg.Error as exc:
            log.warning("LISTEN connection unavailable, polling only: %s", exc)
            self._conn = None

    async def wait(self, timeout: float) -> None:
        if self._conn is None or self._conn.closed:
            await self._connect()
            if self._conn is None:
                await asyncio.sleep(timeout)
                return
        try:
            async for _ in self._conn.notifies(timeout=timeout, stop_after=1):
                pass
        except psycopg.Error as exc:
            log.warning("LISTEN connection lost, polling until it is back: %s", exc)
            await self._conn.close()
            self._conn = None
            await asyncio.sleep(timeout)
