"""What an operation does with a command: ``decide`` returns the events to append,
or raises the DomainError that refuses it. It never changes anything itself."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import assert_never

from ktrdr.domain.devices import pinned_device
from ktrdr.domain.errors import (
    CheckpointNotFound,
    CheckpointNotResumable,
    CheckpointSequenceMismatch,
    ConflictingWrite,
    DeviceChangeRefused,
    OperationAlreadyExists,
    OperationBusy,
    OperationFinished,
    OperationNotCancellable,
    OperationNotClaimable,
    OperationNotFound,
    OperationNotResumable,
    StaleAttempt,
    ValidationError,
)
from ktrdr.domain.operation import CheckpointInfo, OperationState
from ktrdr.domain.operation_commands import (
    AcknowledgeClaim,
    ClaimOperation,
    CompleteOperation,
    ConfirmCancellation,
    CreateOperation,
    DeleteCheckpoints,
    EnforceTimeout,
    FailOperation,
    OperationCommand,
    RecordMetrics,
    ReleaseClaim,
    ReportCheckpointFailure,
    ReportProgress,
    RequestCancellation,
    ResumeOperation,
    RetryOperation,
    SaveCheckpoint,
    ScheduleRetry,
)
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
from ktrdr.domain.retry import retry_delay, retryable
from ktrdr.domain.values import canonical_json, json_size
from ktrdr.domain.vocabulary import (
    CancelReason,
    DeletionReason,
    FailureReason,
    OperationStatus,
    OperationType,
)

PROGRESS_INTERVAL = timedelta(seconds=1)
"""The default of ReportProgress.event_interval_seconds."""

_CLAIMABLE = (OperationStatus.PENDING, OperationStatus.RESUMING)
_STOPPED = (OperationStatus.CANCELLED, OperationStatus.FAILED)
_BUSY = (OperationStatus.RUNNING, OperationStatus.RESUMING)

WorkerWrite = (
    AcknowledgeClaim
    | ReportProgress
    | RecordMetrics
    | SaveCheckpoint
    | ReportCheckpointFailure
    | ConfirmCancellation
    | CompleteOperation
)


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
        case AcknowledgeClaim():
            return _acknowledge(state, command)
        case ReleaseClaim():
            return _release(state, command)
        case ReportProgress():
            return _report_progress(state, command)
        case RecordMetrics():
            return _record_metrics(state, command)
        case SaveCheckpoint():
            return _save_checkpoint(state, command)
        case ReportCheckpointFailure():
            return _report_checkpoint_failure(state, command)
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
        case ScheduleRetry():
            return _schedule_retry(state, command)
        case RetryOperation():
            return _retry(state, command)
        case EnforceTimeout():
            return _enforce_timeout(state, command)
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
            retry_policy=command.retry_policy,
            timeout_seconds=command.timeout_seconds,
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


def _by_this_attempt(state: OperationState, command: WorkerWrite) -> bool:
    """Whether the operation's latest claim is the command's (it may have ended since)."""
    return command.attempt == state.attempt and command.worker_id == state.worker_id


def _acknowledge(state: OperationState, command: AcknowledgeClaim) -> list[OperationEvent]:
    _check_fencing(state, command)
    if state.acknowledged_at is not None:
        return []  # a repeat: the reply to the first one was lost
    return [
        ClaimAcknowledged(
            operation_id=command.operation_id,
            at=command.at,
            attempt=command.attempt,
            worker_id=command.worker_id,
        )
    ]


def _release(state: OperationState, command: ReleaseClaim) -> list[OperationEvent]:
    if not _is_current(state, command.attempt, command.worker_id) or state.acknowledged_at:
        # Judged on an older view: the claim was acknowledged, released or replaced since.
        return []
    assert state.worker_id is not None
    released: list[OperationEvent] = [
        ClaimReleased(
            operation_id=command.operation_id,
            at=command.at,
            attempt=command.attempt,
            worker_id=state.worker_id,
            reason=command.reason,
        )
    ]
    if state.cancellation_requested:
        # Nobody runs it any more, so the cancel it was waiting for happens now.
        released.append(
            OperationCancelled(
                operation_id=command.operation_id, at=command.at, reason=CancelReason.USER
            )
        )
    return released


def _report_progress(state: OperationState, command: ReportProgress) -> list[OperationEvent]:
    _check_fencing(state, command)
    last = state.progress
    if (
        last is not None
        and last.attempt == command.attempt
        and command.at - last.at < timedelta(seconds=command.event_interval_seconds)
        and command.percentage < 100
    ):
        return []
    return [
        ProgressReported(
            **command.model_dump(exclude={"event_interval_seconds"}),
        )
    ]


def _record_metrics(state: OperationState, command: RecordMetrics) -> list[OperationEvent]:
    _check_fencing(state, command)
    return [
        MetricsRecorded(
            operation_id=command.operation_id,
            at=command.at,
            attempt=command.attempt,
            worker_id=command.worker_id,
            series=command.series,
            points=command.points,
        )
    ]


def checkpoint_content_sha256(command: SaveCheckpoint) -> str:
    """What identifies a checkpoint write: a retried POST of the same save has the same."""
    content = command.model_dump(
        mode="json",
        include={"checkpoint_type", "state", "artifacts_path", "artifacts", "artifacts_size_bytes"},
    )
    return hashlib.sha256(canonical_json(content).encode()).hexdigest()


def _save_checkpoint(state: OperationState, command: SaveCheckpoint) -> list[OperationEvent]:
    digest = checkpoint_content_sha256(command)
    if _repeated_save(state, command, digest):
        return []
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
            sequence=expected,
            checkpoint_type=command.checkpoint_type,
            state=command.state,
            artifacts_path=command.artifacts_path,
            artifacts=command.artifacts,
            state_size_bytes=json_size(command.state),
            artifacts_size_bytes=command.artifacts_size_bytes,
            content_sha256=digest,
        )
    ]


def _repeated_save(state: OperationState, command: SaveCheckpoint, digest: str) -> bool:
    """A save this attempt already committed; the same sequence with other content conflicts."""
    if command.sequence is None or command.sequence > state.last_sequence:
        return False
    saved = state.checkpoints.get(command.sequence)
    if saved is None or (saved.attempt, saved.worker_id) != (command.attempt, command.worker_id):
        return False
    if saved.content_sha256 != digest:
        raise ConflictingWrite(state.operation_id, command.attempt, f"checkpoint {saved.sequence}")
    return True


def _report_checkpoint_failure(
    state: OperationState, command: ReportCheckpointFailure
) -> list[OperationEvent]:
    _check_fencing(state, command)
    failure = state.checkpoint_failure
    if failure is not None and (failure.sequence, failure.attempt, failure.message) == (
        command.sequence,
        command.attempt,
        command.message,
    ):
        return []
    return [
        CheckpointSaveFailed(
            operation_id=command.operation_id,
            at=command.at,
            attempt=command.attempt,
            worker_id=command.worker_id,
            sequence=command.sequence,
            checkpoint_type=command.checkpoint_type,
            message=command.message,
        )
    ]


def _confirm_cancellation(
    state: OperationState, command: ConfirmCancellation
) -> list[OperationEvent]:
    if state.status == OperationStatus.CANCELLED and _by_this_attempt(state, command):
        return []  # a repeat of the confirmation that ended this attempt
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
    if state.status == OperationStatus.COMPLETED and _by_this_attempt(state, command):
        if state.result != command.result:
            raise ConflictingWrite(state.operation_id, command.attempt, "result")
        return []
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
    elif _repeated_failure(state, command):
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


def _repeated_failure(state: OperationState, command: FailOperation) -> bool:
    """A worker's failure report that already ended this attempt (its reply was lost)."""
    return (
        command.worker_id is not None
        and state.status == OperationStatus.FAILED
        and command.attempt == state.attempt
        and command.worker_id == state.worker_id
        and state.error is not None
        and (state.error.reason, state.error.message) == (command.reason, command.message)
    )


