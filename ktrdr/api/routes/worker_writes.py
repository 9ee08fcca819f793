"""What a worker posts about the operation it claimed; every write carries its attempt.

A write from an older attempt, or for an operation no longer running, is
refused with 409 STALE_ATTEMPT and changes nothing (the domain fences it). A
repeat of a write that was committed (its reply lost) gets the original answer.
"""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from ktrdr.api.deps import System, SystemDep
from ktrdr.api.openapi import problems
from ktrdr.api.schemas import (
    CancelledRequest,
    CheckpointFailureRequest,
    CheckpointRequest,
    CompleteRequest,
    FailRequest,
    MetricsRequest,
    ProgressRequest,
    ReleaseRequest,
    WorkerWrite,
)
from ktrdr.contracts import CheckpointSavedAnswer, MetricsRecorded, Recorded, StatusAnswer
from ktrdr.domain import (
    ArtifactFile,
    CompleteOperation,
    ConfirmCancellation,
    FailOperation,
    RecordMetrics,
    ReportCheckpointFailure,
    ReportProgress,
    SaveCheckpoint,
)
from ktrdr.handlers import progress
from ktrdr.handlers import workers as use_cases


def _actor(worker_id: str) -> str:
    return f"worker:{worker_id}"


class WorkerWritesController(Controller):
    path = "/operations/{op_id:str}"
    tags = ["worker writes"]

    @post("/acknowledge", status_code=HTTP_200_OK, responses=problems(404, 409, 422))
    async def acknowledge_claim(
        self, system: SystemDep, op_id: FromPath[UUID], data: JSONBody[WorkerWrite]
    ) -> StatusAnswer:
        state = await use_cases.acknowledge_claim(
            system.bus, str(op_id), data.worker_id, data.attempt
        )
        return StatusAnswer(operation_id=state.operation_id, status=state.status)

    @post("/release", status_code=HTTP_200_OK, responses=problems(404, 409, 422))
    async def release_claim(
        self, system: SystemDep, op_id: FromPath[UUID], data: JSONBody[ReleaseRequest]
    ) -> StatusAnswer:
        state = await use_cases.release_claim(
            system.bus,
            str(op_id),
            data.attempt,
            data.reason,
            worker_id=data.worker_id,
            actor=_actor(data.worker_id),
        )
        return StatusAnswer(operation_id=state.operation_id, status=state.status)

    @post("/progress", status_code=HTTP_200_OK, responses=problems(404, 409, 422))
    async def report_progress(
        self, system: SystemDep, op_id: FromPath[UUID], data: JSONBody[ProgressRequest]
    ) -> Recorded:
        command = ReportProgress(
            operation_id=str(op_id),
            at=system.bus.clock(),
            event_interval_seconds=system.settings.progress_event_interval_seconds,
            **data.model_dump(),
        )
        state, events = await system.bus.operation(command, actor=_actor(data.worker_id))
        assert state is not None
        await progress.keep_live(system.pool, command)
        return Recorded(recorded=bool(events), cancellation_requested=state.cancellation_requested)

    @post("/metrics", status_code=HTTP_200_OK, responses=problems(404, 409, 422))
    async def record_metrics(
        self, system: SystemDep, op_id: FromPath[UUID], data: JSONBody[MetricsRequest]
    ) -> MetricsRecorded:
        command = RecordMetrics(
            operation_id=str(op_id),
            at=system.bus.clock(),
            **data.model_dump(exclude={"write_id"}),
        )
        state, _ = await system.bus.operation(
            command, actor=_actor(data.worker_id), idempotency_key=data.write_id
        )
        assert state is not None
        return MetricsRecorded(
            recorded=len(data.points), cancellation_requested=state.cancellation_requested
        )

    @post("/checkpoints", status_code=HTTP_201_CREATED, responses=problems(404, 409, 422))
    async def save_checkpoint(
        self, system: SystemDep, op_id: FromPath[UUID], data: JSONBody[CheckpointRequest]
    ) -> CheckpointSavedAnswer:
        fields = data.model_dump(exclude={"artifacts"})
        command = SaveCheckpoint(
            operation_id=str(op_id),
            at=system.bus.clock(),
            artifacts=tuple(ArtifactFile(**a.model_dump()) for a in data.artifacts),
            **fields,
        )
        state, _ = await system.bus.operation(command, actor=_actor(data.worker_id))
        assert state is not None
        # A repeat of a committed save decided nothing new: its sequence is the one posted.
        sequence = command.sequence or state.last_sequence
        return CheckpointSavedAnswer(
            sequence=sequence, cancellation_requested=state.cancellation_requested
        )

    @post("/checkpoint-failures", status_code=HTTP_200_OK, responses=problems(404, 409, 422))
    async def report_checkpoint_failure(
        self, system: SystemDep, op_id: FromPath[UUID], data: JSONBody[CheckpointFailureRequest]
    ) -> Recorded:
        command = ReportCheckpointFailure(
            operation_id=str(op_id), at=system.bus.clock(), **data.model_dump()
        )
        state, events = await system.bus.operation(command, actor=_actor(data.worker_id))
        assert state is not None
        return Recorded(recorded=bool(events), cancellation_requested=state.cancellation_requested)

    @post("/complete", status_code=HTTP_200_OK, responses=problems(404, 409, 422))
    async def complete(
        self, system: SystemDep, op_id: FromPath[UUID], data: JSONBody[CompleteRequest]
    ) -> StatusAnswer:
        return await _end(system, op_id, CompleteOperation, data)

    @post("/fail", status_code=HTTP_200_OK, responses=problems(404, 409, 422))
    async def fail(
        self, system: SystemDep, op_id: FromPath[UUID], data: JSONBody[FailRequest]
    ) -> StatusAnswer:
        return await _end(system, op_id, FailOperation, data)

    @post("/cancelled", status_code=HTTP_200_OK, responses=problems(404, 409, 422))
    async def confirm_cancellation(
        self, system: SystemDep, op_id: FromPath[UUID], data: JSONBody[CancelledRequest]
    ) -> StatusAnswer:
        return await _end(system, op_id, ConfirmCancellation, data)


async def _end(
    system: System,
    op_id: UUID,
    command: type[CompleteOperation | FailOperation | ConfirmCancellation],
    data: WorkerWrite,
) -> StatusAnswer:
    ended = command(operation_id=str(op_id), at=system.bus.clock(), **data.model_dump())
    state, _ = await system.bus.operation(ended, actor=_actor(data.worker_id))
    assert state is not None
    return StatusAnswer(operation_id=state.operation_id, status=state.status)
