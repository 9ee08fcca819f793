"""The event log contract: one suite, run against PostgreSQL and the in-memory twin."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from ktrdr.eventlog import (
    ANY,
    NO_STREAM,
    START,
    STREAM_EXISTS,
    ConcurrencyError,
    DuplicateEventError,
    EventLog,
    InMemoryEventLog,
    NewEvent,
    PostgresEventLog,
    RecordedEvent,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["postgres", "memory"])
async def event_log(request: pytest.FixtureRequest) -> AsyncIterator[EventLog]:
    if request.param == "memory":
        yield InMemoryEventLog()
        return
    url: str = request.getfixturevalue("database_url")
    async with AsyncConnectionPool(url, kwargs={"autocommit": True}, open=False) as pool:
        await pool.open(wait=True)
        yield PostgresEventLog(pool)


def new(event_type: str = "Happened", **data: Any) -> NewEvent:
    return NewEvent(event_type=event_type, data=data or {"n": 1})


async def test_append_to_new_stream_numbers_versions_from_one(event_log: EventLog) -> None:
    result = await event_log.append("operation-a", [new("A"), new("B"), new("C")], NO_STREAM)
    assert result.stream_version == 3
    assert [e.stream_version for e in result.events] == [1, 2, 3]
    stored = await event_log.read_stream("operation-a")
    assert [(e.stream_version, e.event_type) for e in stored] == [(1, "A"), (2, "B"), (3, "C")]


async def test_payload_and_metadata_round_trip(event_log: EventLog) -> None:
    event = NewEvent(
        "CheckpointSaved",
        {"sequence": 1, "state": {"epoch": 3, "loss": 0.25, "tags": ["a", "é"]}},
        schema_version=2,
        metadata={"correlation_id": "c-1", "actor": "worker-1"},
    )
    await event_log.append("operation-a", [event], NO_STREAM)
    [stored] = await event_log.read_stream("operation-a")
    assert stored.event_id == event.event_id
    assert stored.data == event.data
    assert stored.metadata == event.metadata
    assert stored.schema_version == 2
    assert stored.recorded_at.tzinfo is not None


async def test_exact_expected_version(event_log: EventLog) -> None:
    await event_log.append("operation-a", [new()], NO_STREAM)
    result = await event_log.append("operation-a", [new()], 1)
    assert result.stream_version == 2
    with pytest.raises(ConcurrencyError) as raised:
        await event_log.append("operation-a", [new()], 1)
    assert raised.value.stream_id == "operation-a"
    assert raised.value.expected == 1
    assert raised.value.actual == 2
    assert "operation-a" in str(raised.value) and "2" in str(raised.value)


async def test_no_stream_refused_when_stream_exists(event_log: EventLog) -> None:
    await event_log.append("operation-a", [new()], NO_STREAM)
    with pytest.raises(ConcurrencyError) as raised:
        await event_log.append("operation-a", [new()], NO_STREAM)
    assert raised.value.actual == 1


async def test_stream_exists_refused_for_new_stream(event_log: EventLog) -> None:
    with pytest.raises(ConcurrencyError):
        await event_log.append("operation-a", [new()], STREAM_EXISTS)
    await event_log.append("operation-a", [new()], ANY)
    result = await event_log.append("operation-a", [new()], STREAM_EXISTS)
    assert result.stream_version == 2


async def test_any_appends_whatever_the_version(event_log: EventLog) -> None:
    for _ in range(3):
        await event_log.append("operation-a", [new()], ANY)
    assert len(await event_log.read_stream("operation-a")) == 3


async def test_failed_batch_writes_nothing(event_log: EventLog) -> None:
    await event_log.append("operation-a", [new()], NO_STREAM)
    with pytest.raises(ConcurrencyError):
        await event_log.append("operation-a", [new(), new(), new()], 0)
    assert len(await event_log.read_stream("operation-a")) == 1
    assert len(await event_log.read_all()) == 1


async def test_retried_batch_is_appended_once(event_log: EventLog) -> None:
    batch = [new("A"), new("B")]
    first = await event_log.append("operation-a", batch, NO_STREAM)
    again = await event_log.append("operation-a", batch, NO_STREAM)
    assert again.stream_version == first.stream_version == 2
    assert [e.event_id for e in again.events] == [e.event_id for e in batch]
    assert len(await event_log.read_all()) == 2


async def test_event_id_reused_in_other_stream_is_refused(event_log: EventLog) -> None:
    event = new()
    await event_log.append("operation-a", [event], NO_STREAM)
    with pytest.raises(DuplicateEventError):
        await event_log.append("operation-b", [event], NO_STREAM)
    with pytest.raises(DuplicateEventError):
        await event_log.append("operation-a", [event, new()], ANY)
    assert len(await event_log.read_all()) == 1


async def test_concurrent_appends_with_same_expected_version_one_wins(event_log: EventLog) -> None:
    await event_log.append("operation-a", [new()], NO_STREAM)
    results = await asyncio.gather(
        *(event_log.append("operation-a", [new()], 1) for _ in range(8)), return_exceptions=True
    )
    wins = [r for r in results if not isinstance(r, BaseException)]
    losses = [r for r in results if isinstance(r, ConcurrencyError)]
    assert len(wins) == 1 and len(losses) == 7
    assert len(await event_log.read_stream("operation-a")) == 2


async def test_read_stream_from_version(event_log: EventLog) -> None:
    await event_log.append("operation-a", [new() for _ in range(5)], NO_STREAM)
    assert [e.stream_version for e in await event_log.read_stream("operation-a", 4)] == [4, 5]
    assert await event_log.read_stream("operation-missing") == []


async def test_read_all_pages_in_position_order(event_log: EventLog) -> None:
    for i in range(7):
        await event_log.append(f"operation-{i % 3}", [new(n=i), new(n=i)], ANY)
    everything = await event_log.read_all()
    assert len(everything) == 14
    positions = [e.position for e in everything]
    assert positions == sorted(positions) and len(set(positions)) == 14
    paged: list[RecordedEvent] = []
    after = START
    while page := await event_log.read_all(after, limit=3):
        assert len(page) <= 3
        paged.extend(page)
        after = page[-1].position
    assert [e.event_id for e in paged] == [e.event_id for e in everything]


async def test_a_batch_is_contiguous_in_the_global_order(event_log: EventLog) -> None:
    await event_log.append("operation-a", [new() for _ in range(4)], NO_STREAM)
    await event_log.append("operation-b", [new() for _ in range(4)], NO_STREAM)
    streams = [e.stream_id for e in await event_log.read_all()]
    assert streams == ["operation-a"] * 4 + ["operation-b"] * 4


async def test_subscription_replays_then_follows_live(event_log: EventLog) -> None:
    await event_log.append("operation-a", [new(n=1), new(n=2)], NO_STREAM)
    seen: list[RecordedEvent] = []

    async def follow() -> None:
        async for event in event_log.subscribe(START, poll_interval=0.2):
            seen.append(event)
            if len(seen) == 5:
                return

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.3)
    await event_log.append("operation-b", [new(n=3)], NO_STREAM)
    await event_log.append("operation-a", [new(n=4), new(n=5)], 2)
    await asyncio.wait_for(task, 10)
    assert [e.data["n"] for e in seen] == [1, 2, 3, 4, 5]


async def test_subscription_starts_after_stored_position(event_log: EventLog) -> None:
    first = await event_log.append("operation-a", [new(n=1), new(n=2)], NO_STREAM)
    await event_log.append("operation-a", [new(n=3)], 2)
    seen: list[int] = []
    async for event in event_log.subscribe(first.events[-1].position, poll_interval=0.1):
        seen.append(event.data["n"])
        break
    assert seen == [3]


async def test_event_ids_are_uuids(event_log: EventLog) -> None:
    result = await event_log.append("worker-w1", [new()], NO_STREAM)
    assert isinstance(result.events[0].event_id, uuid.UUID)
