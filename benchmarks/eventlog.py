"""Event log throughput, each figure next to a raw PostgreSQL baseline measured in the same run.

    .venv/bin/python benchmarks/eventlog.py [--quick] [--database-url URL]

On one scratch database (created, migrated and dropped by this run) it measures,
in events per second:

- catch-up: ``read_all`` paging from START against a raw ordered scan of
  ``raw_events``, a copy of ``events`` (the table has the same shape: columns,
  types, defaults, identity, constraints and indexes, but no triggers);
- a raw single-row INSERT (autocommit) into ``raw_events`` against ``append``
  of one event per transaction, and what bounds that ratio: the same INSERT
  returning what ``append`` returns, and a "guarded" INSERT, the least SQL with
  append's optimistic concurrency (one statement: read the stream's head, insert
  only at the expected version + 1, return position, xid and time);
- a raw 100-row INSERT per transaction against ``append`` of 100-event batches;
- 1 and 4 concurrent writer processes, raw INSERT against ``append`` (and the
  guarded INSERT, and ``append`` without NOTIFY, to show what bounds its scaling);
- ``append`` without its after-commit NOTIFY (what waking subscribers costs) and
  with the inline ``StreamTypeCounts`` projection.

Commit rates follow the disk's fsync latency, which other work on a shared
machine moves a lot from one second to the next, so the write cases of a round
alternate in small chunks and every figure is the median of its rounds.

Without ``--database-url`` (or KTRDR_BENCH_DATABASE_URL) an embedded PostgreSQL
is started in a temporary directory and removed afterwards. Only 127.0.0.1 (or
::1) and unix sockets are accepted. The run stops by itself: every wait has a
timeout, and the whole run is cancelled after RUN_TIMEOUT_SECONDS.

Each ``ratio`` line divides a figure by its baseline's (both measured in this run)
and says whether the issue's target is met; a target not met names the bound this
run measured for it (a ratio that PostgreSQL work the append cannot skip already
costs). ``WRONG RESULT`` lines report a scan that returned missing, repeated or
misordered events.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Barrier
from typing import Any, LiteralString, Protocol, cast

import psycopg
from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool

from ktrdr.bootstrap import database
from ktrdr.config import normalize_database_url, redact
from ktrdr.eventlog import START, NewEvent, Position, PostgresEventLog
from ktrdr.eventlog.postgres import InlineProjection
from ktrdr.eventlog.queries import EVENT_COLUMNS
from ktrdr.projections.base import BoundInline
from ktrdr.projections.counts import StreamTypeCounts

URL_ENV = "KTRDR_BENCH_DATABASE_URL"
BATCH = 100
WRITERS = 4
PAGE = 1000
WARM_UP_EVENTS = 10
JOB_TIMEOUT_SECONDS = 300.0
RUN_TIMEOUT_SECONDS = 1200.0
RAW_SCALES = 1.2
"""Below this 4:1 scaling of raw INSERT the server does not scale, and append is not judged."""
READY = "ready"

# -- SQL ----------------------------------------------------------------------------------

SERVER_VERSION: LiteralString = "SHOW server_version"

# Same columns, types, defaults, identity, constraints and indexes as events; no triggers.
CREATE_RAW_TABLE: LiteralString = "CREATE TABLE raw_events (LIKE events INCLUDING ALL)"

RAW_INSERT_ROW: LiteralString = """
INSERT INTO raw_events (stream_id, stream_version, event_id, event_type, schema_version,
                        data, metadata)
VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s::jsonb)
"""

# What append returns of each event it writes.
RETURNING: LiteralString = (
    "RETURNING global_position, transaction_id::text, stream_version, recorded_at"
)

RAW_INSERT_ROW_RETURNING: LiteralString = RAW_INSERT_ROW + RETURNING

# The least SQL that keeps append's optimistic concurrency for one event: one statement
# reads the stream's head (an index probe and the heap visit of its newest row) and
# inserts only if the head is the expected version. No xid guard (autocommit needs none),
# no ANY/STREAM_EXISTS, no batch: what is left is what any append pays in PostgreSQL.
RAW_GUARDED_INSERT: LiteralString = """
INSERT INTO raw_events (stream_id, stream_version, event_id, event_type, schema_version,
                        data, metadata)
SELECT %(stream_id)s, %(expected)s + 1, %(event_id)s, %(event_type)s, %(schema_version)s,
       %(data)s::jsonb, %(metadata)s::jsonb
WHERE coalesce((SELECT max(stream_version) FROM raw_events
                WHERE stream_id = %(stream_id)s), 0) = %(expected)s
