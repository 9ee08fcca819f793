"""What a worker posts about the operation it claimed; every write carries its attempt.

A write from an older attempt, or for an operation no longer running, is
refused with 409 STALE_ATTEMPT and changes nothing (the domain fences it).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from ktrdr.api.deps import System, SystemDep
from ktrdr.api.schemas import (
    CancelledRequest,
    CheckpointRequest,
    CompleteRequest,
    FailRequest,
    ProgressRequest,
    WorkerWrite,
    operation_id,
)
from ktrdr.domain import (
    ArtifactFile,
    CheckpointSaved,
    CompleteOperation,
    ConfirmCancellation,
    FailOperation,
    ReportProgress,
    SaveCheckpoint,
)


def _actor(worker_id: str) -> str:
    return f"worker:{worker_id}"


class WorkerWritesController(Controller):
    path = "/operations/{op_id:str}"
    tags = ["worker writes"]

    @post("/progress", status_code=HTTP_200_OK)
    async def report_progress(
        self, system: SystemDep, op_id: FromPath[str], data: JSONBody[ProgressRequest]
    ) -> dict[str, Any]:
        command = ReportProgress(
            operation_id=operation_id(op_id),
            at=system.bus.clock(),
            **data.model_dump(),
        )
        state, events = await system.bus.operation(command, actor=_actor(data.worker_id))
        assert state is not None
        return {"recorded": bool(events), "cancellation_requested": state.cancellation_requested}

    @post("/checkpoints", status_code=HTTP_201_CREATED)
    async def save_checkpoint(
        self, system: SystemDep, op_id: FromPath[str], data: JSONBody[CheckpointRequest]
    ) -> dict[str, Any]:
        fields = data.model_dump(exclude={"artifacts"})
        command = SaveCheckpoint(
            operation_id=operation_id(op_id),
            at=system.bus.clock(),
            artifacts=tuple(ArtifactFile(**a.model_dump()) for a in data.artifacts),
            **fields,
        )
        state, events = await system.bus.operation(command, actor=_actor(data.worker_id))
        assert state is not None
        [saved] = [e for e in events if isinstance(e, CheckpointSaved)]
        return {"sequence": saved.sequence, "cancellation_requested": state.cancellation_requested}

    @post("/complete", status_code=HTTP_200_OK)
    async def complete(
        self, system: SystemDep, op_id: FromPath[str], data: JSONBody[CompleteRequest]
    ) -> dict[str, Any]:
        return await _end(system, op_id, CompleteOperation, data)

    @post("/fail", status_code=HTTP_200_OK)
    async def fail(
        self, system: SystemDep, op_id: FromPath[str], data: JSONBody[FailRequest]
    ) -> dict[str, Any]:
        return await _end(system, op_id, FailOperation, data)

    @post("/cancelled", status_code=HTTP_200_OK)
    async def confirm_cancellation(
        self, system: SystemDep, op_id: FromPath[str], data: JSONBody[CancelledRequest]
    ) -> dict[str, Any]:
        return await _end(system, op_id, ConfirmCancellation, data)


async def _end(
    system: System,
    op_id: str,
    command: type[CompleteOperation | FailOperation | ConfirmCancellation],
    data: WorkerWrite,
) -> dict[str, Any]:
    ended = command(operation_id=operation_id(op_id), at=system.bus.clock(), **data.model_dump())
    state, _ = await system.bus.operation(ended, actor=_actor(data.worker_id))
    assert state is not None
    return {"operation_id": state.operation_id, "status": str(state.status)}