def _resume(state: OperationState, command: ResumeOperation) -> list[OperationEvent]:
    if state.status not in _STOPPED:
        raise OperationNotResumable(state.operation_id, state.status)
    if command.device and state.operation_type != OperationType.TRAINING:
        raise ValidationError(f"a {state.operation_type} operation has no device to resume on")
    checkpoint = _resume_point(state, command)
    device = pinned_device(
        {"device": command.device} if command.device else state.params, checkpoint.device
    )
    saved_on = checkpoint.device
    if saved_on and device and device != saved_on and not command.allow_device_change:
        raise DeviceChangeRefused(state.operation_id, checkpoint.sequence, saved_on, device)
    return [
        ResumeRequested(
            operation_id=command.operation_id,
            at=command.at,
            from_sequence=checkpoint.sequence,
            checkpoint_type=checkpoint.checkpoint_type,
            previous_status=state.status,
            device=device,
            allow_device_change=command.allow_device_change,
        )
    ]


def _schedule_retry(state: OperationState, command: ScheduleRetry) -> list[OperationEvent]:
    policy = state.retry_policy
    failure = state.error.reason if state.error else None
    if (
        state.next_retry_at is not None
        or state.started_attempts >= policy.max_attempts
        or not retryable(policy, state.status, failure, state.cancel_reason)
    ):
        return []  # already waiting, out of attempts, or not a stop a retry can mend
    return [
        RetryScheduled(
            operation_id=command.operation_id,
            at=command.at,
            attempt=state.started_attempts + 1,
            retry_at=command.at + retry_delay(policy, state.retries),
            reason=str(failure or state.cancel_reason),
        )
    ]