RETURNING global_position, transaction_id::text, stream_version, recorded_at
"""

RAW_INSERT_BATCH: LiteralString = """
INSERT INTO raw_events (stream_id, stream_version, event_id, event_type, schema_version,
                        data, metadata)
SELECT %(stream_id)s, %(first_version)s + e.ord - 1, e.event_id, e.event_type,
       e.schema_version, e.data::jsonb, e.metadata::jsonb
FROM unnest(%(event_ids)s::uuid[], %(event_types)s::text[], %(schema_versions)s::int[],
            %(data)s::text[], %(metadata)s::text[])
     WITH ORDINALITY AS e(event_id, event_type, schema_version, data, metadata, ord)
"""

# The same columns as read_all. ORDER BY names the table's columns: EVENT_COLUMNS has an
# output column "transaction_id" (the ::text cast keeps the name), and a bare ORDER BY
# transaction_id would sort by that text, in no index's order.
RAW_SCAN = sql.SQL(
    "SELECT {columns} FROM raw_events"
    " ORDER BY raw_events.transaction_id, raw_events.global_position"
).format(columns=sql.SQL(EVENT_COLUMNS))

RAW_PAGE = sql.SQL(
    "SELECT {columns} FROM raw_events"
    " WHERE (transaction_id, global_position) > (%(tx)s::text::xid8, %(pos)s)"
    " ORDER BY raw_events.transaction_id, raw_events.global_position LIMIT %(limit)s"
).format(columns=sql.SQL(EVENT_COLUMNS))

COUNT_EVENTS: LiteralString = "SELECT count(*) FROM events"
TRUNCATE_RAW: LiteralString = "TRUNCATE raw_events"
COPY_EVENTS_TO_RAW: LiteralString = (
    "INSERT INTO raw_events OVERRIDING SYSTEM VALUE SELECT * FROM events"
    " ORDER BY events.transaction_id, events.global_position"
)
RESTART_RAW_IDENTITY: LiteralString = (
    "SELECT setval(pg_get_serial_sequence('raw_events', 'global_position'),"
    " (SELECT coalesce(max(global_position), 0) + 1 FROM raw_events), false)"
)
VACUUM_TABLES: LiteralString = "VACUUM (ANALYZE) events, raw_events"

# -- Sizes, samples, figures, ratios ------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    single: int
    """Events per case and round, 1 per transaction."""
    single_chunk: int
    """The 1-event cases alternate every this many events."""
    batched: int
    """Events per case and round, 100 per transaction."""
    batched_chunk: int
    writer_events: int
    """Events per writer process and round, 1 per transaction."""
    writer_chunk: int
    catch_up: int
    """Events in the table that catch-up reads."""
    rounds: int


DEFAULT_SIZES = Sizes(
    single=1000,
    single_chunk=100,
    batched=10_000,
    batched_chunk=500,
    writer_events=1000,
    writer_chunk=250,
    catch_up=100_000,
    rounds=5,
)
QUICK_SIZES = Sizes(
    single=100,
    single_chunk=50,
    batched=1000,
    batched_chunk=500,
    writer_events=100,
    writer_chunk=100,
    catch_up=3000,
    rounds=1,
)


@dataclass(frozen=True)
class Sample:
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


@dataclass(frozen=True)
class Figure:
    name: str
    samples: tuple[Sample, ...]

    @property
    def median(self) -> Sample:
        ordered = sorted(self.samples, key=lambda s: s.rate)
        return ordered[(len(ordered) - 1) // 2]

    @property
    def rate(self) -> float:
        return self.median.rate

    def line(self) -> str:
        sample = self.median
        rates = [s.rate for s in self.samples]
        spread = f"{min(rates):>9,.0f} – {max(rates):<9,.0f}" if len(rates) > 1 else ""
        return (
            f"  {self.name:<50} {sample.events:>8,} {sample.seconds:>8.3f}"
            f" {sample.rate:>10,.0f}   {spread}"
        )


FIGURE_HEADER = f"  {'median round':<50} {'N':>8} {'seconds':>8} {'events/s':>10}   rounds' range"


@dataclass(frozen=True)
class Ratio:
    label: str
    value: float
    target: float | None = None
    note: str = ""
    bound: Ratio | None = None
    """The same ratio for SQL doing only what the append cannot skip: its ceiling."""

    def line(self) -> str:
        if self.target is None:
            verdict = self.note or "(information)"
        else:
            met = self.value >= self.target
            verdict = f"target >= {self.target:.2f}  {'met' if met else 'NOT MET'}  {self.note}"
            if not met and self.bound is not None:
                verdict += self.bound_note(self.target, self.bound)
        return f"ratio  {self.label:<52} {self.value:>6.2f}   {verdict.rstrip()}"

    @staticmethod
    def bound_note(target: float, bound: Ratio) -> str:
        if bound.value < target:
            return f"(bounded by PostgreSQL: {bound.label} = {bound.value:.2f})"
        return f"(not a PostgreSQL bound: {bound.label} = {bound.value:.2f})"


RATIO_LABELS = (
    "append 1 event/tx : raw INSERT 1 row/tx",
    "append 100 events/tx : raw INSERT 100 rows/tx",
    "read_all catch-up : raw ordered scan",
    "read_all catch-up : raw scan paged by the same limit",
    "raw INSERT, 4 writers : 1 writer",
    "append, 4 writers : 1 writer",
    "append scaling : raw INSERT scaling (4 writers)",
    "append, 4 writers : raw INSERT, 4 writers",
    "append 1/tx, NOTIFY on : off",
    "append 100/tx, NOTIFY on : off",
    "append 4 writers, NOTIFY on : off",
    "append 1/tx, inline StreamTypeCounts : none",
    "raw INSERT RETURNING : raw INSERT (1 row/tx)",
    "raw guarded INSERT : raw INSERT (1 row/tx)",
    "append 1 event/tx : raw guarded INSERT 1 row/tx",
    "raw guarded INSERT scaling : raw INSERT scaling",
    "append scaling, NOTIFY off : raw INSERT scaling",
)


def out(text: str = "") -> None:
    print(text, flush=True)


# -- Events and payloads ------------------------------------------------------------------


def checkpoint_data(operation: str, sequence: int) -> dict[str, Any]:
    """A realistic ~200-byte event payload."""
    return {
        "operation_id": operation,
        "sequence": sequence,
        "epoch": sequence % 100,
        "metrics": {"loss": 0.1234 + sequence % 7 / 100, "val_loss": 0.2345, "acc": 0.9123},
        "artifacts_path": f"artifacts/{operation}/epoch-{sequence:06d}",
        "size_bytes": 48_213_504 + sequence,
    }


def make_events(count: int) -> list[NewEvent]:
    operation = "op-" + uuid.uuid4().hex[:12]
    correlation = str(uuid.uuid4())
    return [
        NewEvent(
            "CheckpointSaved",
            checkpoint_data(operation, i),
            metadata={"correlation_id": correlation, "actor": "worker-bench-1", "attempt": 1},
        )
        for i in range(count)
    ]


def new_stream() -> str:
    return "operation-" + uuid.uuid4().hex


def dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, allow_nan=False)


def row_params(stream_id: str, version: int, event: NewEvent) -> tuple[Any, ...]:
    return (
        stream_id,
        version,
        event.event_id,
        event.event_type,
        event.schema_version,
        dumps(event.data),
        dumps(event.metadata),
    )


def batch_params(stream_id: str, first_version: int, events: Sequence[NewEvent]) -> dict[str, Any]:
    return {
        "stream_id": stream_id,
        "first_version": first_version,
        "event_ids": [e.event_id for e in events],
        "event_types": [e.event_type for e in events],
        "schema_versions": [e.schema_version for e in events],
        "data": [dumps(e.data) for e in events],
        "metadata": [dumps(e.metadata) for e in events],
    }


def batched(events: Sequence[NewEvent], size: int) -> list[Sequence[NewEvent]]:
    return [events[i : i + size] for i in range(0, len(events), size)]


# -- Writers: each appends to a stream of its own -----------------------------------------


class Writer(Protocol):
    async def write(self, events: Sequence[NewEvent]) -> None: ...


class RawRows:
    """Raw single-row INSERTs, each its own (autocommit) transaction."""

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self._conn, self._stream, self._version = conn, new_stream(), 0

    async def write(self, events: Sequence[NewEvent]) -> None:
        for event in events:
            self._version += 1
            await self._conn.execute(RAW_INSERT_ROW, row_params(self._stream, self._version, event))


class RawReturningRows:
    """Raw single-row INSERTs that return what append returns."""

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self._conn, self._stream, self._version = conn, new_stream(), 0

    async def write(self, events: Sequence[NewEvent]) -> None:
        for event in events:
            self._version += 1
            params = row_params(self._stream, self._version, event)
            cur = await self._conn.execute(RAW_INSERT_ROW_RETURNING, params)
            await cur.fetchall()


class RawGuardedRows:
    """Raw single-row INSERTs at the expected version, checked against the stream's head."""

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self._conn, self._stream, self._version = conn, new_stream(), 0

    async def write(self, events: Sequence[NewEvent]) -> None:
        for event in events:
            params = {
                "stream_id": self._stream,
                "expected": self._version,
                "event_id": event.event_id,
                "event_type": event.event_type,
                "schema_version": event.schema_version,
                "data": dumps(event.data),
                "metadata": dumps(event.metadata),
            }
            cur = await self._conn.execute(RAW_GUARDED_INSERT, params)
            if not await cur.fetchall():
                raise RuntimeError(f"guarded INSERT refused at version {self._version}")
            self._version += 1


