"""Move operations through their lifecycle with real commands, as workers would."""

from __future__ import annotations

from typing import Any

from ktrdr.api.bootstrap import System
from ktrdr.domain import (
    ClaimOperation,
    ConfirmCancellation,
    FailOperation,
    SaveCheckpoint,
)
from ktrdr.domain.operation import OperationState

WORKER = "worker-test-1"


async def claim(system: System, op: str, worker: str = WORKER) -> OperationState:
    state, _ = await system.bus.operation(
        ClaimOperation(operation_id=op, at=system.bus.clock(), worker_id=worker)
    )
    assert state is not None
    return state


async def checkpoint(
    system: System, op: str, state: dict[str, Any], *, kind: str = "periodic"
) -> OperationState:
    current = await system.bus.states.operation(op)
    assert current is not None and current.worker_id is not None
    after, _ = await system.bus.operation(
        SaveCheckpoint(
            operation_id=op,
            at=system.bus.clock(),
            worker_id=current.worker_id,
            attempt=current.attempt,
            checkpoint_type=kind,
            state=state,
        )
    )
    assert after is not None
    return after


async def cancel_confirmed(system: System, op: str) -> None:
    current = await system.bus.states.operation(op)
    assert current is not None and current.worker_id is not None
    await system.bus.operation(
        ConfirmCancellation(
            operation_id=op,
            at=system.bus.clock(),
            worker_id=current.worker_id,
            attempt=current.attempt,
            reason="cancellation",
        )
    )


async def fail(system: System, op: str, message: str = "boom") -> None:
    current = await system.bus.states.operation(op)
    assert current is not None and current.worker_id is not None
    await system.bus.operation(
        FailOperation(
            operation_id=op,
            at=system.bus.clock(),
            worker_id=current.worker_id,
            attempt=current.attempt,
            message=message,
        )
    )


async def failed_with_checkpoints(system: System, op: str, epochs: list[int]) -> None:
    await claim(system, op)
    for epoch in epochs:
        await checkpoint(system, op, {"epoch": epoch})
    await fail(system, op)
