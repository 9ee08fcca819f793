"""The projection machinery end to end: inline, catch-up, crash, takeover, lost LISTEN, replay."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from ktrdr.eventlog import ANY, NO_STREAM, NewEvent, PostgresEventLog
from ktrdr.projections import replay
from ktrdr.projections.base import BoundInline
from ktrdr.projections.counts import EventTypeCounts, StreamTypeCounts
from ktrdr.projections.registry import all_projections
from ktrdr.projections.runner import CatchUpRunner

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def log(pool: AsyncConnectionPool[Any]) -> AsyncIterator[PostgresEventLog]:
    yield PostgresEventLog(pool, inline_projections=[BoundInline(StreamTypeCounts())])


async def append_many(log: PostgresEventLog, count: int, offset: int = 0) -> Counter[str]:
    types: Counter[str] = Counter()
    for i in range(offset, offset + count):
        event_type = ("Created", "Claimed", "Saved")[i % 3]
        await log.append(f"job-{i % 4}", [NewEvent(event_type, {"i": i})], ANY)
        types[event_type] += 1
    return types


def table(url: str, name: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            psycopg.sql.SQL("SELECT * FROM {}").format(psycopg.sql.Identifier(name))
        ).fetchall()
    return {key: count for key, count in rows}


async def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.fixture
def spawn(database_url: str, tmp_path: Path) -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(*flags: str) -> tuple[subprocess.Popen[bytes], Path]:
        markers = tmp_path / f"runner{len(procs)}"
        markers.mkdir()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.integration.runner_process",
                database_url,
                str(markers),
                *flags,
            ],
            cwd=REPO,
        )
        procs.append(proc)
        return proc, markers

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


async def test_inline_projection_reads_its_own_writes(
    log: PostgresEventLog, database_url: str
) -> None:
    await log.append("job-1", [NewEvent("A", {}), NewEvent("B", {})], ANY)
    assert table(database_url, "stream_type_counts") == {"job": 2}
    await log.append("agent-1", [NewEvent("A", {})], ANY)
    assert table(database_url, "stream_type_counts") == {"job": 2, "agent": 1}


async def test_retried_batch_is_projected_once(log: PostgresEventLog, database_url: str) -> None:
    batch = [NewEvent("A", {}), NewEvent("B", {})]
    await log.append("job-1", batch, NO_STREAM)
    again = await log.append("job-1", batch, NO_STREAM)
    assert again.duplicate
    assert table(database_url, "stream_type_counts") == {"job": 2}


async def test_catch_up_runner_applies_and_stores_its_position(
    log: PostgresEventLog, database_url: str
) -> None:
    expected = await append_many(log, 25)
    runner = CatchUpRunner(database_url, EventTypeCounts(), batch_size=10, poll_interval=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    await wait_for(lambda: table(database_url, "event_type_counts") == expected)
    expected += await append_many(log, 5, offset=25)
    await wait_for(lambda: table(database_url, "event_type_counts") == expected)
    stop.set()
    await asyncio.wait_for(task, 5)
    last = (await log.read_all(limit=100))[-1]
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT transaction_id::text, global_position FROM projection_positions"
            " WHERE name = 'event_type_counts'"
        ).fetchone()
    assert stored == (str(last.transaction_id), last.global_position)


async def test_runner_killed_before_commit_applies_each_event_once(
    log: PostgresEventLog, database_url: str, spawn: Any
) -> None:
    expected = await append_many(log, 30)
    proc, markers = spawn("hang-before-commit")
    await wait_for(lambda: (markers / "applying").exists(), timeout=30)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert table(database_url, "event_type_counts") == {}

    runner = CatchUpRunner(database_url, EventTypeCounts(), poll_interval=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    await wait_for(lambda: table(database_url, "event_type_counts") == expected)
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert table(database_url, "event_type_counts") == expected


async def test_second_runner_waits_then_takes_over(
    log: PostgresEventLog, database_url: str, spawn: Any
) -> None:
    expected = await append_many(log, 10)
    proc, markers = spawn()
    await wait_for(lambda: (markers / "active").exists(), timeout=30)

    standby = CatchUpRunner(
        database_url, EventTypeCounts(), poll_interval=0.1, lock_retry_interval=0.1
    )
    stop = asyncio.Event()
    task = asyncio.create_task(standby.run(stop))
    await wait_for(lambda: table(database_url, "event_type_counts") == expected)
    await asyncio.sleep(0.5)
    assert not standby.active, "two runners active at once"

    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    await wait_for(lambda: standby.active)
    expected += await append_many(log, 10, offset=10)
    await wait_for(lambda: table(database_url, "event_type_counts") == expected)
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_killed_listen_connection_only_delays_until_the_next_poll(
    log: PostgresEventLog, database_url: str
) -> None:
    runner = CatchUpRunner(database_url, EventTypeCounts(), poll_interval=0.3)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    await wait_for(lambda: runner.active)
    await asyncio.sleep(0.2)
    async with await AsyncConnection.connect(database_url, autocommit=True) as admin:
        cur = await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query = 'LISTEN ktrdr_events'"
        )
        assert [r[0] for r in await cur.fetchall()] == [True]
    expected = await append_many(log, 3)
    await wait_for(lambda: table(database_url, "event_type_counts") == expected, timeout=5)
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_verify_reports_a_tampered_read_model_and_rebuild_repairs_it(
    log: PostgresEventLog, database_url: str
) -> None:
    expected = await append_many(log, 12)
    runner = CatchUpRunner(database_url, EventTypeCounts(), poll_interval=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    await wait_for(lambda: table(database_url, "event_type_counts") == expected)
    stop.set()
    await asyncio.wait_for(task, 5)

    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        assert (await replay.verify(conn, all_projections())).ok
        await conn.execute("UPDATE stream_type_counts SET event_count = event_count + 1")
        await conn.execute("DELETE FROM event_type_counts WHERE event_type = 'Saved'")
        report = await replay.verify(conn, all_projections())
        assert {(d.table, d.side) for d in report.differences} == {
            ("stream_type_counts", "live only"),
            ("stream_type_counts", "rebuilt only"),
            ("event_type_counts", "rebuilt only"),
        }
        rebuilt = await replay.rebuild(conn, all_projections())
        assert rebuilt.events_replayed == {
            "stream_type_counts": 12,
            "operations": 12,
            "workers": 12,
            "api_tokens": 12,
            "event_type_counts": 12,
        }
        assert (await replay.verify(conn, all_projections())).ok
    assert table(database_url, "event_type_counts") == expected
    assert table(database_url, "stream_type_counts") == {"job": 12}