class RawBatches:
    """One raw INSERT … SELECT FROM unnest(…) of 100 rows per (autocommit) transaction."""

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self._conn, self._stream, self._version = conn, new_stream(), 0

    async def write(self, events: Sequence[NewEvent]) -> None:
        for batch in batched(events, BATCH):
            params = batch_params(self._stream, self._version + 1, batch)
            await self._conn.execute(RAW_INSERT_BATCH, params)
            self._version += len(batch)


class RawPipelinedBatches:
    """100 single-row INSERTs in one transaction (psycopg's executemany pipelines them)."""

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self._conn, self._stream, self._version = conn, new_stream(), 0

    async def write(self, events: Sequence[NewEvent]) -> None:
        for batch in batched(events, BATCH):
            rows = [row_params(self._stream, self._version + i, e) for i, e in enumerate(batch, 1)]
            async with self._conn.transaction(), self._conn.cursor() as cur:
                await cur.executemany(RAW_INSERT_ROW, rows)
            self._version += len(batch)


class Appends:
    """``append`` of ``size`` events per transaction, with the expected version."""

    def __init__(self, log: PostgresEventLog, size: int) -> None:
        self._log, self._size, self._stream, self._version = log, size, new_stream(), 0

    async def write(self, events: Sequence[NewEvent]) -> None:
        for batch in batched(events, self._size):
            result = await self._log.append(self._stream, batch, self._version)
            self._version = result.stream_version


