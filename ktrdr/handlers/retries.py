"""The retry processor: interrupted runs go again by themselves, and deadlines are kept.

Each tick it (1) reads the log after its stored position and, for every stop,
asks the operation to schedule a retry (``RetryScheduled`` with its time, when
the policy allows one); (2) runs the retries that are due (``ResumeRequested``
from the newest intact checkpoint, or from the beginning); (3) fails operations
past their timeout. The schedule is the log's — the read model's
``next_retry_at`` — so a backend restart or a replica takeover loses no retry,
and a retry decided twice appends once (the domain finds it done).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, LiteralString

from psycopg_pool import AsyncConnectionPool

from ktrdr.artifacts import ArtifactStore
from ktrdr.domain import EnforceTimeout, RetryOperation, RetryScheduled, ScheduleRetry
from ktrdr.eventlog import EventLog, RecordedEvent
from ktrdr.handlers.bus import CommandBus
from ktrdr.handlers.operations import unavailable
from ktrdr.handlers.reactor import Reactor

log = logging.getLogger(__name__)

RETRY_PROCESSOR = "retry-processor"
"""The actor of every retry and timeout event."""
_STOPS = frozenset({"OperationFailed", "OperationCancelled"})
_DUE: LiteralString = """
SELECT operation_id::text FROM operations
WHERE next_retry_at <= %(now)s ORDER BY next_retry_at LIMIT 100
"""
_PAST_DEADLINE: LiteralString = """
SELECT operation_id::text FROM operations
WHERE deadline_at <= %(now)s
  AND (status NOT IN ('completed', 'failed', 'cancelled') OR next_retry_at IS NOT NULL)
ORDER BY deadline_at LIMIT 100
"""
_NAMESPACE = uuid.UUID("0c6b3f1e-2f5a-4f8e-8d1e-6b2a9c7d4e15")


class RetryProcessor:
    def __init__(
        self,
        bus: CommandBus,
        pool: AsyncConnectionPool[Any],
        event_log: EventLog,
        store: ArtifactStore,
    ) -> None:
        self._bus = bus
        self._pool = pool
        self._store = store
        self._stops = Reactor("retry_scheduler", pool, event_log, self._schedule)

    async def tick(self) -> None:
        await self._stops.tick()
        now = self._bus.clock()
        for operation_id in await self._ids(_DUE, now=now):
            await self._retry(operation_id)
        for operation_id in await self._ids(_PAST_DEADLINE, now=now):
            await self._bus.operation(
                EnforceTimeout(operation_id=operation_id, at=self._bus.clock()),
                actor=RETRY_PROCESSOR,
            )

    async def _schedule(self, event: RecordedEvent) -> None:
        if event.event_type not in _STOPS:
            return
        operation_id = str(event.data["operation_id"])
        _, scheduled = await self._bus.operation(
            ScheduleRetry(operation_id=operation_id, at=self._bus.clock()),
            actor=RETRY_PROCESSOR,
            causation_id=str(event.event_id),
            idempotency_key=uuid.uuid5(_NAMESPACE, str(event.event_id)),
        )
        for retry in scheduled:
            if isinstance(retry, RetryScheduled):
                log.info(
                    "operation %s: %s, attempt %d at %s",
                    operation_id,
                    retry.reason,
                    retry.attempt,
                    retry.retry_at.isoformat(),
                )

    async def _retry(self, operation_id: str) -> None:
        state = await self._bus.states.operation(operation_id)
        if state is None:
            return
        _, events = await self._bus.operation(
            RetryOperation(
                operation_id=operation_id,
                at=self._bus.clock(),
                unavailable=unavailable(self._store, state),
            ),
            actor=RETRY_PROCESSOR,
        )
        for event in events:
            log.info("operation %s: %s", operation_id, type(event).__name__)

    async def _ids(self, query: LiteralString, **params: Any) -> list[str]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(query, params)
            return [row[0] for row in await cur.fetchall()]
