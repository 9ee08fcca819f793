"""An operation's state, folded from its events.

Invariants the fold keeps: ``version`` is the number of events folded;
``last_sequence`` only grows (a deleted checkpoint's sequence is never reused);
``cancellation_requested`` is only ever true while running; ``worker_id`` and
``attempt`` describe the latest claim, also after the operation stopped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, assert_never

from ktrdr.domain.checkpoint_summary import Position, checkpoint_position
from ktrdr.domain.devices import RunDevice, checkpoint_device
from ktrdr.domain.errors import CorruptHistory
from ktrdr.domain.operation_events import (
    CancellationRequested,
    CheckpointDeleted,
    CheckpointSaved,
    CheckpointSaveFailed,
    ClaimAcknowledged,
    ClaimReleased,
    MetricsRecorded,
    OperationCancelled,
    OperationClaimed,
    OperationCompleted,
    OperationCreated,
    OperationEvent,
    OperationFailed,
    ProgressReported,
    ResumeRequested,
    RetryScheduled,
)
from ktrdr.domain.retry import MANUAL, RetryPolicy, deadline
from ktrdr.domain.values import ArtifactFile
from ktrdr.domain.vocabulary import (
    CancelReason,
    CheckpointType,
    FailureReason,
    OperationStatus,
    OperationType,
)


@dataclass(frozen=True, slots=True)
class Progress:
    percentage: float
    current_step: str
    message: str
    details: Mapping[str, Any]
    at: datetime
    attempt: int


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    reason: FailureReason
    message: str


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    """What decisions need of a checkpoint. Its state is not here: it is written once, in
    its own row of the checkpoint read model, so the aggregate stays small however long
    the run (the projections and the claim read it from there)."""

    sequence: int
    checkpoint_type: CheckpointType
    position: Position
    """Where the run was: its epoch, bar or phase."""
    artifacts_path: str | None
    artifacts: tuple[ArtifactFile, ...]
    state_size_bytes: int
    artifacts_size_bytes: int
    attempt: int
    worker_id: str
    created_at: datetime
    content_sha256: str | None = None
    device: RunDevice | None = None
    """The device a training run made it on (None: not said, as before devices existed)."""


@dataclass(frozen=True, slots=True)
class CheckpointFailure:
    """The latest checkpoint a worker could not store; cleared by the next one saved."""

    sequence: int
    checkpoint_type: CheckpointType
    message: str
    attempt: int
    at: datetime


@dataclass(frozen=True, slots=True)
class OperationState:
    operation_id: str
    operation_type: OperationType
    status: OperationStatus
    params: Mapping[str, Any]
    parent_operation_id: str | None
    keep_checkpoints: bool
    created_at: datetime
    version: int
    attempt: int = 0
    worker_id: str | None = None
    started_at: datetime | None = None
    """The first claim's time: an operation started once, however often it resumed."""
    claimed_at: datetime | None = None
    """The latest claim's time (an unacknowledged claim is judged from it)."""
    acknowledged_at: datetime | None = None
    """When the latest claim's worker acknowledged it; None while it has not (yet)."""
    started_attempts: int = 0
    """Claims a worker acknowledged: runs that really started (released claims do not count)."""
    completed_at: datetime | None = None
    progress: Progress | None = None
    error: ErrorInfo | None = None
    result: Mapping[str, Any] | None = None
    cancellation_requested: bool = False
    checkpoints: Mapping[int, CheckpointInfo] = dataclasses.field(default_factory=dict)
    """Live (not deleted) checkpoints by sequence."""
    last_sequence: int = 0
    resumed_from: int | None = None
    checkpoint_failure: CheckpointFailure | None = None
    retry_policy: RetryPolicy = MANUAL
    timeout_seconds: float | None = None
    cancel_reason: CancelReason | None = None
    retries: int = 0
    """Retries scheduled so far (each one's interval backs off from the last)."""
    next_retry_at: datetime | None = None
    """When the scheduled retry runs; None when none is waiting."""

    @property
    def deadline_at(self) -> datetime | None:
        """When the operation times out (start to close); None without a timeout."""
        return deadline(self.started_at, self.timeout_seconds)

    @property
    def resumable(self) -> bool:
        return resumable(self)

    @property
    def latest_checkpoint(self) -> CheckpointInfo | None:
        return latest_checkpoint(self)


def resumable(state: OperationState | None) -> bool:
    """Only a cancelled or failed operation with a live checkpoint can resume."""
    return (
        state is not None
        and state.status in (OperationStatus.CANCELLED, OperationStatus.FAILED)
        and bool(state.checkpoints)
    )


def latest_checkpoint(state: OperationState | None) -> CheckpointInfo | None:
    if state is None or not state.checkpoints:
        return None
    return state.checkpoints[max(state.checkpoints)]


def fold(
    events: Iterable[OperationEvent], state: OperationState | None = None
) -> OperationState | None:
    """The state after ``events``, starting from ``state`` (a snapshot) or from nothing."""
    for event in events:
        state = evolve(state, event)
    return state


