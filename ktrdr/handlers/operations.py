"""Operation use cases beyond the generic bus path: ids, resume answers, artifact removal."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ktrdr.artifacts import ArtifactStore
from ktrdr.config import Settings
from ktrdr.domain import (
    ArtifactFile,
    CheckpointNotFound,
    CreateOperation,
    DeleteCheckpoints,
    OperationNotFound,
    RequestCancellation,
    ResumeOperation,
    ResumeRequested,
    RetryPolicy,
    parse_operation_params,
)
from ktrdr.domain.devices import RunDevice
from ktrdr.domain.operation import CheckpointInfo, OperationState
from ktrdr.handlers.bus import CommandBus


def default_retry_policy(settings: Settings) -> RetryPolicy:
    """The policy of an operation created without one (KTRDR_RETRY_*)."""
    return RetryPolicy(
        max_attempts=settings.retry_max_attempts,
        initial_interval_seconds=settings.retry_initial_interval_seconds,
        backoff_coefficient=settings.retry_backoff_coefficient,
        maximum_interval_seconds=settings.retry_maximum_interval_seconds,
    )


async def create_operation(
    bus: CommandBus,
    operation_type: str,
    params: Mapping[str, Any],
    *,
    parent_operation_id: str | None = None,
    keep_checkpoints: bool = False,
    retry_policy: RetryPolicy,
    timeout_seconds: float | None = None,
    actor: str,
) -> OperationState:
    """``retry_policy``: complete (the defaults filled in), so the event records it whole."""
    parse_operation_params(operation_type, params)  # refused before anything is recorded
    command = CreateOperation(
        operation_id=str(uuid.uuid4()),
        at=bus.clock(),
        operation_type=operation_type,
        params=dict(params),
        parent_operation_id=parent_operation_id,
        keep_checkpoints=keep_checkpoints,
        retry_policy=retry_policy,
        timeout_seconds=timeout_seconds,
    )
    state, _ = await bus.operation(command, actor=actor)
    assert state is not None
    return state


async def cancel_operation(bus: CommandBus, operation_id: str, *, actor: str) -> OperationState:
    state, _ = await bus.operation(
        RequestCancellation(operation_id=operation_id, at=bus.clock()), actor=actor
    )
    assert state is not None
    return state


def unavailable(store: ArtifactStore, state: OperationState) -> tuple[int, ...]:
    """Live checkpoints whose files are not all there (deleted behind the log's back)."""
    return tuple(
        sequence
        for sequence, info in sorted(state.checkpoints.items())
        if not store.intact(info.artifacts_path, info.artifacts)
    )


def with_availability(store: ArtifactStore, item: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint as listed, with whether its files are there to resume from."""
    files = [ArtifactFile.model_validate(a) for a in item["artifacts"]]
    return {**item, "resumable": store.intact(item["artifacts_path"], files)}


async def resume_operation(
    bus: CommandBus,
    store: ArtifactStore,
    operation_id: str,
    checkpoint_sequence: int | None = None,
    *,
    device: RunDevice | None = None,
    allow_device_change: bool = False,
    actor: str,
) -> tuple[OperationState, CheckpointInfo]:
    """Resume from the checkpoint asked for, or the newest one whose files are there."""
    before = await bus.states.operation(operation_id)
    command = ResumeOperation(
        operation_id=operation_id,
        at=bus.clock(),
        checkpoint_sequence=checkpoint_sequence,
        unavailable=unavailable(store, before) if before else (),
        device=device,
        allow_device_change=allow_device_change,
    )
    state, events = await bus.operation(command, actor=actor)
    assert state is not None
    [requested] = [e for e in events if isinstance(e, ResumeRequested)]
    assert requested.from_sequence is not None  # a person resumes from a checkpoint
    return state, state.checkpoints[requested.from_sequence]


async def delete_checkpoints(
    bus: CommandBus,
    store: ArtifactStore,
    operation_id: str,
    sequences: Sequence[int] | None = None,
    *,
    reason: str = "manual",
    actor: str,
    causation_id: str | None = None,
) -> list[int]:
    """Append CheckpointDeleted, then remove the artifact sets (the event is the commit;
    a removal that fails leaves an orphan directory for cleanup, never a dangling event).

    ``actor`` names who deletes (a user, or the processor); ``causation_id`` the event
    that made a processor do it."""
    command = DeleteCheckpoints(
        operation_id=operation_id,
        at=bus.clock(),
        sequences=tuple(sequences) if sequences else None,
        reason=reason,
    )
    before = await bus.states.operation(operation_id)
    if before is None:
        raise OperationNotFound(operation_id)
    _, events = await bus.operation(command, actor=actor, causation_id=causation_id)
    deleted = [seq for e in events for seq in getattr(e, "sequences", ())]
    if not deleted:
        raise CheckpointNotFound(operation_id, sequences or (), before.checkpoints)
    store.delete(operation_id, deleted)
    return deleted
