"""The live progress of an operation: every accepted report updates one small row, while
the log gets a ProgressReported only every few seconds (KTRDR_PROGRESS_EVENT_INTERVAL_SECONDS)."""

from __future__ import annotations

from typing import Any, LiteralString

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from ktrdr.domain import ReportProgress

_KEEP_LIVE: LiteralString = """
INSERT INTO operation_progress
    (operation_id, attempt, percentage, current_step, message, details, at)
VALUES (%(operation_id)s, %(attempt)s, %(percentage)s, %(current_step)s, %(message)s,
    %(details)s, %(at)s)
ON CONFLICT (operation_id) DO UPDATE SET attempt = EXCLUDED.attempt,
    percentage = EXCLUDED.percentage, current_step = EXCLUDED.current_step,
    message = EXCLUDED.message, details = EXCLUDED.details, at = EXCLUDED.at
WHERE operation_progress.at <= EXCLUDED.at
"""


async def keep_live(pool: AsyncConnectionPool[Any], report: ReportProgress) -> None:
    """Record ``report`` (already accepted: its attempt is current) as the live value."""
    async with pool.connection() as conn:
        await conn.execute(
            _KEEP_LIVE,
            {
                "operation_id": report.operation_id,
                "attempt": report.attempt,
                "percentage": report.percentage,
                "current_step": report.current_step,
                "message": report.message,
                "details": Jsonb(report.details),
                "at": report.at,
            },
        )