def evolve(state: OperationState | None, event: OperationEvent) -> OperationState:
    if isinstance(event, OperationCreated):
        if state is not None:
            raise CorruptHistory(f"operation {event.operation_id} is created twice")
        return _created(event)
    if state is None:
        raise CorruptHistory(
            f"{type(event).__name__} of operation {event.operation_id} before OperationCreated"
        )
    return dataclasses.replace(_applied(state, event), version=state.version + 1)


def _created(event: OperationCreated) -> OperationState:
    return OperationState(
        operation_id=event.operation_id,
        operation_type=event.operation_type,
        status=OperationStatus.PENDING,
        params=event.params,
        parent_operation_id=event.parent_operation_id,
        keep_checkpoints=event.keep_checkpoints,
        created_at=event.at,
        version=1,
        retry_policy=event.retry_policy or MANUAL,
        timeout_seconds=event.timeout_seconds,
    )


def _applied(state: OperationState, event: OperationEvent) -> OperationState:
    replace = dataclasses.replace
    match event:
        case OperationCreated():
            raise CorruptHistory(f"operation {event.operation_id} is created twice")
        case OperationClaimed():
            return replace(
                state,
                status=OperationStatus.RUNNING,
                worker_id=event.worker_id,
                attempt=event.attempt,
                started_at=state.started_at or event.at,
                claimed_at=event.at,
                acknowledged_at=None,
                cancellation_requested=False,
            )
        case ClaimAcknowledged():
            return replace(
                state, acknowledged_at=event.at, started_attempts=state.started_attempts + 1
            )
        case ClaimReleased():
            return replace(
                state,
                status=_queued(state),
                started_at=state.started_at if state.started_attempts else None,
                claimed_at=None,
                cancellation_requested=False,
            )
        case ProgressReported():
            return replace(state, progress=_progress(event))
        case MetricsRecorded():
            return state  # plotted from the log; the aggregate has no use for them
        case CheckpointSaved():
            info = _checkpoint(event, state.operation_type)
            checkpoints = {**state.checkpoints, event.sequence: info}
            last = max(state.last_sequence, event.sequence)
            return replace(
                state, checkpoints=checkpoints, last_sequence=last, checkpoint_failure=None
            )
        case CheckpointSaveFailed():
            failure = CheckpointFailure(
                event.sequence, event.checkpoint_type, event.message, event.attempt, event.at
            )
            return replace(state, checkpoint_failure=failure)
        case CancellationRequested():
            return replace(state, cancellation_requested=True)
        case OperationCancelled():
            cancelled = _ended(state, OperationStatus.CANCELLED, event.at)
            return replace(cancelled, cancel_reason=event.reason)
        case OperationFailed():
            failed = _ended(state, OperationStatus.FAILED, event.at)
            return replace(failed, error=ErrorInfo(event.reason, event.message))
        case RetryScheduled():
            return replace(state, retries=state.retries + 1, next_retry_at=event.retry_at)
        case OperationCompleted():
            completed = _ended(state, OperationStatus.COMPLETED, event.at)
            return replace(completed, result=event.result)
        case ResumeRequested():
            return replace(
                state,
                params=_resumed_params(state.params, event),
                status=OperationStatus.RESUMING,
                resumed_from=event.from_sequence,
                error=None,
                cancel_reason=None,
                cancellation_requested=False,
                completed_at=None,
                next_retry_at=None,
            )
        case CheckpointDeleted():
            gone = set(event.sequences)
            kept = {seq: info for seq, info in state.checkpoints.items() if seq not in gone}
            return replace(state, checkpoints=kept)
        case _:
            assert_never(event)


def _resumed_params(params: Mapping[str, Any], event: ResumeRequested) -> Mapping[str, Any]:
    """The params a resume runs with: its device pinned, and whether it may change."""
    if event.device is None:
        return params
    kept = {key: value for key, value in params.items() if key != "allow_device_change"}
    allowed = {"allow_device_change": True} if event.allow_device_change else {}
    return {**kept, "device": event.device, **allowed}


def _queued(state: OperationState) -> OperationStatus:
    """Where a released claim goes back to: resuming if a resume had queued it."""
    return OperationStatus.PENDING if state.resumed_from is None else OperationStatus.RESUMING


def _ended(state: OperationState, status: OperationStatus, at: datetime) -> OperationState:
    return dataclasses.replace(
        state, status=status, completed_at=at, cancellation_requested=False, next_retry_at=None
    )


def _progress(event: ProgressReported) -> Progress:
    return Progress(
        percentage=event.percentage,
        current_step=event.current_step,
        message=event.message,
        details=event.details,
        at=event.at,
        attempt=event.attempt,
    )


def _checkpoint(event: CheckpointSaved, operation_type: OperationType) -> CheckpointInfo:
    return CheckpointInfo(
        sequence=event.sequence,
        checkpoint_type=event.checkpoint_type,
        position=checkpoint_position(operation_type, event.state),
        artifacts_path=event.artifacts_path,
        artifacts=event.artifacts,
        state_size_bytes=event.state_size_bytes,
        artifacts_size_bytes=event.artifacts_size_bytes,
        attempt=event.attempt,
        worker_id=event.worker_id,
        created_at=event.at,
        content_sha256=event.content_sha256,
        device=checkpoint_device(event.state) if operation_type == "training" else None,
    )
