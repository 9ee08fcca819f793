"""Concurrency soak: the event log never loses, duplicates or reorders an event for its readers.

Writer processes (tests/integration/soak_writer.py) append random batches to
hot and cold streams; some of their transactions take their xid early, some
sleep before committing, some roll back. Meanwhile two subscribers and the
catch-up projection runner read. Every subscriber must see every committed
event exactly once, in (transaction_id, global_position) order, each stream in
version order; the projections must equal the committed events, and a replay
(verify, rebuild, verify) must find no difference.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from ktrdr.eventlog import START, PostgresEventLog, RecordedEvent
from ktrdr.eventlog.model import stream_type
from ktrdr.projections.counts import EventTypeCounts
from ktrdr.projections.registry import all_projections
from ktrdr.projections.replay import ReplayReport, rebuild, verify
from ktrdr.projections.runner import CatchUpRunner

pytestmark = pytest.mark.anyio

SEED = 20261126
WRITERS = 4
ITERATIONS = 400
WRITE_SECONDS = 25.0
"""Each writer stops after this long even if it has iterations left."""
CATCH_UP_SECONDS = 20.0
WRITER_MODULE = "tests.integration.soak_writer"


@dataclass(frozen=True)
class Committed:
    stream_id: str
    stream_version: int
    event_type: str
    transaction_id: int


CommittedEvents = dict[uuid.UUID, Committed]


async def start_writer(url: str, writer: int, cwd: Path) -> asyncio.subprocess.Process:
    args = [str(x) for x in (url, writer, SEED + writer, ITERATIONS, WRITE_SECONDS)]
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        WRITER_MODULE,
        *args,
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def await_ready(proc: asyncio.subprocess.Process) -> None:
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    if line.strip() != b"ready":
        _, stderr = await proc.communicate()
        pytest.fail(f"soak writer did not start: {line!r}\n{stderr.decode()}")


async def finish(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    stdout, stderr = await proc.communicate(b"go\n")
    assert proc.returncode == 0, f"soak writer failed:\n{stderr.decode()}"
    result: dict[str, Any] = json.loads(stdout)
    return result


def collect(results: list[dict[str, Any]]) -> tuple[CommittedEvents, Counter[str]]:
    committed: CommittedEvents = {}
    stats: Counter[str] = Counter()
    for result in results:
        stats.update(result["stats"])
        for batch in result["committed"]:
            for event_id, event_type, version, xid in batch["events"]:
                key = uuid.UUID(event_id)
                assert key not in committed, f"event {key} reported committed twice"
                committed[key] = Committed(batch["stream_id"], version, event_type, xid)
    return committed, stats


async def run_writers(url: str, cwd: Path) -> tuple[CommittedEvents, Counter[str]]:
    """Start every writer, release them together, and gather what they committed."""
    procs: list[asyncio.subprocess.Process] = []
    try:
        for writer in range(WRITERS):
            procs.append(await start_writer(url, writer, cwd))
        await asyncio.gather(*(await_ready(p) for p in procs))
        results = await asyncio.gather(*(finish(p) for p in procs))
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.communicate()
    return collect(list(results))


async def subscribe_into(log: PostgresEventLog, seen: list[RecordedEvent], batch: int) -> None:
    async for event in log.subscribe(START, poll_interval=0.2, batch_size=batch):
        seen.append(event)


async def wait_until(
    done: Callable[[], Awaitable[bool]], describe: Callable[[], Awaitable[str]]
) -> None:
    """Poll until done, for CATCH_UP_SECONDS at most: the checks that follow then say what
    is missing."""
    try:
        async with asyncio.timeout(CATCH_UP_SECONDS):
            while not await done():
                await asyncio.sleep(0.1)
    except TimeoutError:
        print(f"readers still behind after {CATCH_UP_SECONDS}s: {await describe()}")


def check_subscriber(name: str, seen: list[RecordedEvent], committed: CommittedEvents) -> None:
    ids = [e.event_id for e in seen]
    duplicates = [i for i, n in Counter(ids).items() if n > 1]
    assert not duplicates, f"{name} saw {len(duplicates)} events twice, e.g. {duplicates[:3]}"
    extra = set(ids) - committed.keys()
    assert not extra, f"{name} saw {len(extra)} events never committed, e.g. {list(extra)[:3]}"
    missing = committed.keys() - set(ids)
    assert not missing, f"{name} missed {len(missing)} committed events, e.g. {list(missing)[:3]}"

    backwards = [(a.position, b.position) for a, b in pairwise(seen) if a.position >= b.position]
    assert not backwards, f"{name}: position went backwards {len(backwards)}×: {backwards[:3]}"

    versions: defaultdict[str, list[int]] = defaultdict(list)
    for event in seen:
        versions[event.stream_id].append(event.stream_version)
        expected = committed[event.event_id]
        actual = Committed(
            event.stream_id, event.stream_version, event.event_type, event.transaction_id
        )
        assert actual == expected, f"{name}: event {event.event_id} read as {actual}"
    for stream_id, stream_versions in versions.items():
        wrong = [i for i, v in enumerate(stream_versions) if v != i + 1]
        if wrong:
            around = stream_versions[max(wrong[0] - 2, 0) : wrong[0] + 3]
            pytest.fail(f"{name}: stream {stream_id} read out of order, around {around}")


async def table_counts(conn: AsyncConnection[Any], table: str) -> Counter[str]:
    queries = {
        "event_type_counts": "SELECT event_type, event_count FROM event_type_counts",
        "stream_type_counts": "SELECT stream_type, event_count FROM stream_type_counts",
    }
    cur = await conn.execute(queries[table])
    return Counter({key: int(count) for key, count in await cur.fetchall()})


async def check_read_models(conn: AsyncConnection[Any], committed: CommittedEvents) -> None:
    by_event_type = Counter(c.event_type for c in committed.values())
    by_stream_type = Counter(stream_type(c.stream_id) for c in committed.values())
    assert await table_counts(conn, "event_type_counts") == by_event_type
    assert await table_counts(conn, "stream_type_counts") == by_stream_type


def assert_no_difference(report: ReplayReport, committed: CommittedEvents, step: str) -> None:
    found = report.differences
    assert report.ok, f"{step} found {len(found)} differences, e.g. {found[:4]}"
    replayed = dict.fromkeys((p.name for p in all_projections()), len(committed))
    assert report.events_replayed == replayed, f"{step} replayed {report.events_replayed}"


async def logged_ids(conn: AsyncConnection[Any]) -> set[uuid.UUID]:
    cur = await conn.execute("SELECT event_id FROM events")
    return {row[0] for row in await cur.fetchall()}


async def runner_position(conn: AsyncConnection[Any]) -> tuple[int, int] | None:
    cur = await conn.execute(
        "SELECT transaction_id::text, global_position FROM projection_positions"
        " WHERE name = 'event_type_counts'"
    )
    row = await cur.fetchone()
    return (int(row[0]), row[1]) if row else None


def check_stats(stats: Counter[str], committed: CommittedEvents) -> None:
    """The soak exercised what it claims to: contention, late commits, rollbacks."""
    assert stats["concurrency_error"] > 0, stats
    assert stats["rolled_back"] > 0, stats
    assert stats["slept_before_commit"] > 0, stats
    assert stats["retryable_error"] > 0, stats
    assert len({c.stream_id for c in committed.values()}) > 50, "too few streams"
    assert len(committed) > 1000, f"only {len(committed)} events committed"


def check_commit_order_differs(seen: list[RecordedEvent]) -> None:
    """Some transaction got its id before a younger one inserted first: position alone would lie."""
    positions = [e.global_position for e in seen]
    assert any(a > b for a, b in pairwise(positions)), "xid order equalled position order"


@pytest.mark.slow
async def test_concurrent_writers_and_readers_agree_on_every_committed_event(
    database_url: str, pool: AsyncConnectionPool[Any], repo_root: Path
) -> None:
    print(f"soak seed {SEED}: {WRITERS} writers × {ITERATIONS} transactions")
    seen: tuple[list[RecordedEvent], list[RecordedEvent]] = ([], [])
    stop_runner = asyncio.Event()
    runner = CatchUpRunner(database_url, EventTypeCounts(), poll_interval=0.2)
    subscribers = [
        asyncio.create_task(subscribe_into(PostgresEventLog(pool), seen[0], 500)),
        asyncio.create_task(subscribe_into(PostgresEventLog(pool), seen[1], 37)),
    ]
    runner_task = asyncio.create_task(runner.run(stop_runner))
    log = PostgresEventLog(pool)
    try:
        committed, stats = await run_writers(database_url, repo_root)
        print(f"committed {len(committed)} events; outcomes {dict(sorted(stats.items()))}")

        async def everyone_caught_up() -> bool:
            if any(len(s) < len(committed) for s in seen):
                return False
            async with pool.connection() as conn:
                return await runner_position(conn) == await log.last_position()

        async def progress() -> str:
            async with pool.connection() as conn:
                position = await runner_position(conn)
            return (
                f"{len(committed)} committed, subscribers saw {[len(s) for s in seen]},"
                f" runner at {position}, log ends at {await log.last_position()}"
            )

        await wait_until(everyone_caught_up, progress)
    finally:
        stop_runner.set()
        for task in subscribers:
            task.cancel()
        outcomes = await asyncio.gather(runner_task, *subscribers, return_exceptions=True)
    for outcome in outcomes:
        if not isinstance(outcome, asyncio.CancelledError | None):
            raise outcome

    check_stats(stats, committed)
    for name, events in zip(("subscriber 1", "subscriber 2"), seen, strict=True):
        check_subscriber(name, events, committed)
    check_commit_order_differs(seen[0])

    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        assert await logged_ids(conn) == committed.keys()
        await check_read_models(conn, committed)
        assert_no_difference(await verify(conn, all_projections()), committed, "verify")
        assert_no_difference(await rebuild(conn, all_projections()), committed, "rebuild")
        assert_no_difference(await verify(conn, all_projections()), committed, "verify")
        await check_read_models(conn, committed)
