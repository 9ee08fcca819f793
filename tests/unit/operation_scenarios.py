"""Given events, when a command, then events (or a refusal): the operation test language.

Builders take the time as seconds after T0 (``t``) and default everything else to
one operation run by worker W1 on attempt 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from ktrdr.domain import (
    AcknowledgeClaim,
    ArtifactFile,
    CancellationRequested,
    CheckpointDeleted,
    CheckpointSaved,
    CheckpointSaveFailed,
    ClaimAcknowledged,
    ClaimOperation,
    ClaimReleased,
    CompleteOperation,
    ConfirmCancellation,
    CreateOperation,
    DeleteCheckpoints,
    DomainError,
    FailOperation,
    OperationCancelled,
    OperationClaimed,
    OperationCommand,
    OperationCompleted,
    OperationCreated,
    OperationEvent,
    OperationFailed,
    OperationState,
    ProgressReported,
    ReleaseClaim,
    ReportCheckpointFailure,
    ReportProgress,
    RequestCancellation,
    ResumeOperation,
    ResumeRequested,
    RetryScheduled,
    SaveCheckpoint,
    decide,
    evolve,
    fold,
    json_size,
)

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
OP = "0b7e4c1e-5a55-4b8e-9d7c-7f0c1a2b3c4d"
PARENT = "9a1f0c2d-3e4b-4c5d-8e6f-a7b8c9d0e1f2"
W1 = "trainer-1"
W2 = "trainer-2"
SHA = "ab" * 32

E = TypeVar("E", bound=DomainError)


def at(t: float) -> datetime:
    return T0 + timedelta(seconds=t)


# Events -------------------------------------------------------------------------------


def created(t: float = 0, **fields: Any) -> OperationCreated:
    values: dict[str, Any] = {"operation_id": OP, "at": at(t), "operation_type": "training"}
    return OperationCreated(**(values | {"params": {"epochs": 10}} | fields))


def claimed(attempt: int = 1, worker_id: str = W1, t: float = 1) -> OperationClaimed:
    return OperationClaimed(operation_id=OP, at=at(t), worker_id=worker_id, attempt=attempt)


def acknowledged(attempt: int = 1, worker_id: str = W1, t: float = 1.5) -> ClaimAcknowledged:
    return ClaimAcknowledged(operation_id=OP, at=at(t), worker_id=worker_id, attempt=attempt)


def released(
    attempt: int = 1, worker_id: str = W1, t: float = 3, reason: str = "not acknowledged"
) -> ClaimReleased:
    return ClaimReleased(
        operation_id=OP, at=at(t), worker_id=worker_id, attempt=attempt, reason=reason
    )


def save_failed(
    sequence: int, attempt: int = 1, t: float = 3, message: str = "disk full"
) -> CheckpointSaveFailed:
    return CheckpointSaveFailed(
        operation_id=OP,
        at=at(t),
        attempt=attempt,
        worker_id=W1,
        sequence=sequence,
        checkpoint_type="periodic",
        message=message,
    )


def progressed(
    percentage: float, t: float, attempt: int = 1, worker_id: str = W1
) -> ProgressReported:
    return ProgressReported(
        operation_id=OP,
        at=at(t),
        attempt=attempt,
        worker_id=worker_id,
        percentage=percentage,
        current_step="epoch",
    )


def saved(
    sequence: int, attempt: int = 1, t: float = 2, worker_id: str = W1, **fields: Any
) -> CheckpointSaved:
    state = fields.pop("state", {"epoch": sequence})
    values: dict[str, Any] = {"checkpoint_type": "periodic", "artifacts_path": None}
    return CheckpointSaved(
        operation_id=OP,
        at=at(t),
        attempt=attempt,
        worker_id=worker_id,
        sequence=sequence,
        state=state,
        state_size_bytes=json_size(state),
        **(values | fields),
    )


def cancellation_requested(t: float = 3) -> CancellationRequested:
    return CancellationRequested(operation_id=OP, at=at(t))


def cancelled(
    reason: str = "cancellation", attempt: int | None = 1, t: float = 4
) -> OperationCancelled:
    return OperationCancelled(operation_id=OP, at=at(t), reason=reason, attempt=attempt)


def failed(
    reason: str = "error", attempt: int | None = 1, t: float = 4, message: str = "boom"
) -> OperationFailed:
    return OperationFailed(
        operation_id=OP, at=at(t), reason=reason, message=message, attempt=attempt
    )


def completed(
    attempt: int = 1, t: float = 4, result: dict[str, Any] | None = None
) -> OperationCompleted:
    return OperationCompleted(
        operation_id=OP, at=at(t), attempt=attempt, result=result or {"ok": 1}
    )


def resume_requested(
    from_sequence: int,
    previous_status: str = "cancelled",
    t: float = 5,
    checkpoint_type: str = "periodic",
) -> ResumeRequested:
    return ResumeRequested(
        operation_id=OP,
        at=at(t),
        from_sequence=from_sequence,
        checkpoint_type=checkpoint_type,
        previous_status=previous_status,
    )


def retry_scheduled(
    attempt: int = 2, t: float = 5, retry_at: float = 6, reason: str = "orphaned"
) -> RetryScheduled:
    return RetryScheduled(
        operation_id=OP, at=at(t), attempt=attempt, retry_at=at(retry_at), reason=reason
    )


def checkpoints_deleted(*sequences: int, reason: str = "manual", t: float = 6) -> CheckpointDeleted:
    return CheckpointDeleted(operation_id=OP, at=at(t), sequences=sequences, reason=reason)


# Commands -----------------------------------------------------------------------------


def create(t: float = 0, **fields: Any) -> CreateOperation:
    values: dict[str, Any] = {"operation_id": OP, "at": at(t), "operation_type": "training"}
    return CreateOperation(**(values | {"params": {"epochs": 10}} | fields))


def claim(worker_id: str = W1, t: float = 1) -> ClaimOperation:
    return ClaimOperation(operation_id=OP, at=at(t), worker_id=worker_id)


def acknowledge(attempt: int = 1, worker_id: str = W1, t: float = 1.5) -> AcknowledgeClaim:
    return AcknowledgeClaim(operation_id=OP, at=at(t), worker_id=worker_id, attempt=attempt)


def release(
    attempt: int = 1, worker_id: str | None = None, t: float = 3, reason: str = "not acknowledged"
) -> ReleaseClaim:
    return ReleaseClaim(
        operation_id=OP, at=at(t), attempt=attempt, worker_id=worker_id, reason=reason
    )


def report_failure(
    sequence: int, attempt: int = 1, t: float = 3, message: str = "disk full"
) -> ReportCheckpointFailure:
    return ReportCheckpointFailure(
        operation_id=OP,
        at=at(t),
        worker_id=W1,
        attempt=attempt,
        sequence=sequence,
        checkpoint_type="periodic",
        message=message,
    )


def report(
    percentage: float, t: float, attempt: int = 1, worker_id: str = W1, **fields: Any
) -> ReportProgress:
    return ReportProgress(
        operation_id=OP,
        at=at(t),
        worker_id=worker_id,
        attempt=attempt,
        percentage=percentage,
        current_step=fields.pop("current_step", "epoch"),
        **fields,
    )


def save(attempt: int = 1, t: float = 2, worker_id: str = W1, **fields: Any) -> SaveCheckpoint:
    values: dict[str, Any] = {"checkpoint_type": "periodic", "state": {"epoch": 1}}
    return SaveCheckpoint(
        operation_id=OP, at=at(t), worker_id=worker_id, attempt=attempt, **(values | fields)
    )


def artifact(name: str = "model.pt", size: int = 10) -> ArtifactFile:
    return ArtifactFile(name=name, size=size, sha256=SHA)


def request_cancellation(t: float = 3) -> RequestCancellation:
    return RequestCancellation(operation_id=OP, at=at(t))


def confirm(
    reason: str = "cancellation", attempt: int = 1, worker_id: str = W1, t: float = 4
) -> ConfirmCancellation:
    return ConfirmCancellation(
        operation_id=OP, at=at(t), worker_id=worker_id, attempt=attempt, reason=reason
    )


def complete(attempt: int = 1, worker_id: str = W1, t: float = 4) -> CompleteOperation:
    return CompleteOperation(
        operation_id=OP, at=at(t), worker_id=worker_id, attempt=attempt, result={"ok": 1}
    )


def fail(
    attempt: int | None = 1,
    reason: str = "error",
    worker_id: str | None = W1,
    t: float = 4,
    message: str = "boom",
) -> FailOperation:
    return FailOperation(
        operation_id=OP,
        at=at(t),
        attempt=attempt,
        reason=reason,
        message=message,
        worker_id=worker_id,
    )


def resume(checkpoint_sequence: int | None = None, t: float = 5) -> ResumeOperation:
    return ResumeOperation(operation_id=OP, at=at(t), checkpoint_sequence=checkpoint_sequence)


def delete(*sequences: int, reason: str = "manual", t: float = 6) -> DeleteCheckpoints:
    return DeleteCheckpoints(operation_id=OP, at=at(t), sequences=sequences or None, reason=reason)


# Given / when / then ------------------------------------------------------------------


@dataclass(frozen=True)
class Given:
    state: OperationState | None

    def when(self, command: OperationCommand) -> When:
        return When(self.state, command)


@dataclass(frozen=True)
class When:
    state: OperationState | None
    command: OperationCommand

    def then(self, *expected: OperationEvent) -> OperationState | None:
        """Assert the decided events, and return the state after them."""
        events = decide(self.state, self.command)
        assert events == list(expected)
        return fold(events, self.state)

    def then_nothing(self) -> None:
        assert decide(self.state, self.command) == []

    def then_refused(self, error: type[E]) -> E:
        with pytest.raises(error) as refused:
            decide(self.state, self.command)
        return refused.value


def given(*events: OperationEvent) -> Given:
    return Given(fold(events))


def state_after(*events: OperationEvent) -> OperationState:
    state = None
    for event in events:
        state = evolve(state, event)
    assert state is not None
    return state


def running(*more: OperationEvent) -> Sequence[OperationEvent]:
    """Created, then claimed by W1 (attempt 1), then ``more``."""
    return (created(), claimed(), *more)


def started(*more: OperationEvent) -> Sequence[OperationEvent]:
    """Created, claimed and acknowledged by W1 (attempt 1), then ``more``."""
    return (created(), claimed(), acknowledged(), *more)