def _retry(state: OperationState, command: RetryOperation) -> list[OperationEvent]:
    if state.next_retry_at is None or command.at < state.next_retry_at:
        return []  # not due, or done already (by this processor, or a person's resume)
    if _past_deadline(state, command.at):
        return [_timed_out(state, command.at)]
    newest = _newest(_intact(state, command.unavailable))
    return [
        ResumeRequested(
            operation_id=command.operation_id,
            at=command.at,
            from_sequence=newest.sequence if newest else None,
            checkpoint_type=newest.checkpoint_type if newest else None,
            previous_status=state.status,
            device=pinned_device(state.params, newest.device if newest else None),
            allow_device_change=bool(state.params.get("allow_device_change", False)),
        )
    ]


def _enforce_timeout(state: OperationState, command: EnforceTimeout) -> list[OperationEvent]:
    waiting = state.status in _STOPPED and state.next_retry_at is not None
    if not _past_deadline(state, command.at) or (state.status.terminal and not waiting):
        return []
    return [_timed_out(state, command.at)]


def _past_deadline(state: OperationState, at: datetime) -> bool:
    ends = state.deadline_at
    return ends is not None and at >= ends


def _timed_out(state: OperationState, at: datetime) -> OperationFailed:
    return OperationFailed(
        operation_id=state.operation_id,
        at=at,
        reason=FailureReason.TIMEOUT,
        message=f"past its timeout of {state.timeout_seconds:g}s from its start; not retried",
        attempt=state.attempt if state.status == OperationStatus.RUNNING else None,
    )


def _intact(state: OperationState, unavailable: tuple[int, ...]) -> dict[int, CheckpointInfo]:
    """Live checkpoints whose files are there."""
    return {seq: c for seq, c in state.checkpoints.items() if seq not in unavailable}


def _newest(checkpoints: dict[int, CheckpointInfo]) -> CheckpointInfo | None:
    return checkpoints[max(checkpoints)] if checkpoints else None


def _resume_point(state: OperationState, command: ResumeOperation) -> CheckpointInfo:
    """The checkpoint asked for, or the newest one whose files are there."""
    intact = _intact(state, command.unavailable)
    wanted = command.checkpoint_sequence
    if wanted is None:
        newest = _newest(intact)
        if newest is None:
            raise CheckpointNotFound(state.operation_id, (), intact)
        return newest
    if wanted in intact:
        return intact[wanted]
    if wanted in state.checkpoints:
        raise CheckpointNotResumable(state.operation_id, wanted, "its files are missing", intact)
    if wanted <= state.last_sequence:
        raise CheckpointNotResumable(state.operation_id, wanted, "it was deleted", intact)
    raise CheckpointNotFound(state.operation_id, (wanted,), intact)


def _delete_checkpoints(state: OperationState, command: DeleteCheckpoints) -> list[OperationEvent]:
    live = state.checkpoints
    wanted = sorted(set(command.sequences)) if command.sequences is not None else sorted(live)
    _check_deletable(state, command, wanted)
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


def _check_deletable(state: OperationState, command: DeleteCheckpoints, wanted: list[int]) -> None:
    superseded = command.reason == DeletionReason.SUPERSEDED
    if state.status == OperationStatus.RUNNING and superseded:
        # Retention while it runs: never the newest (the run's own progress) nor the one
        # this attempt resumed from (its worker may still be reading it).
        kept = {max(state.checkpoints, default=0), state.resumed_from}
        if kept.intersection(wanted):
            raise OperationBusy(state.operation_id, state.status)
        return
    if state.status in _BUSY:
        # A running worker may be writing the next one, a resuming one reads one.
        raise OperationBusy(state.operation_id, state.status)
