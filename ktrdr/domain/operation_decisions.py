"""What an operation does with a command: ``decide`` returns the events to append,
or raises the DomainError that refuses it. It never changes anything itself."""

from __future__ import annotations

from datetime import timedelta
from typing import assert_never

from ktrdr.domain.errors import (
    CheckpointNotFound,
    CheckpointSequenceMismatch,
    OperationAlreadyExists,
    OperationBusy,
    OperationFinished,
    OperationNotCancellable,
    OperationNotClaimable,
    OperationNotFound,
    OperationNotResumable,
    StaleAttempt,
)
from ktrdr.domain.operation import OperationState, latest_checkpoint
from ktrdr.domain.operation_commands import (
    ClaimOperation,
    CompleteOperation,
    ConfirmCancellation,
    CreateOperation,
    DeleteCheckpoints,
    FailOperation,
    OperationCommand,
    ReportProgress,
    RequestCancellation,
    ResumeOperation,
    SaveCheckpoint,
)
from ktrdr.domain.operation_events import (
    CancellationRequested,
    CheckpointDeleted,
    CheckpointSaved,
    OperationCancelled,
    OperationClaimed,
    OperationCompleted,
    OperationCreated,
    OperationEvent,
    OperationFailed,
    ProgressReported,
    ResumeRequested,
)
from ktrdr.domain.values import json_size
from ktrdr.domain.vocabulary import CancelReason, FailureReason, OperationStatus

PROGRESS_INTERVAL = timedelta(seconds=1)
"""At most one ProgressReported per this interval and attempt (a 100 % report always passes)."""

_CLAIMABLE = (OperationStatus.PENDING, OperationStatus.RESUMING)
_STOPPED = (OperationStatus.CANCELLED, OperationStatus.FAILED)
_BUSY = (OperationStatus.RUNNING, OperationStatus.RESUMING)

WorkerWrite = ReportProgress | SaveCheckpoint | ConfirmCancellation | CompleteOperation


def decide(state: OperationState | None, command: OperationCommand) -> list[OperationEvent]:
    """The events ``command`` causes on an operation in ``state`` (None: not created yet).

    An empty list means the command is accepted but changes nothing (a repeated
    cancellation, a throttled progress report, a stale orphan verdict). A refusal
    raises a DomainError.
    """
    if isinstance(command, CreateOperation):
        return _create(state, command)
    if state is None:
        raise OperationNotFound(command.operation_id)
    if command.operation_id != state.operation_id:
        raise ValueError(
            f"a command for operation {command.operation_id} "
            f"was given the state of {state.operation_id}"
        )
    match command:
        case ClaimOperation():
            return _claim(state, command)
        case ReportProgress():
            return _report_progress(state, command)
        case SaveCheckpoint():
            return _save_checkpoint(state, command)
        case RequestCancellation():
            return _request_cancellation(state, command)
        case ConfirmCancellation():
            return _confirm_cancellation(state, command)
        case CompleteOperation():
            return _complete(state, command)
        case FailOperation():
            return _fail(state, command)
        case ResumeOperation():
            return _resume(state, command)
        case DeleteCheckpoints():
            return _delete_checkpoints(state, command)
        case _:
            assert_never(command)


def _create(state: OperationState | None, command: CreateOperation) -> list[OperationEvent]:
    if state is not None:
        raise OperationAlreadyExists(command.operation_id)
    return [
        OperationCreated(
            operation_id=command.operation_id,
            at=command.at,
            operation_type=command.operation_type,
            params=command.params,
            parent_operation_id=command.parent_operation_id,
            keep_checkpoints=command.keep_checkpoints,
        )
    ]


def _claim(state: OperationState, command: ClaimOperation) -> list[OperationEvent]:
    if state.status not in _CLAIMABLE:
        raise OperationNotClaimable(state.operation_id, state.status)
    return [
        OperationClaimed(
            operation_id=command.operation_id,
            at=command.at,
            worker_id=command.worker_id,
            attempt=state.attempt + 1,
        )
    ]


def _is_current(state: OperationState, attempt: int, worker_id: str | None) -> bool:
    # The attempt is the fencing token; the worker id must match it too, so a
    # worker can never write with another worker's claim.
    return (
        state.status == OperationStatus.RUNNING
        and attempt == state.attempt
        and (worker_id is None or worker_id == state.worker_id)
    )


def _check_fencing(state: OperationState, command: WorkerWrite) -> None:
    if not _is_current(state, command.attempt, command.worker_id):
        raise StaleAttempt(state.operation_id, command.attempt, state.attempt, state.status)


