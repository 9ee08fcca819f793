"""/api/v1/operations: create, list, show, cancel, resume, and the raw event stream."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from ktrdr.api.deps import USER, System, SystemDep, read
from ktrdr.api.openapi import problems
from ktrdr.api.schemas import (
    CreateOperationRequest,
    OperationTypeName,
    ResumeRequest,
    Status,
    id_prefix_range,
)
from ktrdr.bootstrap import debugging
from ktrdr.contracts import (
    CheckpointBrief,
    EventView,
    OperationEvents,
    OperationMetrics,
    OperationPage,
    OperationView,
    Resumed,
)
from ktrdr.domain import OperationNotFound, RetryPolicy, describe_position, operation_stream
from ktrdr.handlers import operations as use_cases
from ktrdr.projections import views


async def _operation(system: System, op_id: str) -> OperationView:
    found = await read(system, views.get_operation, op_id)
    if found is None:
        raise OperationNotFound(op_id)
    return OperationView.model_validate(found)


class OperationsController(Controller):
    path = "/operations"
    tags = ["operations"]

    @post("/", status_code=HTTP_201_CREATED, responses=problems(409, 422))
    async def create_operation(
        self, system: SystemDep, data: JSONBody[CreateOperationRequest]
    ) -> OperationView:
        defaults = use_cases.default_retry_policy(system.settings)
        asked = data.retry_policy.model_dump(exclude_none=True) if data.retry_policy else {}
        state = await use_cases.create_operation(
            system.bus,
            data.operation_type,
            data.params,
            parent_operation_id=data.parent_operation_id,
            keep_checkpoints=data.keep_checkpoints,
            retry_policy=RetryPolicy.model_validate(defaults.model_dump() | asked),
            timeout_seconds=data.timeout_seconds,
            actor=USER,
        )
        return await _operation(system, state.operation_id)

    @get("/", responses=problems())
    async def list_operations(
        self,
        system: SystemDep,
        status: FromQuery[Status | None] = None,
        operation_type: FromQuery[OperationTypeName | None] = None,
        resumable: FromQuery[bool | None] = None,
        parent_operation_id: FromQuery[UUID | None] = None,
        id_prefix: Annotated[
            str | None,
            QueryParameter(description="Only operations whose id starts with these hex digits."),
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 50,
        offset: Annotated[int, QueryParameter(ge=0)] = 0,
    ) -> OperationPage:
        items, total = await read(
            system,
            views.list_operations,
            status=status,
            operation_type=operation_type,
            resumable=resumable,
            parent_operation_id=str(parent_operation_id) if parent_operation_id else None,
            id_range=id_prefix_range(id_prefix) if id_prefix is not None else None,
            limit=limit,
            offset=offset,
        )
        return OperationPage.model_validate({"items": items, "total": total})

    @get("/{op_id:str}", responses=problems(404, 422))
    async def get_operation(
        self,
        system: SystemDep,
        op_id: FromPath[UUID],
        as_of_version: Annotated[
            int | None,
            QueryParameter(
                ge=1,
                description="Show the operation as it was right after this event of its"
                " stream (folded from the event log; see GET /operations/{id}/events).",
            ),
        ] = None,
    ) -> OperationView:
        if as_of_version is not None:
            shown = await debugging.operation_as_of(system.event_log, str(op_id), as_of_version)
            return OperationView.model_validate(shown)
        return await _operation(system, str(op_id))

    @post("/{op_id:str}/cancel", status_code=HTTP_200_OK, responses=problems(404, 409))
    async def cancel_operation(self, system: SystemDep, op_id: FromPath[UUID]) -> OperationView:
        state = await use_cases.cancel_operation(system.bus, str(op_id), actor=USER)
        return await _operation(system, state.operation_id)

    @post("/{op_id:str}/resume", status_code=HTTP_200_OK, responses=problems(404, 409))
    async def resume_operation(
        self, system: SystemDep, op_id: FromPath[UUID], data: JSONBody[ResumeRequest | None] = None
    ) -> Resumed:
        asked = data or ResumeRequest()
        state, checkpoint = await use_cases.resume_operation(
            system.bus,
            system.artifacts,
            str(op_id),
            asked.checkpoint_sequence,
            device=asked.device,
            allow_device_change=asked.allow_device_change,
            actor=USER,
        )
        return Resumed(
            operation_id=state.operation_id,
            status=state.status,
            device=state.params.get("device") if state.operation_type == "training" else None,
            resumed_from=CheckpointBrief(
                sequence=checkpoint.sequence,
                checkpoint_type=checkpoint.checkpoint_type,
                created_at=checkpoint.created_at,
                summary=describe_position(state.operation_type, checkpoint.position),
            ),
        )

    @get("/{op_id:str}/metrics", responses=problems(404))
    async def operation_metrics(self, system: SystemDep, op_id: FromPath[UUID]) -> OperationMetrics:
        """Metrics for plots, from the log: a training run's per-epoch losses, accuracies
        and learning rate (``epochs``), a backtest's sampled equity curve (``equity``)."""
        op = await _operation(system, str(op_id))
        series = await read(system, views.metrics, op.operation_id)
        return OperationMetrics(
            operation_id=op.operation_id, operation_type=op.operation_type, series=series
        )

    @get("/{op_id:str}/events", responses=problems(404))
    async def operation_events(self, system: SystemDep, op_id: FromPath[UUID]) -> OperationEvents:
        op = str(op_id)
        events = await system.event_log.read_stream(operation_stream(op))
        if not events:
            raise OperationNotFound(op)
        return OperationEvents(
            operation_id=op,
            items=[
                EventView(
                    global_position=e.global_position,
                    stream_version=e.stream_version,
                    event_id=str(e.event_id),
                    event_type=e.event_type,
                    schema_version=e.schema_version,
                    data=e.data,
                    metadata=e.metadata,
                    recorded_at=e.recorded_at,
                )
                for e in events
            ],
        )
