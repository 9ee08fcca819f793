"""The orphan detector: a running operation whose worker went silent becomes failed/orphaned.

A worker is judged from its last heartbeat, or from the claim when it never
heartbeated since. After a backend start, workers get one orphan timeout to
re-register before anything is judged, so a restart never fails live work.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, LiteralString

from psycopg_pool import AsyncConnectionPool

from ktrdr.domain import FailOperation, FailureReason, RecordMissedHeartbeat
from ktrdr.handlers.bus import CommandBus

log = logging.getLogger(__name__)

_RUNNING: LiteralString = """
SELECT o.operation_id::text, o.worker_id, o.attempt,
       (o.state->>'claimed_at')::timestamptz, l.last_heartbeat_at
FROM operations o LEFT JOIN worker_liveness l ON l.worker_id = o.worker_id
WHERE o.status = 'running'
"""
_NAMESPACE = uuid.UUID("6f0c7f5e-9d1e-4d53-9a43-0b7a5c1c2f10")


@dataclass(frozen=True)
class Suspect:
    operation_id: str
    worker_id: str
    attempt: int
    claimed_at: datetime
    last_heartbeat_at: datetime | None

    def last_seen(self) -> datetime:
        if self.last_heartbeat_at is None:
            return self.claimed_at
        return max(self.claimed_at, self.last_heartbeat_at)


class OrphanDetector:
    def __init__(
        self,
        bus: CommandBus,
        pool: AsyncConnectionPool[Any],
        *,
        timeout_seconds: float,
        started_at: datetime,
    ) -> None:
        self._bus = bus
        self._pool = pool
        self._timeout = timedelta(seconds=timeout_seconds)
        self._grace_until = started_at + self._timeout
        self.detected = 0

    async def tick(self) -> list[str]:
        """Judge every running operation once; returns the ids failed as orphaned."""
        now = self._bus.clock()
        if now < self._grace_until:
            return []
        failed = []
        for suspect in await self._suspects():
            if now - suspect.last_seen() > self._timeout:
                await self._fail(suspect, now)
                failed.append(suspect.operation_id)
        self.detected += len(failed)
        return failed

    async def _suspects(self) -> list[Suspect]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(_RUNNING)
            rows = await cur.fetchall()
        return [Suspect(*row) for row in rows if row[1] is not None and row[3] is not None]

    async def _fail(self, suspect: Suspect, now: datetime) -> None:
        silent = (now - suspect.last_seen()).total_seconds()
        # Ids derived from (operation, attempt): a judgement repeated by a second detector
        # or after a crash appends nothing twice.
        key = uuid.uuid5(_NAMESPACE, f"{suspect.operation_id}:{suspect.attempt}")
        await self._bus.worker(
            RecordMissedHeartbeat(
                worker_id=suspect.worker_id,
                at=now,
                last_heartbeat_at=suspect.last_heartbeat_at,
                operation_id=suspect.operation_id,
                attempt=suspect.attempt,
            ),
            actor="orphan-detector",
        )
        await self._bus.operation(
            FailOperation(
                operation_id=suspect.operation_id,
                at=now,
                reason=FailureReason.ORPHANED,
                attempt=suspect.attempt,
                message=(
                    f"worker {suspect.worker_id} went silent for {silent:.1f}s"
                    f" (timeout {self._timeout.total_seconds():g}s); resume it from its last"
                    " checkpoint"
                ),
            ),
            actor="orphan-detector",
            idempotency_key=key,
        )
        log.warning("operation %s orphaned (worker %s)", suspect.operation_id, suspect.worker_id)
