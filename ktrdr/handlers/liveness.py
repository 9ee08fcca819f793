"""Liveness as the backend records it: heartbeats move rows, never append events.

A worker's row (``worker_liveness``) says it is alive; an attempt's row
(``attempt_liveness``) says its worker still runs it. The orphan detector judges
each running attempt by its own row, so a worker that came back without an
attempt (a restart under the same id) never keeps that attempt alive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString

from psycopg_pool import AsyncConnectionPool

# One statement per heartbeat: touch the worker and the attempt it reports, and read
# what the answer needs — the worker's status, the reported operation, and the other
# attempts the read model says it holds (the ones it no longer reports).
_BEAT: LiteralString = """
WITH worker AS (
    INSERT INTO worker_liveness (worker_id, last_heartbeat_at, operation_id, attempt)
    VALUES (%(worker_id)s, %(at)s, %(operation_id)s::uuid, %(attempt)s::integer)
    ON CONFLICT (worker_id) DO UPDATE SET last_heartbeat_at = EXCLUDED.last_heartbeat_at,
        operation_id = EXCLUDED.operation_id, attempt = EXCLUDED.attempt
), attempt AS (
    INSERT INTO attempt_liveness (operation_id, attempt, worker_id, last_seen_at)
    SELECT %(operation_id)s::uuid, %(attempt)s::integer, %(worker_id)s, %(at)s
    WHERE %(operation_id)s::uuid IS NOT NULL
    ON CONFLICT (operation_id, attempt) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at
    WHERE attempt_liveness.worker_id = EXCLUDED.worker_id
)
SELECT w.status, o.status, o.attempt, o.worker_id, o.cancellation_requested,
       (o.state->>'acknowledged_at') IS NOT NULL,
       (SELECT coalesce(jsonb_agg(jsonb_build_array(h.operation_id, h.attempt,
                   (h.state->>'acknowledged_at') IS NOT NULL)), '[]'::jsonb)
        FROM operations h
        WHERE h.status = 'running' AND h.worker_id = %(worker_id)s
          AND (h.operation_id, h.attempt)
              IS DISTINCT FROM (%(operation_id)s::uuid, %(attempt)s::integer))
FROM (SELECT 1) AS one
LEFT JOIN workers w ON w.worker_id = %(worker_id)s
LEFT JOIN operations o ON o.operation_id = %(operation_id)s::uuid
"""

# The in-process research manager keeps every attempt it holds alive at once.
_KEEP_ALIVE: LiteralString = """
WITH worker AS (
    INSERT INTO worker_liveness (worker_id, last_heartbeat_at)
    VALUES (%(worker_id)s, %(at)s)
    ON CONFLICT (worker_id) DO UPDATE SET last_heartbeat_at = EXCLUDED.last_heartbeat_at
)
INSERT INTO attempt_liveness (operation_id, attempt, worker_id, last_seen_at)
SELECT operation_id, attempt, worker_id, %(at)s FROM operations
WHERE status = 'running' AND worker_id = %(worker_id)s
ON CONFLICT (operation_id, attempt) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at
"""


@dataclass(frozen=True)
class HeldAttempt:
    operation_id: str
    attempt: int
    acknowledged: bool


@dataclass(frozen=True)
class Beat:
    """What one heartbeat found: the worker, its reported operation, what it left behind."""

    worker_status: str | None
    operation_status: str | None
    operation_attempt: int | None
    operation_worker_id: str | None
    cancellation_requested: bool
    acknowledged: bool
    unreported: list[HeldAttempt]
    """Running attempts the read model gives this worker that it did not report."""


async def beat(
    pool: AsyncConnectionPool[Any],
    worker_id: str,
    at: datetime,
    operation_id: str | None,
    attempt: int | None,
) -> Beat:
    params = {"worker_id": worker_id, "at": at, "operation_id": operation_id, "attempt": attempt}
    # getconn/putconn rather than pool.connection(), whose `async with conn` commits an
    # autocommit connection for nothing, hundreds of times a second here. putconn still
    # discards a connection returned mid-query (a cancelled request).
    conn = await pool.getconn()
    try:
        cur = await conn.execute(_BEAT, params)
        row = await cur.fetchone()
    finally:
        await pool.putconn(conn)
    assert row is not None
    held = [HeldAttempt(str(op), int(attempt), bool(acked)) for op, attempt, acked in row[6]]
    return Beat(row[0], row[1], row[2], row[3], bool(row[4]), bool(row[5]), held)


async def keep_alive(pool: AsyncConnectionPool[Any], worker_id: str, at: datetime) -> None:
    async with pool.connection() as conn:
        await conn.execute(_KEEP_ALIVE, {"worker_id": worker_id, "at": at})
