"""Worker use cases: registration (and re-registration), heartbeats, claims as leases.

Liveness is judged per (operation, attempt). A claim is a lease its worker must
acknowledge; until it does, the claim can go back to the queue. A worker that
registers or heartbeats without an acknowledged attempt the backend gives it has
lost that run (it restarted under the same id, or dropped it), so the attempt is
released at once instead of waiting for a timeout that its heartbeats would defer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, LiteralString

from psycopg_pool import AsyncConnectionPool

from ktrdr.domain import (
    CUDA,
    AcknowledgeClaim,
    ClaimOperation,
    DeregisterWorker,
    FailOperation,
    FailureReason,
    OperationNotClaimable,
    OperationStatus,
    RegisterWorker,
    ReleaseClaim,
    WorkerNotFound,
    WorkerStatus,
)
from ktrdr.domain.operation import CheckpointInfo, OperationState
from ktrdr.domain.worker import WorkerState
from ktrdr.eventlog import ConcurrencyError
from ktrdr.handlers.bus import CommandBus
from ktrdr.handlers.liveness import Beat, HeldAttempt, beat
from ktrdr.handlers.work_board import Ticket, WorkBoard, wait_for_work
from ktrdr.projections import views

log = logging.getLogger(__name__)

_CANDIDATES: LiteralString = """
SELECT operation_id::text FROM operations
WHERE status IN ('pending', 'resuming') AND operation_type = %(operation_type)s
  AND (%(cuda)s OR coalesce(params->>'device', 'auto') <> 'cuda')
