"""PostgreSQL-only guarantees of the event log: no skipped event, no xid-before-read."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from ktrdr.eventlog import (
    ANY,
    NO_STREAM,
    START,
    NewEvent,
    PostgresEventLog,
    RecordedEvent,
    RetryableAppendError,
    append_on,
)

pytestmark = pytest.mark.anyio


def new(n: int) -> NewEvent:
    return NewEvent("Happened", {"n": n})


async def collect(log: PostgresEventLog, into: list[RecordedEvent], count: int) -> None:
    async for event in log.subscribe(START, poll_interval=0.1):
        into.append(event)
        if len(into) == count:
            return


async def test_late_commit_is_waited_for_not_skipped(
    pool: AsyncConnectionPool[Any], database_url: str
) -> None:
    log = PostgresEventLog(pool)
    async with await AsyncConnection.connect(database_url) as slow:
        # The slow transaction takes its identity value (position 1) first, commits last.
        await append_on(slow, "operation-slow", [new(1)], NO_STREAM)
        await log.append("operation-fast", [new(2)], NO_STREAM)
        assert (await log.read_stream("operation-fast"))[0].global_position == 2

        seen: list[RecordedEvent] = []
        task = asyncio.create_task(collect(log, seen, 2))
        await asyncio.sleep(0.5)
        assert seen == [], "a reader passed an open transaction"
        assert await log.read_all() == []
        await slow.commit()
    await asyncio.wait_for(task, 5)
    assert [e.data["n"] for e in seen] == [1, 2]


async def test_rolled_back_gap_is_passed_without_a_timeout(
    pool: AsyncConnectionPool[Any], database_url: str
) -> None:
    log = PostgresEventLog(pool)
    seen: list[RecordedEvent] = []
    async with await AsyncConnection.connect(database_url) as slow:
        await append_on(slow, "operation-slow", [new(1)], NO_STREAM)
        await log.append("operation-fast", [new(2)], NO_STREAM)
        task = asyncio.create_task(collect(log, seen, 1))
        await asyncio.sleep(0.3)
        assert seen == []
        await slow.rollback()
        loop = asyncio.get_running_loop()
        rolled_back_at = loop.time()
        await asyncio.wait_for(task, 5)
        # Woken by the next poll (0.1 s), not by any gap timeout.
        assert loop.time() - rolled_back_at < 2
    assert [e.data["n"] for e in seen] == [2]


async def test_transaction_holding_an_older_xid_holds_readers_back(
    pool: AsyncConnectionPool[Any], database_url: str
) -> None:
    log = PostgresEventLog(pool)
    async with await AsyncConnection.connect(database_url) as early:
        # Takes a transaction id before the other append, appends after it.
        await early.execute("CREATE TEMPORARY TABLE scratch (x int)")
        await log.append("operation-b", [new(2)], NO_STREAM)
        await append_on(early, "operation-a", [new(1)], NO_STREAM)
        assert await log.read_all() == []
        await early.commit()
    events = await log.read_all()
    assert [e.data["n"] for e in events] == [1, 2]
    assert events[0].global_position > events[1].global_position


async def test_xid_before_read_is_refused_with_a_retryable_error(
    pool: AsyncConnectionPool[Any], database_url: str
) -> None:
    log = PostgresEventLog(pool)
    await log.append("operation-a", [new(1)], NO_STREAM)
    async with await AsyncConnection.connect(database_url) as stale:
        await stale.execute("CREATE TEMPORARY TABLE scratch (x int)")
        await log.append("operation-a", [new(2)], 1)
        with pytest.raises(RetryableAppendError):
            await append_on(stale, "operation-a", [new(3)], ANY)
        await stale.rollback()
    await log.append("operation-a", [new(3)], ANY)
    stream = await log.read_stream("operation-a")
    assert [e.data["n"] for e in stream] == [1, 2, 3]
    ordered = await log.read_all()
    assert [e.stream_version for e in ordered] == [1, 2, 3]


async def test_first_write_append_in_a_transaction_is_not_refused(
    pool: AsyncConnectionPool[Any], database_url: str
) -> None:
    log = PostgresEventLog(pool)
    await log.append("operation-a", [new(1)], NO_STREAM)
    async with await AsyncConnection.connect(database_url) as conn:
        await append_on(conn, "operation-a", [new(2)], 1)
        await conn.commit()
    assert len(await log.read_stream("operation-a")) == 2


async def test_notification_wakes_a_subscriber_before_its_poll(
    pool: AsyncConnectionPool[Any],
) -> None:
    log = PostgresEventLog(pool)
    seen: list[RecordedEvent] = []

    async def follow() -> None:
        async for event in log.subscribe(START, poll_interval=30):
            seen.append(event)
            return

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.5)
    await log.append("operation-a", [new(1)], NO_STREAM)
    # Far below the 30 s poll: only the NOTIFY can have woken it.
    await asyncio.wait_for(task, 10)
    assert len(seen) == 1


def test_nan_in_payload_is_refused_before_anything_is_written(database_url: str) -> None:
    async def scenario() -> None:
        async with AsyncConnectionPool(database_url, kwargs={"autocommit": True}) as pool:
            log = PostgresEventLog(pool)
            with pytest.raises(ValueError):
                await log.append("operation-a", [NewEvent("A", {"loss": float("nan")})], ANY)
            assert await log.read_all() == []

    asyncio.run(scenario())
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (0,)


async def test_transaction_ids_sort_as_numbers_not_text(
    pool: AsyncConnectionPool[Any], database_url: str
) -> None:
    # Small but real xids, all below any snapshot's xmin, of 1 to 3 digits.
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        for xid, n in (("10", 2), ("9", 1), ("100", 3)):
            await conn.execute(
                "INSERT INTO events (stream_id, stream_version, event_id, event_type,"
                " schema_version, data, transaction_id)"
                " VALUES (%s, 1, gen_random_uuid(), 'A', 1, %s, %s::xid8)",
                (f"operation-{n}", psycopg.types.json.Jsonb({"n": n}), xid),
            )
    log = PostgresEventLog(pool)
    assert [e.data["n"] for e in await log.read_all()] == [1, 2, 3]
    first = await log.read_all(limit=1)
    assert [e.data["n"] for e in await log.read_all(first[0].position)] == [2, 3]
    assert (await log.last_position()).transaction_id == 100
