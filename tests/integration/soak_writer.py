"""One writer process of the concurrency soak (tests/integration/test_soak.py).

Run as ``python -m tests.integration.soak_writer URL WRITER SEED ITERATIONS DEADLINE``.
It connects, prints ``ready``, waits for a line on stdin, then appends random
batches to hot and cold streams, each in an explicit transaction that may take
its xid early, sleep, or roll back. It prints one JSON document: the events of
every transaction that committed, and how often each outcome happened.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection, errors

from ktrdr.eventlog import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    AppendResult,
    ConcurrencyError,
    Expected,
    NewEvent,
    RetryableAppendError,
    append_on,
)
from ktrdr.projections.base import BoundInline
from ktrdr.projections.counts import StreamTypeCounts

HOT_STREAMS = ("hot-0", "hot-1", "hot-2")
COLD_TYPES = (
    "job",
    "task",
    "agent",
    "backtest",
)  # not operation-/worker-: those are domain streams
COLD_PER_TYPE = 60
EVENT_TYPES = ("Started", "Progressed", "CheckpointSaved", "Heartbeat", "Finished")
ATTEMPTS = 3

STREAM_HEAD = "SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = %(s)s"


class Rollback(Exception):
    """Raised on purpose inside a transaction so that it rolls back."""


@dataclass
class Plan:
    """The random choices of one transaction, drawn before it starts."""

    stream_id: str
    events: list[NewEvent]
    expectation: str
    """How the expected version is given: "exact" (read from the stream), "any" or "exists"."""
    early_xid: float
    """Seconds to hold an xid before the append; 0 takes none early."""
    sleep_before: float
    sleep_after: float
    roll_back: bool


@dataclass
class Outcomes:
    committed: list[dict[str, Any]] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)


def draw_plan(rng: random.Random, writer: int, iteration: int) -> Plan:
    if rng.random() < 0.5:
        stream_id = rng.choice(HOT_STREAMS)
    else:
        stream_id = f"{rng.choice(COLD_TYPES)}-{rng.randrange(COLD_PER_TYPE)}"
    events = [
        NewEvent(
            event_type=rng.choice(EVENT_TYPES),
            data={"writer": writer, "iteration": iteration, "index": index},
            metadata={"actor": f"soak-writer-{writer}"},
            event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        )
        for index in range(rng.randint(1, 5))
    ]
    return Plan(
        stream_id=stream_id,
        events=events,
        expectation=rng.choices(("exact", "any", "exists"), weights=(75, 20, 5))[0],
        early_xid=rng.uniform(0.001, 0.02) if rng.random() < 0.15 else 0.0,
        sleep_before=rng.uniform(0.001, 0.03) if rng.random() < 0.15 else 0.0,
        sleep_after=rng.uniform(0.001, 0.05) if rng.random() < 0.2 else 0.0,
        roll_back=rng.random() < 0.1,
    )


async def expected_version(conn: AsyncConnection[Any], plan: Plan) -> Expected:
    if plan.expectation == "any":
        return ANY
    cur = await conn.execute(STREAM_HEAD, {"s": plan.stream_id})
    row = await cur.fetchone()
    version = int(row[0]) if row else 0
    if version == 0:
        return NO_STREAM
    return STREAM_EXISTS if plan.expectation == "exists" else version


async def transaction_body(
    conn: AsyncConnection[Any], plan: Plan, projection: BoundInline, stats: Counter[str]
) -> AppendResult:
    if plan.early_xid:
        # An xid taken a moment before the append: the append's guard must refuse
        # it when the stream's last event belongs to a newer transaction.
        await conn.execute("SELECT pg_current_xact_id(), pg_sleep(%s)", [plan.early_xid])
        stats["early_xid"] += 1
    expected = await expected_version(conn, plan)
    if plan.sleep_before:
        await conn.execute("SELECT pg_sleep(%s)", [plan.sleep_before])
        stats["slept_before_append"] += 1
    result = await append_on(conn, plan.stream_id, plan.events, expected)
    await projection.apply(conn, result.events)
    if plan.sleep_after:
        # Holds an older xid open while younger transactions commit.
        await conn.execute("SELECT pg_sleep(%s)", [plan.sleep_after])
        stats["slept_before_commit"] += 1
    if plan.roll_back:
        raise Rollback
    return result


async def run_transaction(
    conn: AsyncConnection[Any], plan: Plan, projection: BoundInline, outcomes: Outcomes
) -> bool:
    """One attempt; True when it committed or must not be retried."""
    stats = outcomes.stats
    try:
        async with conn.transaction():
            result = await transaction_body(conn, plan, projection, stats)
    except ConcurrencyError:
        stats["concurrency_error"] += 1
        return False
    except RetryableAppendError:
        stats["retryable_error"] += 1
        return False
    except errors.UniqueViolation as exc:
        if exc.diag.constraint_name != "events_stream_version_key":
            raise
        stats["version_conflict"] += 1
        return False
    except Rollback:
        stats["rolled_back"] += 1
        return True
    # Only here, after the commit returned, did the transaction commit: an
    # exception raised by the commit itself propagates and fails the writer.
    stats["committed"] += 1
    outcomes.committed.append(
        {
            "stream_id": result.stream_id,
            "events": [
                [str(e.event_id), e.event_type, e.stream_version, e.transaction_id]
                for e in result.events
            ],
        }
    )
    return True


async def write(url: str, writer: int, seed: int, iterations: int, deadline: float) -> Outcomes:
    rng = random.Random(seed)
    projection = BoundInline(StreamTypeCounts())
    outcomes = Outcomes()
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            return outcomes  # the test went away before the start
        stop_at = time.monotonic() + deadline
        for iteration in range(iterations):
            if time.monotonic() > stop_at:
                outcomes.stats["deadline_reached"] += 1
                break
            plan = draw_plan(rng, writer, iteration)
            for _ in range(ATTEMPTS):
                if await run_transaction(conn, plan, projection, outcomes):
                    break
            else:
                outcomes.stats["gave_up"] += 1
    return outcomes


def main(argv: list[str]) -> None:
    url, writer, seed, iterations, deadline = argv
    outcomes = asyncio.run(write(url, int(writer), int(seed), int(iterations), float(deadline)))
    json.dump({"committed": outcomes.committed, "stats": dict(outcomes.stats)}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