def _report_progress(state: OperationState, command: ReportProgress) -> list[OperationEvent]:
    _check_fencing(state, command)
    last = state.progress
    if (
        last is not None
        and last.attempt == command.attempt
        and command.at - last.at < PROGRESS_INTERVAL
        and command.percentage < 100
    ):
        return []
    return [
        ProgressReported(
            operation_id=command.operation_id,
            at=command.at,
            attempt=command.attempt,
            worker_id=command.worker_id,
            percentage=command.percentage,
            current_step=command.current_step,
            message=command.message,
            details=command.details,
        )
    ]


def _save_checkpoint(state: OperationState, command: SaveCheckpoint) -> list[OperationEvent]:
    _check_fencing(state, command)
    expected = state.last_sequence + 1
    if command.sequence is not None and command.sequence != expected:
        raise CheckpointSequenceMismatch(command.operation_id, command.sequence, expected)
    return [
        CheckpointSaved(
            operation_id=command.operation_id,
            at=command.at,
            attempt=command.attempt,
            worker_id=command.worker_id,
            sequence=state.last_sequence + 1,
            checkpoint_type=command.checkpoint_type,
            state=command.state,
            artifacts_path=command.artifacts_path,
            artifacts=command.artifacts,
            state_size_bytes=json_size(command.state),
            artifacts_size_bytes=command.artifacts_size_bytes,
        )
    ]


def _confirm_cancellation(
    state: OperationState, command: ConfirmCancellation
) -> list[OperationEvent]:
    _check_fencing(state, command)
    return [
        OperationCancelled(
            operation_id=command.operation_id,
            at=command.at,
            reason=CancelReason(command.reason),
            attempt=command.attempt,
        )
    ]


def _complete(state: OperationState, command: CompleteOperation) -> list[OperationEvent]:
    _check_fencing(state, command)
    return [
        OperationCompleted(
            operation_id=command.operation_id,
            at=command.at,
            attempt=command.attempt,
            result=command.result,
        )
    ]


def _request_cancellation(
    state: OperationState, command: RequestCancellation
) -> list[OperationEvent]:
    match state.status:
        case OperationStatus.PENDING | OperationStatus.RESUMING:
            # No worker holds it: nothing needs to stop, so it is cancelled at once.
            return [
                OperationCancelled(
                    operation_id=command.operation_id, at=command.at, reason=CancelReason.USER
                )
            ]
        case OperationStatus.RUNNING:
            if state.cancellation_requested:
                return []
            return [
                CancellationRequested(
                    operation_id=command.operation_id, at=command.at, reason=command.reason
                )
            ]
        case OperationStatus.CANCELLED:
            return []
        case OperationStatus.COMPLETED | OperationStatus.FAILED:
            raise OperationNotCancellable(state.operation_id, state.status)
        case _:
            assert_never(state.status)


def _fail(state: OperationState, command: FailOperation) -> list[OperationEvent]:
    if command.attempt is None:
        if state.status.terminal:
            raise OperationFinished(state.operation_id, state.status)
        ended = state.attempt if state.status == OperationStatus.RUNNING else None
    elif _is_current(state, command.attempt, command.worker_id):
        ended = command.attempt
    elif command.reason == FailureReason.ORPHANED:
        # The detector judged an attempt that has since ended or been replaced:
        # failing now would kill a newer, healthy attempt.
        return []
    else:
        raise StaleAttempt(state.operation_id, command.attempt, state.attempt, state.status)
    return [
        OperationFailed(
            operation_id=command.operation_id,
            at=command.at,
            reason=command.reason,
            message=command.message,
            attempt=ended,
        )
    ]


def _resume(state: OperationState, command: ResumeOperation) -> list[OperationEvent]:
    if state.status not in _STOPPED:
        raise OperationNotResumable(state.operation_id, state.status)
    wanted = command.checkpoint_sequence
    checkpoint = latest_checkpoint(state) if wanted is None else state.checkpoints.get(wanted)
    if checkpoint is None:
        missing = () if wanted is None else (wanted,)
        raise CheckpointNotFound(state.operation_id, missing, state.checkpoints)
    return [
        ResumeRequested(
            operation_id=command.operation_id,
            at=command.at,
            from_sequence=checkpoint.sequence,
            checkpoint_type=checkpoint.checkpoint_type,
            previous_status=state.status,
        )
    ]


def _delete_checkpoints(state: OperationState, command: DeleteCheckpoints) -> list[OperationEvent]:
    if state.status in _BUSY:
        # A running worker may be writing the next one, a resuming one reads one.
        raise OperationBusy(state.operation_id, state.status)
    live = state.checkpoints
    wanted = sorted(set(command.sequences)) if command.sequences is not None else sorted(live)
    missing = [sequence for sequence in wanted if sequence not in live]
    if not wanted or missing:
        raise CheckpointNotFound(state.operation_id, missing, live)
    return [
        CheckpointDeleted(
            operation_id=command.operation_id,
            at=command.at,
            sequences=tuple(wanted),
            reason=command.reason,
        )
    ]
