"""What may be asked of an operation. A command that exists is well formed; whether it
is accepted depends on the operation's state (see ``decide``)."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from ktrdr.domain.devices import RunDevice
from ktrdr.domain.retry import RetryPolicy, TimeoutSeconds
from ktrdr.domain.values import (
    ArtifactFile,
    JsonObject,
    Message,
    MetricsPoints,
    MetricsSeries,
    OperationId,
    Percentage,
    UtcDatetime,
    WorkerId,
)
from ktrdr.domain.vocabulary import (
    CheckpointType,
    DeletionReason,
    FailureReason,
    OperationType,
    StopReason,
)


class _OperationCommand(Message):
    operation_id: OperationId
    at: UtcDatetime
    """When the command was issued: the time of the events it yields."""


class CreateOperation(_OperationCommand):
    operation_type: OperationType
    params: JsonObject
    parent_operation_id: OperationId | None = None
    keep_checkpoints: bool = False
    retry_policy: RetryPolicy | None = None
    timeout_seconds: TimeoutSeconds | None = None

    @model_validator(mode="after")
    def _not_its_own_parent(self) -> Self:
        if self.parent_operation_id == self.operation_id:
            raise ValueError("an operation cannot be its own parent")
        return self


class ClaimOperation(_OperationCommand):
    worker_id: WorkerId


class AcknowledgeClaim(_OperationCommand):
    """The worker got its claim and starts: the lease is now judged by its heartbeats."""

    worker_id: WorkerId
    attempt: PositiveInt


class ReleaseClaim(_OperationCommand):
    """Put a claim no worker started back in the queue (never acknowledged, or the
    worker is shutting down). A stale or already acknowledged claim is left alone."""

    attempt: PositiveInt
    worker_id: WorkerId | None = None
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class ReportProgress(_OperationCommand):
    worker_id: WorkerId
    attempt: PositiveInt
    percentage: Percentage
    current_step: str
    message: str = ""
    details: JsonObject = Field(default_factory=dict)
    event_interval_seconds: Annotated[float, Field(ge=0, le=3600)] = 1.0
    """At most one ProgressReported per this interval and attempt (100 % always passes):
    the log keeps the story, the live value is kept elsewhere between events."""


class RecordMetrics(_OperationCommand):
    worker_id: WorkerId
    attempt: PositiveInt
    series: MetricsSeries
    points: MetricsPoints


class SaveCheckpoint(_OperationCommand):
    worker_id: WorkerId
    attempt: PositiveInt
    checkpoint_type: CheckpointType
    state: JsonObject
    artifacts_path: str | None = None
    artifacts: tuple[ArtifactFile, ...] = ()
    artifacts_size_bytes: NonNegativeInt = 0
    sequence: PositiveInt | None = None
    """The sequence the worker wrote its artifacts under; it must be the next one."""

    @model_validator(mode="after")
    def _artifacts_have_a_place(self) -> Self:
        if self.artifacts and not self.artifacts_path:
            raise ValueError("artifacts need an artifacts_path")
        names = [artifact.name for artifact in self.artifacts]
        if len(set(names)) != len(names):
            raise ValueError("artifact names must be unique")
        return self


class ReportCheckpointFailure(_OperationCommand):
    """A checkpoint the worker could not store (its files or its commit failed)."""

    worker_id: WorkerId
    attempt: PositiveInt
    sequence: PositiveInt
    checkpoint_type: CheckpointType
    message: Annotated[str, Field(max_length=2000)]


class RequestCancellation(_OperationCommand):
    reason: str = "user"


class ConfirmCancellation(_OperationCommand):
    """The worker saved its checkpoint and stopped."""

    worker_id: WorkerId
    attempt: PositiveInt
    reason: StopReason


class CompleteOperation(_OperationCommand):
    worker_id: WorkerId
    attempt: PositiveInt
    result: JsonObject = Field(default_factory=dict)


class FailOperation(_OperationCommand):
    """Fail an operation: from its worker (with its attempt), from the orphan detector
    (reason ``orphaned`` with the attempt it judged), or from the backend (no attempt)."""

    reason: FailureReason = FailureReason.ERROR
    message: str
    attempt: PositiveInt | None = None
    worker_id: WorkerId | None = None

    @model_validator(mode="after")
    def _fencing_is_explicit(self) -> Self:
        if self.attempt is None and self.reason == FailureReason.ORPHANED:
            raise ValueError("an orphaned failure names the attempt it judged")
        if self.attempt is None and self.worker_id is not None:
            raise ValueError("a worker fails an operation with the attempt it claimed")
        return self


class ResumeOperation(_OperationCommand):
    checkpoint_sequence: PositiveInt | None = None
    """The checkpoint to resume from; None for the latest one that can be."""
    unavailable: tuple[PositiveInt, ...] = ()
    """Live checkpoints whose files are missing or damaged: never offered for resume."""
    device: RunDevice | None = None
    """Run the resume on this device instead of the params' (training)."""
    allow_device_change: bool = False
    """Accept a resume on another device than its checkpoint's (the result is not exact)."""


class ScheduleRetry(_OperationCommand):
    """Schedule the retry of a stopped operation if its policy allows one (else nothing)."""


class RetryOperation(_OperationCommand):
    """Run a scheduled retry that is due: resume from the newest intact checkpoint, or
    start again without one."""

    unavailable: tuple[PositiveInt, ...] = ()
    """Live checkpoints whose files are missing or damaged."""


class EnforceTimeout(_OperationCommand):
    """Fail the operation with reason timeout if it is past its deadline and not closed
    (a retry still waiting is closed by it too)."""


class DeleteCheckpoints(_OperationCommand):
    sequences: Annotated[tuple[PositiveInt, ...], Field(min_length=1)] | None = None
    """The checkpoints to delete; None for every live one."""
    reason: DeletionReason = DeletionReason.MANUAL


OperationCommand = (
    CreateOperation
    | ClaimOperation
    | AcknowledgeClaim
    | ReleaseClaim
    | ReportProgress
    | RecordMetrics
    | SaveCheckpoint
    | ReportCheckpointFailure
    | RequestCancellation
    | ConfirmCancellation
    | CompleteOperation
    | FailOperation
    | ResumeOperation
    | ScheduleRetry
    | RetryOperation
    | EnforceTimeout
    | DeleteCheckpoints
)