ORDER BY created_at, operation_id LIMIT 20
"""
ORPHAN_DETECTOR = "orphan-detector"
"""The actor of every liveness verdict, wherever it is taken."""
_VERDICTS = uuid.UUID("6f0c7f5e-9d1e-4d53-9a43-0b7a5c1c2f10")


def verdict_key(operation_id: str, attempt: int) -> uuid.UUID:
    """One verdict per attempt: a judgement repeated (by a second detector, after a crash,
    or by a heartbeat and the detector at once) appends nothing twice."""
    return uuid.uuid5(_VERDICTS, f"{operation_id}:{attempt}")


@dataclass(frozen=True)
class Standing:
    """Whether a worker may go on with the operation it reports."""

    operation_id: str
    attempt: int
    keep: bool
    reason: str


@dataclass(frozen=True)
class Claimed:
    state: OperationState
    resume_from: CheckpointInfo | None
    fallbacks: list[CheckpointInfo]
    """The other live checkpoints, nearest first: where to go if resume_from is unusable."""
    states: Mapping[int, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    """The checkpoint states of resume_from and the fallbacks, by sequence."""


def standing(found: Beat, worker_id: str, operation_id: str, attempt: int) -> Standing | None:
    if found.operation_status is None:
        return None
    if found.operation_status != OperationStatus.RUNNING:
        return Standing(operation_id, attempt, False, f"operation is {found.operation_status}")
    if found.operation_attempt != attempt or found.operation_worker_id != worker_id:
        return Standing(
            operation_id,
            attempt,
            False,
            f"operation moved on to attempt {found.operation_attempt}"
            f" on {found.operation_worker_id}",
        )
    return Standing(operation_id, attempt, True, "attempt is current")


async def register_worker(
    bus: CommandBus, pool: AsyncConnectionPool[Any], command: RegisterWorker
) -> tuple[WorkerState, Standing | None]:
    state, _ = await bus.worker(command, actor=f"worker:{command.worker_id}")
    assert state is not None
    judged, _ = await _report(
        bus, pool, command.worker_id, command.current_operation_id, command.current_attempt
    )
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
    return await _report(bus, pool, worker_id, operation_id, attempt, registered=True)


async def _report(
    bus: CommandBus,
    pool: AsyncConnectionPool[Any],
    worker_id: str,
    operation_id: str | None,
    attempt: int | None,
    *,
    registered: bool = False,
) -> tuple[Standing | None, bool]:
    found = await beat(pool, worker_id, bus.clock(), operation_id, attempt)
    if registered and found.worker_status != WorkerStatus.REGISTERED:
        raise WorkerNotFound(worker_id)
    for held in found.unreported:
        await _release_unreported(bus, worker_id, held)
    if not operation_id or not attempt:
        return None, False
    judged = standing(found, worker_id, operation_id, attempt)
    if judged is None or not judged.keep:
        return judged, False
    if not found.acknowledged:
        # Reporting the attempt proves the worker got its claim (its ack may have been lost).
        await acknowledge_claim(bus, operation_id, worker_id, attempt)
    return judged, found.cancellation_requested


async def _release_unreported(bus: CommandBus, worker_id: str, held: HeldAttempt) -> None:
    if not held.acknowledged:
        return  # its claim may still be on the way to the worker: the ack deadline judges it
    log.warning(
        "operation %s: worker %s no longer reports attempt %s; the run is gone",
        held.operation_id,
        worker_id,
        held.attempt,
    )
    await bus.operation(
        FailOperation(
            operation_id=held.operation_id,
            at=bus.clock(),
            reason=FailureReason.ORPHANED,
            attempt=held.attempt,
            message=f"worker {worker_id} came back without attempt {held.attempt} (it restarted"
            " or dropped it); resume it from its last checkpoint",
        ),
        actor=ORPHAN_DETECTOR,
        idempotency_key=verdict_key(held.operation_id, held.attempt),
    )


async def claim_operation(
    bus: CommandBus,
    pool: AsyncConnectionPool[Any],
    board: WorkBoard,
    worker_id: str,
    wait_seconds: float,
    hangup: asyncio.Future[Any],
) -> Claimed | None:
    """Long-poll for a pending or resuming operation of the worker's type and claim it;
    CUDA work only when the worker registered the ``cuda`` capability.

    Between looks it sleeps until the board announces work of that type: an idle
    worker costs no query. ``hangup`` completes when the worker hangs up; a claim it
    can no longer receive goes back to the queue at once (the ack deadline catches
    the ones this cannot see).
    """
    worker = await bus.states.worker(worker_id)
    if worker is None or worker.status != WorkerStatus.REGISTERED:
        raise WorkerNotFound(worker_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while not hangup.done():
        ticket = board.ticket(worker.worker_type, cuda=CUDA in worker.capabilities)
        # A long-poll skips a look that an earlier one, with nothing announced since, proved
        # useless: it is woken by the next announcement anyway. A claim that will not wait
        # always looks (another replica's announcement may still be on its way).
        if wait_seconds == 0 or not ticket.found_nothing:
            claimed = await _claim_one(bus, pool, worker, ticket)
            if claimed is not None:
                return await _hand_over(bus, claimed, hangup)
        if loop.time() >= deadline:
            return None
        await wait_for_work(ticket, hangup, deadline - loop.time())
    return None


async def _hand_over(
    bus: CommandBus, claimed: Claimed, hangup: asyncio.Future[Any]
) -> Claimed | None:
    if not hangup.done():
        return claimed
    await release_claim(
        bus,
        claimed.state.operation_id,
        claimed.state.attempt,
        "the worker hung up before its claim reached it",
        actor=ORPHAN_DETECTOR,
    )
    return None


async def _claim_one(
    bus: CommandBus, pool: AsyncConnectionPool[Any], worker: WorkerState, ticket: Ticket
) -> Claimed | None:
    async with pool.connection() as conn:
        cur = await conn.execute(
            _CANDIDATES,
            {"operation_type": worker.worker_type, "cuda": CUDA in worker.capabilities},
        )
        candidates = [row[0] for row in await cur.fetchall()]
    ticket.found_nothing = not candidates
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
        return await _with_states(pool, _claimed(state))
    return None


async def _with_states(pool: AsyncConnectionPool[Any], claimed: Claimed) -> Claimed:
    """The claim with the states of the checkpoints it may resume from (their rows)."""
    offered = [c.sequence for c in [claimed.resume_from, *claimed.fallbacks] if c]
    if not offered:
        return claimed
    async with pool.connection() as conn:
        states = await views.checkpoint_states(conn, claimed.state.operation_id, offered)
    return dataclasses.replace(claimed, states=states)


def _claimed(state: OperationState) -> Claimed:
    if state.resumed_from is None or state.resumed_from not in state.checkpoints:
        return Claimed(state, None, [])
    wanted = state.resumed_from
    earlier = sorted((s for s in state.checkpoints if s < wanted), reverse=True)
    later = sorted(s for s in state.checkpoints if s > wanted)
    # Any intact checkpoint ends the run exactly; the nearest earlier one is the least
    # surprising, a later one still beats failing a run that can go on.
    return Claimed(
        state, state.checkpoints[wanted], [state.checkpoints[s] for s in [*earlier, *later]]
    )


async def acknowledge_claim(
    bus: CommandBus, operation_id: str, worker_id: str, attempt: int
) -> OperationState:
    state, _ = await bus.operation(
        AcknowledgeClaim(
            operation_id=operation_id, at=bus.clock(), worker_id=worker_id, attempt=attempt
        ),
        actor=f"worker:{worker_id}",
    )
    assert state is not None
    return state


async def release_claim(
    bus: CommandBus,
    operation_id: str,
    attempt: int,
    reason: str,
    *,
    worker_id: str | None = None,
    actor: str,
) -> OperationState:
    state, _ = await bus.operation(
        ReleaseClaim(
            operation_id=operation_id,
            at=bus.clock(),
            attempt=attempt,
            worker_id=worker_id,
            reason=reason,
        ),
        actor=actor,
    )
    assert state is not None
    return state


async def deregister_worker(bus: CommandBus, worker_id: str, reason: str) -> WorkerState:
    state, _ = await bus.worker(
        DeregisterWorker(worker_id=worker_id, at=bus.clock(), reason=reason),
        actor=f"worker:{worker_id}",
    )
    assert state is not None
    return state
