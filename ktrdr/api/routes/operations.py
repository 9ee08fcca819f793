"""/api/v1/operations: create, list, show, cancel, resume, and the raw event stream."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from ktrdr.api.deps import USER, System, SystemDep, read
from ktrdr.api.schemas import (
    CreateOperationRequest,
    OperationTypeName,
    ResumeRequest,
    Status,
    id_prefix_range,
    operation_id,
)
from ktrdr.bootstrap import debugging
from ktrdr.domain import OperationNotFound, RetryPolicy, describe_position, operation_stream
from ktrdr.handlers import operations as use_cases
from ktrdr.projections import views


async def _operation(system: System, op_id: str) -> dict[str, Any]:
    found = await read(system, views.get_operation, op_id)
    if found is None:
        raise OperationNotFound(op_id)
    return found


class OperationsController(Controller):
    path = "/operations"
    tags = ["operations"]

    @post("/", status_code=HTTP_201_CREATED)
    async def create_operation(
        self, system: SystemDep, data: JSONBody[CreateOperationRequest]
    ) -> dict[str, Any]:
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

    @get("/")
    async def list_operations(
        self,
        system: SystemDep,
        status: FromQuery[Status | None] = None,
        operation_type: FromQuery[OperationTypeName | None] = None,
        resumable: FromQuery[bool | None] = None,
        parent_operation_id: FromQuery[str | None] = None,
        id_prefix: Annotated[
            str | None,
            QueryParameter(description="Only operations whose id starts with these hex digits."),
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 50,
        offset: Annotated[int, QueryParameter(ge=0)] = 0,
    ) -> dict[str, Any]:
        items, total = await read(
            system,
            views.list_operations,
            status=status,
            operation_type=operation_type,
            resumable=resumable,
            parent_operation_id=operation_id(parent_operation_id) if parent_operation_id else None,
            id_range=id_prefix_range(id_prefix) if id_prefix is not None else None,
            limit=limit,
            offset=offset,
        )
        return {"items": items, "total": total}

    @get("/{op_id:str}")
    async def get_operation(
        self,
        system: SystemDep,
        op_id: FromPath[str],
        as_of_version: Annotated[
            int | None,
            QueryParameter(
                ge=1,
                description="Show the operation as it was right after this event of its"
                " stream (folded from the event log; see GET /operations/{id}/events).",
            ),
        ] = None,
    ) -> dict[str, Any]:
        op = operation_id(op_id)
        if as_of_version is not None:
            return await debugging.operation_as_of(system.event_log, op, as_of_version)
        return await _operation(system, op)

    @post("/{op_id:str}/cancel", status_code=HTTP_200_OK)
    async def cancel_operation(self, system: SystemDep, op_id: FromPath[str]) -> dict[str, Any]:
        state = await use_cases.cancel_operation(system.bus, operation_id(op_id), actor=USER)
        return await _operation(system, state.operation_id)

    @post("/{op_id:str}/resume", status_code=HTTP_200_OK)
    async def resume_operation(
        self, system: SystemDep, op_id: FromPath[str], data: JSONBody[ResumeRequest | None] = None
    ) -> dict[str, Any]:
        sequence = data.checkpoint_sequence if data else None
        state, checkpoint = await use_cases.resume_operation(
            system.bus, system.artifacts, operation_id(op_id), sequence, actor=USER
        )
        return {
            "operation_id": state.operation_id,
            "status": str(state.status),
            "resumed_from": {
                "sequence": checkpoint.sequence,
                "checkpoint_type": str(checkpoint.checkpoint_type),
                "created_at": checkpoint.created_at.isoformat(),
                "summary": describe_position(state.operation_type, checkpoint.position),
            },
        }

    @get("/{op_id:str}/metrics")
    async def operation_metrics(self, system: SystemDep, op_id: FromPath[str]) -> dict[str, Any]:
        """Metrics for plots, from the log: a training run's per-epoch losses, accuracies
        and learning rate (``epochs``), a backtest's sampled equity curve (``equity``)."""
        op = await _operation(system, operation_id(op_id))
        series = await read(system, views.metrics, op["operation_id"])
        return {
            "operation_id": op["operation_id"],
            "operation_type": op["operation_type"],
            "series": series,
        }

    @get("/{op_id:str}/events")
    async def operation_events(self, system: SystemDep, op_id: FromPath[str]) -> dict[str, Any]:
        op = operation_id(op_id)
        events = await system.event_log.read_stream(operation_stream(op))
        if not events:
            raise OperationNotFound(op)
        return {
            "operation_id": op,
            "items": [
                {
                    "global_position": e.global_position,
                    "stream_version": e.stream_version,
                    "event_id": str(e.event_id),
                    "event_type": e.event_type,
                    "schema_version": e.schema_version,
                    "data": e.data,
                    "metadata": e.metadata,
                    "recorded_at": e.recorded_at.isoformat(),
                }
                for e in events
            ],
        }
