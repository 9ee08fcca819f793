"""/api/v1/checkpoints: the latest checkpoint per operation, its history, stats, cleanup."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, delete, get, post
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.status_codes import HTTP_200_OK

from ktrdr.api.deps import USER, SystemDep, read
from ktrdr.api.openapi import problems
from ktrdr.api.schemas import CheckpointTypeName, OperationTypeName
from ktrdr.contracts import (
    CheckpointHistory,
    CheckpointPage,
    CheckpointsDeleted,
    CheckpointStats,
    CheckpointView,
    CleanupReport,
)
from ktrdr.domain import CheckpointNotFound, OperationNotFound
from ktrdr.handlers import operations as use_cases
from ktrdr.handlers.cleanup import run_cleanup
from ktrdr.projections import views


class CheckpointsController(Controller):
    path = "/checkpoints"
    tags = ["checkpoints"]

    @get("/", responses=problems())
    async def list_checkpoints(
        self,
        system: SystemDep,
        operation_type: FromQuery[OperationTypeName | None] = None,
        checkpoint_type: FromQuery[CheckpointTypeName | None] = None,
        older_than_days: Annotated[float | None, QueryParameter(gt=0)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 50,
        offset: Annotated[int, QueryParameter(ge=0)] = 0,
    ) -> CheckpointPage:
        items, total = await read(
            system,
            views.list_checkpoints,
            now=system.bus.clock(),
            operation_type=operation_type,
            checkpoint_type=checkpoint_type,
            older_than_days=older_than_days,
            limit=limit,
            offset=offset,
        )
        return CheckpointPage.model_validate(
            {"items": [_marked(system, i) for i in items], "total": total}
        )

    @get("/stats", responses=problems())
    async def checkpoint_stats(self, system: SystemDep) -> CheckpointStats:
        """Every live checkpoint: counts, the sizes their events recorded, the bytes of
        their rows in the database and of the artifact files on disk."""
        totals = await read(system, views.checkpoint_stats)
        on_disk = await asyncio.to_thread(system.artifacts.disk_usage)
        return CheckpointStats.model_validate({**totals, "artifacts_on_disk_bytes": on_disk})

    @post("/cleanup", status_code=HTTP_200_OK, responses=problems())
    async def cleanup(
        self, system: SystemDep, max_age_days: Annotated[float | None, QueryParameter(ge=1)] = None
    ) -> CleanupReport:
        report = await run_cleanup(
            system.bus,
            system.pool,
            system.artifacts,
            max_age_days=max_age_days or system.settings.checkpoint_max_age_days,
            now=system.bus.clock(),
            actor=USER,
        )
        return CleanupReport.model_validate(report.as_json())

    @get("/{op_id:str}", responses=problems(404))
    async def get_checkpoint(self, system: SystemDep, op_id: FromPath[UUID]) -> CheckpointView:
        op = str(op_id)
        found = await read(system, views.get_checkpoint, op)
        if found is None:
            await _must_exist(system, op)
            raise CheckpointNotFound(op)
        return CheckpointView.model_validate(_marked(system, found))

    @get("/{op_id:str}/history", responses=problems(404))
    async def checkpoint_history(
        self, system: SystemDep, op_id: FromPath[UUID]
    ) -> CheckpointHistory:
        op = str(op_id)
        await _must_exist(system, op)
        items = await read(system, views.checkpoint_history, op)
        marked = [_marked(system, item) for item in items]
        return CheckpointHistory.model_validate(
            {"operation_id": op, "items": marked, "total": len(items)}
        )

    @delete("/{op_id:str}", status_code=HTTP_200_OK, responses=problems(404, 409))
    async def delete_checkpoints(
        self, system: SystemDep, op_id: FromPath[UUID]
    ) -> CheckpointsDeleted:
        op = str(op_id)
        deleted = await use_cases.delete_checkpoints(system.bus, system.artifacts, op, actor=USER)
        return CheckpointsDeleted(operation_id=op, deleted_sequences=deleted)


def _marked(system: SystemDep, item: dict[str, Any]) -> dict[str, Any]:
    return use_cases.with_availability(system.artifacts, item)


async def _must_exist(system: SystemDep, op: str) -> None:
    if await read(system, views.get_operation, op) is None:
        raise OperationNotFound(op)
