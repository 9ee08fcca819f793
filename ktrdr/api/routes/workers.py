"""/api/v1/workers: register, heartbeat, claim (long-poll), deregister, list."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Mapping
from typing import Annotated, Any, cast

from litestar import Controller, Request, Response, delete, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from ktrdr.api.deps import System, SystemDep, read
from ktrdr.api.openapi import problems
from ktrdr.api.schemas import ClaimRequest, HeartbeatRequest, RegisterWorkerRequest
from ktrdr.contracts import (
    WORKER_ID_PATTERN,
    CheckpointForWorker,
    Claim,
    Deregistered,
    HeartbeatAnswer,
    Registered,
    Standing,
    WorkerList,
)
from ktrdr.domain import RegisterWorker, describe_position
from ktrdr.domain.operation import CheckpointInfo
from ktrdr.domain.worker import CudaInfo
from ktrdr.handlers import workers as use_cases
from ktrdr.projections import views

WorkerIdPath = Annotated[
    str,
    PathParameter(
        pattern=WORKER_ID_PATTERN,
        max_length=200,
        description="The id the worker registered with: letters, digits and ``._:@-``.",
    ),
]


def _standing(judged: use_cases.Standing | None) -> Standing | None:
    if judged is None:
        return None
    return Standing(
        operation_id=judged.operation_id,
        attempt=judged.attempt,
        action="continue" if judged.keep else "drop",
        reason=judged.reason,
    )


def checkpoint_for_worker(
    info: CheckpointInfo, operation_type: str, state: Mapping[str, Any]
) -> CheckpointForWorker:
    return CheckpointForWorker.model_validate(
        {
            "sequence": info.sequence,
            "checkpoint_type": info.checkpoint_type,
            "state": state,
            "artifacts_path": info.artifacts_path,
            "artifacts": [a.model_dump() for a in info.artifacts],
            "created_at": info.created_at,
            "summary": describe_position(operation_type, info.position),
        }
    )


def _settings(system: System) -> dict[str, float]:
    return {
        "heartbeat_interval_seconds": system.settings.heartbeat_interval_seconds,
        "orphan_timeout_seconds": system.settings.orphan_timeout_seconds,
    }


_CLAIM_RESPONSES = {
    **problems(404, 422),
    HTTP_204_NO_CONTENT: ResponseSpec(None, description="No operation came in the wait"),
}


class WorkersController(Controller):
    path = "/workers"
    tags = ["workers"]

    @post("/", status_code=HTTP_201_CREATED, responses=problems(422))
    async def register_worker(
        self, system: SystemDep, data: JSONBody[RegisterWorkerRequest]
    ) -> Registered:
        command = RegisterWorker(
            worker_id=data.worker_id
            or f"{data.worker_type}-{socket.gethostname()}-{uuid.uuid4().hex[:8]}",
            at=system.bus.clock(),
            worker_type=data.worker_type,
            host=data.host,
            pid=data.pid,
            capabilities=tuple(data.capabilities),
            cuda=CudaInfo.model_validate(data.cuda.model_dump()) if data.cuda else None,
            version=data.version,
            current_operation_id=data.current_operation_id,
            current_attempt=data.current_attempt,
        )
        state, judged = await use_cases.register_worker(system.bus, system.pool, command)
        return Registered(
            worker_id=state.worker_id,
            status=state.status,
            current_operation=_standing(judged),
            **_settings(system),
        )

    @post("/{worker_id:str}/heartbeat", status_code=HTTP_200_OK, responses=problems(404, 422))
    async def heartbeat(
        self, system: SystemDep, worker_id: WorkerIdPath, data: JSONBody[HeartbeatRequest]
    ) -> HeartbeatAnswer:
        judged, cancel = await use_cases.heartbeat(
            system.bus, system.pool, worker_id, data.operation_id, data.attempt
        )
        return HeartbeatAnswer(current_operation=_standing(judged), cancellation_requested=cancel)

    @post("/{worker_id:str}/claim", status_code=HTTP_200_OK, responses=_CLAIM_RESPONSES)
    async def claim(
        self,
        system: SystemDep,
        request: Request[Any, Any, Any],
        worker_id: WorkerIdPath,
        data: JSONBody[ClaimRequest],
    ) -> Response[Claim]:
        # The body is read, so the next message the server has for us is the disconnect.
        hangup = asyncio.ensure_future(request.receive())
        try:
            claimed = await use_cases.claim_operation(
                system.bus, system.pool, system.work, worker_id, data.wait_seconds, hangup
            )
        finally:
            hangup.cancel()
        if claimed is None:
            # No body: the annotation names what a 200 carries.
            return Response(content=cast(Claim, None), status_code=HTTP_204_NO_CONTENT)
        state = claimed.state
        kind = str(state.operation_type)
        return Response(
            Claim(
                operation_id=state.operation_id,
                operation_type=state.operation_type,
                params=dict(state.params),
                attempt=state.attempt,
                next_checkpoint_sequence=state.last_sequence + 1,
                resume_from=claimed.resume_from
                and checkpoint_for_worker(
                    claimed.resume_from, kind, claimed.states[claimed.resume_from.sequence]
                ),
                fallbacks=[
                    checkpoint_for_worker(c, kind, claimed.states[c.sequence])
                    for c in claimed.fallbacks
                ],
            )
        )

    @delete("/{worker_id:str}", status_code=HTTP_200_OK, responses=problems(404))
    async def deregister_worker(
        self, system: SystemDep, worker_id: WorkerIdPath, reason: FromQuery[str] = "shutdown"
    ) -> Deregistered:
        state = await use_cases.deregister_worker(system.bus, worker_id, reason)
        return Deregistered(worker_id=state.worker_id, status=state.status)

    @get("/", responses=problems())
    async def list_workers(
        self,
        system: SystemDep,
        include_deregistered: FromQuery[bool] = False,
        include_lost: Annotated[
            bool,
            QueryParameter(
                description="Also list workers lost for longer than ten orphan timeouts"
                " (hidden by default: a dead worker is not news for long)."
            ),
        ] = False,
    ) -> WorkerList:
        items = await read(
            system,
            views.list_workers,
            now=system.bus.clock(),
            lost_after_seconds=system.settings.orphan_timeout_seconds,
            include_deregistered=include_deregistered,
            include_lost=include_lost,
        )
        return WorkerList.model_validate({"items": items, "total": len(items)})
