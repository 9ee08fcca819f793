"""Where command handlers get an aggregate's current state from."""

from __future__ import annotations

import abc
from typing import Any

from psycopg_pool import AsyncConnectionPool

from ktrdr.domain import operation_stream, worker_stream
from ktrdr.domain.operation import OperationState, fold
from ktrdr.domain.worker import WorkerState, fold_worker
from ktrdr.eventlog import EventLog
from ktrdr.projections.operations import domain_event, load_state
from ktrdr.projections.workers import load_worker_state, worker_event


class States(abc.ABC):
    """Loads aggregates; the result may be stale, which the append's expected version catches."""

    def __init__(self, event_log: EventLog) -> None:
        self.event_log = event_log

    @abc.abstractmethod
    async def operation(self, operation_id: str) -> OperationState | None: ...

    async def worker(self, worker_id: str) -> WorkerState | None:
        events = await self.event_log.read_stream(worker_stream(worker_id))
        return fold_worker(map(worker_event, events))


_SNAPSHOT = "SELECT state FROM operations WHERE operation_id = %(id)s"


_WORKER_SNAPSHOT = "SELECT state FROM workers WHERE worker_id = %(id)s"


class ReadModelStates(States):
    """Starts from the inline read model's snapshot and folds only what came after it."""

    def __init__(self, event_log: EventLog, pool: AsyncConnectionPool[Any]) -> None:
        super().__init__(event_log)
        self._pool = pool

    async def operation(self, operation_id: str) -> OperationState | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(_SNAPSHOT, {"id": operation_id})
            row = await cur.fetchone()
        state = None if row is None else load_state(row[0])
        after = 1 if state is None else state.version + 1
        events = await self.event_log.read_stream(operation_stream(operation_id), after)
        return fold(map(domain_event, events), state)

    async def worker(self, worker_id: str) -> WorkerState | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(_WORKER_SNAPSHOT, {"id": worker_id})
            row = await cur.fetchone()
        state = None if row is None else load_worker_state(row[0])
        after = 1 if state is None else state.version + 1
        events = await self.event_log.read_stream(worker_stream(worker_id), after)
        return fold_worker(map(worker_event, events), state)
