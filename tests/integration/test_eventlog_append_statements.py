"""Every append guarantee holds for both statements: one event (APPEND_ONE) and a batch (APPEND)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from ktrdr.eventlog import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    ConcurrencyError,
    DuplicateEventError,
    Expected,
    NewEvent,
    PostgresEventLog,
    RetryableAppendError,
    append_on,
)
from ktrdr.projections.base import BoundInline
from ktrdr.projections.counts import StreamTypeCounts

pytestmark = pytest.mark.anyio

# 1 goes through APPEND_ONE, 3 through the jsonb batch statement.
SIZES = pytest.mark.parametrize("size", [1, 3], ids=["one event", "batch"])


def batch(size: int) -> list[NewEvent]:
    return [
        NewEvent("Happened", {"n": n, "nested": {"x": [1.5, None]}}, 2, {"actor": "test"})
        for n in range(size)
    ]


@pytest.fixture
async def log(pool: AsyncConnectionPool[Any]) -> AsyncIterator[PostgresEventLog]:
    yield PostgresEventLog(pool)


@SIZES
async def test_versions_payload_and_positions_come_back(log: PostgresEventLog, size: int) -> None:
    events = batch(size)
    result = await log.append("operation-a", events, NO_STREAM)
    assert result.stream_version == size and not result.duplicate
    assert [e.stream_version for e in result.events] == list(range(1, size + 1))
    stored = await log.read_stream("operation-a")
    assert stored == list(result.events)
    assert [(e.event_id, e.data, e.metadata, e.schema_version) for e in stored] == [
        (e.event_id, e.data, e.metadata, e.schema_version) for e in events
    ]


@SIZES
@pytest.mark.parametrize("expected", [1, ANY, STREAM_EXISTS], ids=["exact", "any", "exists"])
async def test_next_append_builds_on_the_head(
    log: PostgresEventLog, size: int, expected: Expected
) -> None:
    await log.append("operation-a", batch(1), NO_STREAM)
    result = await log.append("operation-a", batch(size), expected)
    assert [e.stream_version for e in result.events] == list(range(2, size + 2))


@SIZES
@pytest.mark.parametrize(
    ("expected", "actual"), [(NO_STREAM, 2), (1, 2), (3, 2)], ids=["no stream", "behind", "ahead"]
)
async def test_wrong_expected_version_is_refused_and_writes_nothing(
    log: PostgresEventLog, size: int, expected: Expected, actual: int
) -> None:
    await log.append("operation-a", batch(2), NO_STREAM)
    with pytest.raises(ConcurrencyError) as raised:
        await log.append("operation-a", batch(size), expected)
    assert raised.value.actual == actual
    assert len(await log.read_stream("operation-a")) == 2


@SIZES
async def test_stream_exists_is_refused_for_a_new_stream(log: PostgresEventLog, size: int) -> None:
    with pytest.raises(ConcurrencyError):
        await log.append("operation-a", batch(size), STREAM_EXISTS)
    assert await log.read_all() == []


@SIZES
@pytest.mark.parametrize("expected", [NO_STREAM, ANY], ids=["same expected", "any"])
async def test_retried_append_returns_the_original(
    log: PostgresEventLog, size: int, expected: Expected
) -> None:
    events = batch(size)
    first = await log.append("operation-a", events, expected)
    again = await log.append("operation-a", events, expected)
    assert again.duplicate
    assert again.events == first.events and again.stream_version == first.stream_version
    assert len(await log.read_all()) == size


@SIZES
async def test_retry_inside_a_transaction_returns_the_original(
    log: PostgresEventLog, database_url: str, size: int
) -> None:
    events = batch(size)
    first = await log.append("operation-a", events, NO_STREAM)
    async with await AsyncConnection.connect(database_url) as conn:
        again = await append_on(conn, "operation-a", events, NO_STREAM)
        await conn.commit()
    assert again.duplicate and again.events == first.events


@SIZES
async def test_event_id_of_another_stream_is_refused(log: PostgresEventLog, size: int) -> None:
    events = batch(size)
    await log.append("operation-a", events, NO_STREAM)
    with pytest.raises(DuplicateEventError):
        await log.append("operation-b", events, NO_STREAM)
    assert len(await log.read_all()) == size


@SIZES
async def test_older_xid_than_the_head_is_refused_with_a_retryable_error(
    log: PostgresEventLog, database_url: str, size: int
) -> None:
    await log.append("operation-a", batch(1), NO_STREAM)
    async with await AsyncConnection.connect(database_url) as stale:
        await stale.execute("CREATE TEMPORARY TABLE scratch (x int)")  # takes an xid
        await log.append("operation-a", batch(1), 1)
        with pytest.raises(RetryableAppendError):
            await append_on(stale, "operation-a", batch(size), ANY)
        await stale.rollback()
    assert len(await log.read_stream("operation-a")) == 2


@SIZES
async def test_inline_projection_runs_in_the_append_and_once_on_retry(
    pool: AsyncConnectionPool[Any], database_url: str, size: int
) -> None:
    log = PostgresEventLog(pool, inline_projections=[BoundInline(StreamTypeCounts())])
    events = batch(size)
    await log.append("job-1", events, NO_STREAM)
    await log.append("job-1", events, NO_STREAM)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT stream_type, event_count FROM stream_type_counts").fetchall()
    assert rows == [("job", size)]


@SIZES
async def test_nan_is_refused_before_anything_is_written(log: PostgresEventLog, size: int) -> None:
    events = [*batch(size - 1), NewEvent("Happened", {"loss": float("nan")})]
    with pytest.raises(ValueError):
        await log.append("operation-a", events, ANY)
    assert await log.read_all() == []