# -- Rounds -------------------------------------------------------------------------------


def report(samples: dict[str, list[Sample]]) -> dict[str, Figure]:
    figures = {name: Figure(name, tuple(s)) for name, s in samples.items()}
    for figure in figures.values():
        out(figure.line())
    return figures


Case = Callable[[], Awaitable[Sample]]
"""Runs one chunk of a measurement and times it."""


def add(a: Sample, b: Sample) -> Sample:
    return Sample(a.events + b.events, a.seconds + b.seconds)


async def interleaved_round(cases: dict[str, Case], cycles: int) -> dict[str, Sample]:
    """Every case runs ``cycles`` chunks, in turns, alternating the order of the turns."""
    totals = dict.fromkeys(cases, Sample(0, 0.0))
    for cycle in range(cycles):
        for name in list(cases) if cycle % 2 == 0 else list(reversed(cases)):
            totals[name] = add(totals[name], await cases[name]())
    return totals


async def measure(cases: dict[str, Case], rounds: int, cycles: int = 1) -> dict[str, Figure]:
    samples: dict[str, list[Sample]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, sample in (await interleaved_round(cases, cycles)).items():
            samples[name].append(sample)
    return report(samples)


def write_case(writer: Writer, chunk: int) -> Case:
    async def run() -> Sample:
        events = make_events(chunk)
        start = time.perf_counter()
        await writer.write(events)
        return Sample(chunk, time.perf_counter() - start)

    return run


async def measure_writes(
    writers: dict[str, Writer], events: int, chunk: int, rounds: int
) -> dict[str, Figure]:
    for writer in writers.values():  # prepared statements, pool connections, first pages
        await writer.write(make_events(WARM_UP_EVENTS))
    cases = {name: write_case(writer, chunk) for name, writer in writers.items()}
    return await measure(cases, rounds, cycles=max(1, events // chunk))


@contextlib.asynccontextmanager
async def open_pool(url: str, max_size: int = 4) -> AsyncIterator[AsyncConnectionPool[Any]]:
    # As ktrdr/bootstrap/system.py opens it: autocommit, a single-statement append is its own
    # transaction.
    kwargs: dict[str, Any] = {"autocommit": True}
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        url, min_size=1, max_size=max_size, kwargs=kwargs, open=False
    )
    await pool.open(wait=True, timeout=30)
    try:
        yield pool
    finally:
        await pool.close()


@dataclass(frozen=True)
class Bench:
    url: str
    sizes: Sizes
    conn: AsyncConnection[Any]
    """Runs the raw baselines and the set-up."""
    log: PostgresEventLog
    quiet_log: PostgresEventLog
    """Appends without the after-commit NOTIFY."""
    inline_log: PostgresEventLog
    problems: list[str] = field(default_factory=list)


async def measure_single_writes(bench: Bench) -> dict[str, Figure]:
    writers: dict[str, Writer] = {
        "raw INSERT, 1 row/tx (autocommit)": RawRows(bench.conn),
        "raw INSERT ... RETURNING, 1 row/tx": RawReturningRows(bench.conn),
        "raw guarded INSERT, 1 row/tx": RawGuardedRows(bench.conn),
        "append, 1 event/tx": Appends(bench.log, 1),
        "append, 1 event/tx, NOTIFY off": Appends(bench.quiet_log, 1),
        "append, 1 event/tx, inline StreamTypeCounts": Appends(bench.inline_log, 1),
    }
    sizes = bench.sizes
    return await measure_writes(writers, sizes.single, sizes.single_chunk, sizes.rounds)


async def measure_batch_writes(bench: Bench) -> dict[str, Figure]:
    writers: dict[str, Writer] = {
        "raw INSERT, 100 rows/tx (one unnest statement)": RawBatches(bench.conn),
        "raw INSERT, 100 rows/tx (executemany, pipelined)": RawPipelinedBatches(bench.conn),
        "append, 100 events/tx": Appends(bench.log, BATCH),
        "append, 100 events/tx, NOTIFY off": Appends(bench.quiet_log, BATCH),
    }
    sizes = bench.sizes
    return await measure_writes(writers, sizes.batched, sizes.batched_chunk, sizes.rounds)


# -- Concurrent writers (one process, event loop and connection each) ---------------------


@dataclass(frozen=True)
class WriterJob:
    kind: str
    """"raw", "guarded", "append" or "append, NOTIFY off"."""
    writers: int
    events: int
    """Per writer."""


def writer_process(url: str, index: int, barrier: Barrier, pipe: Connection) -> None:
    """A writer's life, on its own event loop and connections: the jobs the parent sends."""
    try:
        asyncio.run(serve_jobs(url, barrier, pipe))
    except BaseException as exc:  # reported to the parent, which fails the run
        barrier.abort()
        with contextlib.suppress(OSError):
            pipe.send(f"writer {index} failed: {exc!r}")


async def serve_jobs(url: str, barrier: Barrier, pipe: Connection) -> None:
    async with (
        await AsyncConnection.connect(url, autocommit=True) as conn,
        open_pool(url, max_size=1) as pool,
    ):
        writers: dict[str, Writer] = {
            "raw": RawRows(conn),
            "guarded": RawGuardedRows(conn),
            "append": Appends(PostgresEventLog(pool), 1),
            "append, NOTIFY off": Appends(PostgresEventLog(pool, notify=False), 1),
        }
        for writer in writers.values():
            await writer.write(make_events(WARM_UP_EVENTS))
        pipe.send(READY)
        while (job := await asyncio.to_thread(pipe.recv)) is not None:
            pipe.send(await synchronised(barrier, job, writers[job.kind]))


async def synchronised(barrier: Barrier, job: WriterJob, writer: Writer) -> tuple[float, float]:
    """Write with the job's other writers; perf_counter is system-wide."""
    events = make_events(job.events)
    if job.writers > 1:
        await asyncio.to_thread(barrier.wait, JOB_TIMEOUT_SECONDS)
    start = time.perf_counter()
    await writer.write(events)
    return start, time.perf_counter()


class Writers:
    """WRITERS long-lived spawned processes: their start-up is paid once and never timed."""

    def __init__(self, url: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._barrier = context.Barrier(WRITERS)
        self._pipes: list[Connection] = []
        self._processes: list[BaseProcess] = []
        for index in range(WRITERS):
            parent_end, child_end = context.Pipe()
            process = context.Process(
                target=writer_process,
                args=(url, index, self._barrier, child_end),
                name=f"bench-writer-{index}",
                daemon=True,
            )
            process.start()
            child_end.close()
            self._pipes.append(parent_end)
            self._processes.append(process)
        try:  # connected and warmed up before anything is timed
            for pipe in self._pipes:
                self._answer(pipe)
        except BaseException:
            self.close()
            raise

    async def run(self, job: WriterJob) -> Sample:
        pipes = self._pipes[: job.writers]
        for pipe in pipes:
            pipe.send(job)
        spans = [await asyncio.to_thread(self._result, pipe) for pipe in pipes]
        start = min(s for s, _ in spans)
        end = max(e for _, e in spans)
        return Sample(job.events * job.writers, end - start)

    @staticmethod
    def _answer(pipe: Connection) -> object:
        if not pipe.poll(JOB_TIMEOUT_SECONDS):
            raise TimeoutError(f"a writer did not answer within {JOB_TIMEOUT_SECONDS:.0f} s")
        answer: object = pipe.recv()
        if isinstance(answer, str) and answer != READY:
            raise RuntimeError(answer)
        return answer

    @classmethod
    def _result(cls, pipe: Connection) -> tuple[float, float]:
        start, end = cast(tuple[float, float], cls._answer(pipe))
        return float(start), float(end)

    def close(self) -> None:
        for pipe in self._pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        for pipe in self._pipes:
            pipe.close()


async def measure_concurrent_writes(bench: Bench, writers: Writers) -> dict[str, Figure]:
    chunk = bench.sizes.writer_chunk

    def case(kind: str, count: int) -> Case:
        return lambda: writers.run(WriterJob(kind, count, chunk))

    cases = {
        "raw INSERT 1 row/tx, 1 writer process": case("raw", 1),
        "raw INSERT 1 row/tx, 4 writer processes": case("raw", WRITERS),
        "raw guarded INSERT 1 row/tx, 1 writer process": case("guarded", 1),
        "raw guarded INSERT 1 row/tx, 4 writer processes": case("guarded", WRITERS),
        "append 1 event/tx, 1 writer process": case("append", 1),
        "append 1 event/tx, 4 writer processes": case("append", WRITERS),
        "append 1 event/tx, 1 writer, NOTIFY off": case("append, NOTIFY off", 1),
        "append 1 event/tx, 4 writers, NOTIFY off": case("append, NOTIFY off", WRITERS),
    }
    cycles = max(1, bench.sizes.writer_events // chunk)
    return await measure(cases, bench.sizes.rounds, cycles)


# -- Catch-up -----------------------------------------------------------------------------

RAW_SCAN_NAME = "raw ordered scan (one query, fetchall)"
RAW_PAGED_NAME = f"raw ordered scan, paged by {PAGE}"
READ_ALL_NAME = f"read_all catch-up from START, limit {PAGE}"


Seen = list[Position] | None
"""When a list, a scan appends every position it reads (the untimed, checked pass)."""


async def raw_scan(conn: AsyncConnection[Any], seen: Seen = None) -> int:
    cur = await conn.execute(RAW_SCAN)
    rows = await cur.fetchall()
    if seen is not None:
        seen.extend(Position(int(r[1]), r[0]) for r in rows)
    return len(rows)


async def raw_scan_paged(conn: AsyncConnection[Any], limit: int, seen: Seen = None) -> int:
    after, count = START, 0
    while True:
        params = {"tx": str(after.transaction_id), "pos": after.global_position, "limit": limit}
        cur = await conn.execute(RAW_PAGE, params)
        rows = await cur.fetchall()
        count += len(rows)
        if seen is not None:
            seen.extend(Position(int(r[1]), r[0]) for r in rows)
        if len(rows) < limit:
            return count
        after = Position(int(rows[-1][1]), rows[-1][0])


async def read_all_catch_up(log: PostgresEventLog, limit: int, seen: Seen = None) -> int:
    after, count = START, 0
    while True:
        batch = await log.read_all(after, limit)
        count += len(batch)
        if seen is not None:
            seen.extend(e.position for e in batch)
        if len(batch) < limit:
            return count
        after = batch[-1].position


Scan = Callable[[Seen], Awaitable[int]]


def scan_problem(name: str, seen: Sequence[Position], rows: int) -> str | None:
    """What is wrong with a full scan that read ``seen``, if anything."""
    in_order = all(a < b for a, b in zip(seen, seen[1:], strict=False))
    if len(seen) == rows and in_order:
        return None
    order = "in" if in_order else "OUT OF"
    return f"{name}: {len(seen):,} events for {rows:,} rows, {order} position order"


async def check_scans(bench: Bench, scans: dict[str, Scan], rows: int) -> None:
    """One untimed pass of every scan: it warms the cache and checks what the scan returns."""
    for name, scan in scans.items():
        seen: list[Position] = []
        await scan(seen)
        problem = scan_problem(name, seen, rows)
        if problem:
            bench.problems.append(problem)
            out(f"  WRONG RESULT  {problem}")


def scan_case(scan: Scan) -> Case:
    async def run() -> Sample:
        start = time.perf_counter()
        count = await scan(None)
        return Sample(count, time.perf_counter() - start)

    return run


async def fill(bench: Bench, total: int) -> int:
    """Append 100-event batches until events holds ``total`` rows; returns the row count."""
    cur = await bench.conn.execute(COUNT_EVENTS)
    row = await cur.fetchone()
    present = int(row[0]) if row else 0
    missing = max(0, total - present)
    per_stream = 10 * BATCH
    for start in range(0, missing, per_stream):
        await Appends(bench.log, BATCH).write(make_events(min(per_stream, missing - start)))
    return present + missing


async def prepare_catch_up(bench: Bench) -> int:
    rows = await fill(bench, bench.sizes.catch_up)
    for statement in (TRUNCATE_RAW, COPY_EVENTS_TO_RAW, RESTART_RAW_IDENTITY, VACUUM_TABLES):
        await bench.conn.execute(statement)
    return rows


async def measure_catch_up(bench: Bench) -> dict[str, Figure]:
    rows = await prepare_catch_up(bench)
    out(f"  ({rows:,} events in events and in raw_events; pages of {PAGE})")
    scans: dict[str, Scan] = {
        RAW_SCAN_NAME: lambda seen: raw_scan(bench.conn, seen),
        RAW_PAGED_NAME: lambda seen: raw_scan_paged(bench.conn, PAGE, seen),
        READ_ALL_NAME: lambda seen: read_all_catch_up(bench.log, PAGE, seen),
    }
    await check_scans(bench, scans, rows)
    return await measure({name: scan_case(s) for name, s in scans.items()}, bench.sizes.rounds)


# -- Ratios -------------------------------------------------------------------------------


def ratio(f: dict[str, Figure], label: str, a: str, b: str, target: float | None = None) -> Ratio:
    return Ratio(label, f[a].rate / f[b].rate, target)


def scaling(f: dict[str, Figure], one: str, four: str) -> float:
    return f[four].rate / f[one].rate


def scaling_ratios(f: dict[str, Figure]) -> list[Ratio]:
    raw_4, raw_1 = (
        "raw INSERT 1 row/tx, 4 writer processes",
        "raw INSERT 1 row/tx, 1 writer process",
    )
    app_4, app_1 = "append 1 event/tx, 4 writer processes", "append 1 event/tx, 1 writer process"
    raw = scaling(f, raw_1, raw_4)
    app = scaling(f, app_1, app_4)
    guarded = scaling(
        f,
        "raw guarded INSERT 1 row/tx, 1 writer process",
        "raw guarded INSERT 1 row/tx, 4 writer processes",
    )
    quiet = scaling(
        f, "append 1 event/tx, 1 writer, NOTIFY off", "append 1 event/tx, 4 writers, NOTIFY off"
    )
    judged = raw >= RAW_SCALES
    bound = Ratio(RATIO_LABELS[15], guarded / raw)
    return [
        Ratio(RATIO_LABELS[4], raw),
        Ratio(RATIO_LABELS[5], app),
        Ratio(
            RATIO_LABELS[6],
            app / raw,
            0.8 if judged else None,
            "" if judged else f"(not judged: raw INSERT scales {raw:.2f} < {RAW_SCALES})",
            bound,
        ),
        bound,
        Ratio(RATIO_LABELS[16], quiet / raw),
        ratio(f, RATIO_LABELS[7], app_4, raw_4),
    ]


def against_fastest(f: dict[str, Figure], label: str, a: str, baselines: Sequence[str]) -> Ratio:
    """``a`` against the fastest of ``baselines`` (the strictest comparison)."""
    base = max((f[name] for name in baselines), key=lambda figure: figure.rate)
    return Ratio(label, f[a].rate / base.rate, 0.8, f"(baseline: {base.name})")


def single_event_ratios(f: dict[str, Figure]) -> list[Ratio]:
    raw, append = "raw INSERT, 1 row/tx (autocommit)", "append, 1 event/tx"
    guarded = "raw guarded INSERT, 1 row/tx"
    bound = ratio(f, RATIO_LABELS[13], guarded, raw)
    return [
        Ratio(RATIO_LABELS[0], f[append].rate / f[raw].rate, 0.9, bound=bound),
        ratio(f, RATIO_LABELS[12], "raw INSERT ... RETURNING, 1 row/tx", raw),
        bound,
        ratio(f, RATIO_LABELS[14], append, guarded),
    ]


def all_ratios(f: dict[str, Figure]) -> list[Ratio]:
    labels = RATIO_LABELS
    raw_batches = (
        "raw INSERT, 100 rows/tx (one unnest statement)",
        "raw INSERT, 100 rows/tx (executemany, pipelined)",
    )
    return [
        *single_event_ratios(f),
        against_fastest(f, labels[1], "append, 100 events/tx", raw_batches),
        against_fastest(f, labels[2], READ_ALL_NAME, (RAW_SCAN_NAME, RAW_PAGED_NAME)),
        ratio(f, labels[3], READ_ALL_NAME, RAW_PAGED_NAME),
        *scaling_ratios(f),
        ratio(f, labels[8], "append, 1 event/tx", "append, 1 event/tx, NOTIFY off"),
        ratio(f, labels[9], "append, 100 events/tx", "append, 100 events/tx, NOTIFY off"),
        ratio(
            f,
            labels[10],
            "append 1 event/tx, 4 writer processes",
            "append 1 event/tx, 4 writers, NOTIFY off",
        ),
        ratio(f, labels[11], "append, 1 event/tx, inline StreamTypeCounts", "append, 1 event/tx"),
    ]


# -- The run ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def bench_on(url: str, sizes: Sizes) -> AsyncIterator[Bench]:
    async with (
        await AsyncConnection.connect(url, autocommit=True) as conn,
        open_pool(url) as pool,
    ):
        await conn.execute(CREATE_RAW_TABLE)
        inline: list[InlineProjection] = [BoundInline(StreamTypeCounts())]
        yield Bench(
            url,
            sizes,
            conn,
            PostgresEventLog(pool),
            PostgresEventLog(pool, notify=False),
            PostgresEventLog(pool, inline_projections=inline),
        )


async def run_benchmarks(url: str, sizes: Sizes) -> tuple[list[Ratio], list[str]]:
    async with bench_on(url, sizes) as bench:
        out(FIGURE_HEADER)
        # Catch-up first: it fills events (and its copy raw_events) to a known size,
        # and the writes below go into tables of that size.
        out("catch-up")
        figures = await measure_catch_up(bench)
        out("single writer, 1 event per transaction (cases alternate every chunk)")
        figures |= await measure_single_writes(bench)
        out("single writer, 100 events per transaction (cases alternate every chunk)")
        figures |= await measure_batch_writes(bench)
        out(f"concurrent writers (1 and {WRITERS} processes, each on its own streams)")
        writers = await asyncio.to_thread(Writers, url)
        try:
            figures |= await measure_concurrent_writes(bench, writers)
        finally:
            await asyncio.to_thread(writers.close)
        return all_ratios(figures), bench.problems


def print_header(url: str, sizes: Sizes) -> None:
    with psycopg.connect(url) as conn:
        row = conn.execute(SERVER_VERSION).fetchone()
    event = make_events(1)[0]
    out(f"ktrdr event log benchmark — PostgreSQL {row[0] if row else '?'} at {redact(url)}")
    out(
        f"payload: {len(dumps(event.data))} B data + {len(dumps(event.metadata))} B metadata;"
        f" median of {sizes.rounds} round(s); pool: autocommit, no inline projections"
    )
    out()


def run(url: str, sizes: Sizes) -> list[Ratio]:
    print_header(url, sizes)
    ratios, problems = asyncio.run(
        asyncio.wait_for(run_benchmarks(url, sizes), RUN_TIMEOUT_SECONDS)
    )
    out()
    for r in ratios:
        out(r.line())
    for problem in problems:
        out(f"WRONG RESULT  {problem}")
    return ratios


# -- Databases ----------------------------------------------------------------------------


def scratch_database(admin_url: str) -> contextlib.AbstractContextManager[str]:
    """A migrated database of this run's own, dropped at the end whatever happens."""
    return database.scratch_database(admin_url, "ktrdr_bench")


@contextlib.contextmanager
def server(database_url: str | None) -> Iterator[str]:
    if database_url is None:
        with database.throwaway_server("ktrdr-bench-") as url:
            yield url
        return
    url = normalize_database_url(database_url)
    database.check_local(url)
    yield url


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="ktrdr event log throughput against raw SQL")
    parser.add_argument("--quick", action="store_true", help="small counts, one round")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(URL_ENV) or None,
        help=f"a server to use instead of an embedded one (also {URL_ENV});"
        " a scratch database is created on it and dropped",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK_SIZES if args.quick else DEFAULT_SIZES
    started = time.perf_counter()
    with server(args.database_url) as admin_url, scratch_database(admin_url) as url:
        run(url, sizes)
    out(f"\ndone in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
