"""Move operations through their lifecycle with real commands, as workers would."""

from __future__ import annotations

from typing import Any

from ktrdr.bootstrap.system import System
from ktrdr.domain import (
    AcknowledgeClaim,
    ClaimOperation,
    CompleteOperation,
    ConfirmCancellation,
    FailOperation,
    ReportProgress,
    SaveCheckpoint,
)
from ktrdr.domain.operation import OperationState

WORKER = "worker-test-1"


async def claim(system: System, op: str, worker: str = WORKER) -> OperationState:
    """Claim as a worker does: the claim, then its acknowledgement."""
    actor = f"worker:{worker}"
    claimed, _ = await system.bus.operation(
        ClaimOperation(operation_id=op, at=system.bus.clock(), worker_id=worker), actor=actor
    )
    assert claimed is not None
    state, _ = await system.bus.operation(
        AcknowledgeClaim(
            operation_id=op, at=system.bus.clock(), worker_id=worker, attempt=claimed.attempt
        ),
        actor=actor,
    )
    assert state is not None
    return state


async def as_its_worker(
    system: System, op: str, command: type[Any], **fields: Any
) -> OperationState:
    """Send a fenced write as the worker that holds the operation's current attempt."""
    current = await system.bus.states.operation(op)
    assert current is not None and current.worker_id is not None
    after, _ = await system.bus.operation(
        command(
            operation_id=op,
            at=system.bus.clock(),
            worker_id=current.worker_id,
            attempt=current.attempt,
            **fields,
        ),
        actor=f"worker:{current.worker_id}",
    )
    assert after is not None
    return after


async def checkpoint(
    system: System, op: str, state: dict[str, Any], *, kind: str = "periodic"
) -> OperationState:
    return await as_its_worker(system, op, SaveCheckpoint, checkpoint_type=kind, state=state)


async def progress(system: System, op: str, percentage: float, step: str, message: str) -> None:
    await as_its_worker(
        system, op, ReportProgress, percentage=percentage, current_step=step, message=message
    )


async def complete(system: System, op: str, result: dict[str, Any]) -> None:
    await as_its_worker(system, op, CompleteOperation, result=result)


async def cancel_confirmed(system: System, op: str) -> None:
    await as_its_worker(system, op, ConfirmCancellation, reason="cancellation")


async def fail(system: System, op: str, message: str = "boom") -> None:
    await as_its_worker(system, op, FailOperation, message=message)


async def failed_with_checkpoints(system: System, op: str, epochs: list[int]) -> None:
    await claim(system, op)
    for epoch in epochs:
        await checkpoint(system, op, {"epoch": epoch})
    await fail(system, op)
