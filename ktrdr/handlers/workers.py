"""Worker use cases: registration (and re-registration), heartbeats, fenced claims."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString

from psycopg_pool import AsyncConnectionPool

from ktrdr.domain import (
    ClaimOperation,
    DeregisterWorker,
    OperationNotClaimable,
    OperationStatus,
    RegisterWorker,
    WorkerNotFound,
    WorkerStatus,
)
from ktrdr.domain.operation import CheckpointInfo, OperationState
from ktrdr.domain.worker import WorkerState
from ktrdr.eventlog import ConcurrencyError
from ktrdr.handlers.bus import CommandBus

_TOUCH: LiteralString = """
INSERT INTO worker_liveness (worker_id, last_heartbeat_at, operation_id, attempt)
VALUES (%(worker_id)s, %(at)s, %(operation_id)s, %(attempt)s)
ON CONFLICT (worker_id) DO UPDATE SET last_heartbeat_at = EXCLUDED.last_heartbeat_at,
    operation_id = EXCLUDED.operation_id, attempt = EXCLUDED.attempt
"""
_CANDIDATES: LiteralString = """
SELECT operation_id::text FROM operations
WHERE status IN ('pending', 'resuming') AND operation_type = %(operation_type)s
ORDER BY created_at, operation_id LIMIT 20
"""
CLAIM_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Standing:
    """Whether a worker may go on with the operation it reports (after a re-registration)."""

    operation_id: str
    attempt: int
    keep: bool
    reason: str


@dataclass(frozen=True)
class Claimed:
    state: OperationState
    resume_from: CheckpointInfo | None
    fallbacks: list[CheckpointInfo]
    """Earlier live checkpoints, newest first: where to go if resume_from is corrupt."""


async def touch(
    pool: AsyncConnectionPool[Any],
    worker_id: str,
    at: datetime,
    operation_id: str | None,
    attempt: int | None,
) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            _TOUCH,
            {"worker_id": worker_id, "at": at, "operation_id": operation_id, "attempt": attempt},
        )


def standing(state: OperationState | None, worker_id: str, attempt: int) -> Standing | None:
    if state is None:
        return None
    if state.status != OperationStatus.RUNNING:
        return Standing(state.operation_id, attempt, False, f"operation is {state.status}")
    if state.attempt != attempt or state.worker_id != worker_id:
        return Standing(
            state.operation_id,
            attempt,
            False,
            f"operation moved on to attempt {state.attempt} on {state.worker_id}",
        )
    return Standing(state.operation_id, attempt, True, "attempt is current")


async def register_worker(
    bus: CommandBus, pool: AsyncConnectionPool[Any], command: RegisterWorker
) -> tuple[WorkerState, Standing | None]:
    state, _ = await bus.worker(command, actor=f"worker:{command.worker_id}")
    assert state is not None
    await touch(
        pool, command.worker_id, command.at, command.current_operation_id, command.current_attempt
    )
    judged = None
    if command.current_operation_id and command.current_attempt:
        operation = await bus.states.operation(command.current_operation_id)
        judged = standing(operation, command.worker_id, command.current_attempt)
    return state, judged


async def heartbeat(
    bus: CommandBus,
    pool: AsyncConnectionPool[Any],
    worker_id: str,
    operation_id: str | None,
    attempt: int | None,
) -> tuple[Standing | None, bool]:
    """Record the heartbeat; returns the worker's standing on its operation and whether
    that operation was asked to stop. An unknown or written-off worker must re-register."""
    worker = await bus.states.worker(worker_id)
    if worker is None or worker.status != WorkerStatus.REGISTERED:
        raise WorkerNotFound(worker_id)
    await touch(pool, worker_id, bus.clock(), operation_id, attempt)
    if not operation_id or not attempt:
        return None, False
    operation = await bus.states.operation(operation_id)
    judged = standing(operation, worker_id, attempt)
    cancel = bool(operation and judged and judged.keep and operation.cancellation_requested)
    return judged, cancel


async def claim_operation(
    bus: CommandBus,
    pool: AsyncConnectionPool[Any],
    worker_id: str,
    wait_seconds: float,
) -> Claimed | None:
    """Long-poll for a pending or resuming operation of the worker's type and claim it."""
    worker = await bus.states.worker(worker_id)
    if worker is None or worker.status != WorkerStatus.REGISTERED:
        raise WorkerNotFound(worker_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        claimed = await _claim_one(bus, pool, worker)
        if claimed is not None or loop.time() >= deadline:
            return claimed
        await asyncio.sleep(min(CLAIM_POLL_SECONDS, max(0.0, deadline - loop.time())))


async def _claim_one(
    bus: CommandBus, pool: AsyncConnectionPool[Any], worker: WorkerState
) -> Claimed | None:
    async with pool.connection() as conn:
        cur = await conn.execute(_CANDIDATES, {"operation_type": worker.worker_type})
        candidates = [row[0] for row in await cur.fetchall()]
    for operation_id in candidates:
        try:
            state, events = await bus.operation(
                ClaimOperation(
                    operation_id=operation_id, at=bus.clock(), worker_id=worker.worker_id
                ),
                actor=f"worker:{worker.worker_id}",
            )
        except (OperationNotClaimable, ConcurrencyError):
            continue  # another worker was faster
        assert state is not None and events
        await touch(pool, worker.worker_id, bus.clock(), operation_id, state.attempt)
        return _claimed(state)
    return None


def _claimed(state: OperationState) -> Claimed:
    if state.resumed_from is None or state.resumed_from not in state.checkpoints:
        return Claimed(state, None, [])
    earlier = sorted((s for s in state.checkpoints if s < state.resumed_from), reverse=True)
    return Claimed(
        state, state.checkpoints[state.resumed_from], [state.checkpoints[s] for s in earlier]
    )


async def deregister_worker(bus: CommandBus, worker_id: str, reason: str) -> WorkerState:
    state, _ = await bus.worker(
        DeregisterWorker(worker_id=worker_id, at=bus.clock(), reason=reason),
        actor=f"worker:{worker_id}",
    )
    assert state is not None
    return state
