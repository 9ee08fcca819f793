"""What happened to an operation: the events of an ``operation-<id>`` stream."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, NonNegativeInt, PositiveInt

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
    CancelReason,
    CheckpointType,
    DeletionReason,
    FailureReason,
    OperationStatus,
    OperationType,
)


class _OperationEvent(Message):
    operation_id: OperationId
    at: UtcDatetime


class OperationCreated(_OperationEvent):
    operation_type: OperationType
    params: JsonObject
    parent_operation_id: OperationId | None = None
    keep_checkpoints: bool = False
    retry_policy: RetryPolicy | None = None
    """None in events written before retry policies: the manual flow (max_attempts 1)."""
    timeout_seconds: TimeoutSeconds | None = None


class OperationClaimed(_OperationEvent):
    worker_id: WorkerId
    attempt: PositiveInt
    """The fencing token: 1 for the first claim, one more for each later claim."""


class ClaimAcknowledged(_OperationEvent):
    """The worker received its claim and started: from now on its silence is an orphan."""

    attempt: PositiveInt
    worker_id: WorkerId


class ClaimReleased(_OperationEvent):
    """A claim no worker started went back to the queue: not a failure, nothing ran."""

    attempt: PositiveInt
    worker_id: WorkerId
    reason: str


class ProgressReported(_OperationEvent):
    attempt: PositiveInt
    worker_id: WorkerId
    percentage: Percentage
    current_step: str
    message: str = ""
    details: JsonObject = Field(default_factory=dict)


class MetricsRecorded(_OperationEvent):
    """Points of a metrics series (a training run's epochs, a backtest's equity samples):
    small events of their own, so no checkpoint state grows with the run's length."""

    attempt: PositiveInt
    worker_id: WorkerId
    series: MetricsSeries
    points: MetricsPoints


class CheckpointSaved(_OperationEvent):
    attempt: PositiveInt
    worker_id: WorkerId
    sequence: PositiveInt
    """1, 2, 3… per operation; never reused, even after the checkpoint is deleted."""
    checkpoint_type: CheckpointType
    state: JsonObject
    artifacts_path: str | None = None
    artifacts: tuple[ArtifactFile, ...] = ()
    state_size_bytes: NonNegativeInt
    """Bytes of the canonical JSON of ``state``."""
    artifacts_size_bytes: NonNegativeInt = 0
    content_sha256: str | None = None
    """Of what the worker posted: a repeat of this save is recognised by it (None before 0003)."""


class CheckpointSaveFailed(_OperationEvent):
    """A worker could not store a checkpoint (files or commit): the run goes on without it."""

    attempt: PositiveInt
    worker_id: WorkerId
    sequence: PositiveInt
    checkpoint_type: CheckpointType
    message: str


class CancellationRequested(_OperationEvent):
    reason: str = "user"


class OperationCancelled(_OperationEvent):
    reason: CancelReason
    attempt: PositiveInt | None = None
    """The attempt this ended; None when no worker was running the operation."""


class OperationFailed(_OperationEvent):
    reason: FailureReason
    message: str
    attempt: PositiveInt | None = None
    """The attempt this ended; None when no worker was running the operation."""


class OperationCompleted(_OperationEvent):
    attempt: PositiveInt
    result: JsonObject


class RetryScheduled(_OperationEvent):
    """The retry processor will resume the operation at ``retry_at`` as attempt ``attempt``."""

    attempt: PositiveInt
    """The attempt the retry will be (attempts started so far, plus one)."""
    retry_at: UtcDatetime
    reason: str


class ResumeRequested(_OperationEvent):
    from_sequence: PositiveInt | None
    """None: no intact checkpoint, so a retry starts again from the beginning."""
    checkpoint_type: CheckpointType | None
    previous_status: Literal[OperationStatus.CANCELLED, OperationStatus.FAILED]
    device: RunDevice | None = None
    """The device the resumed training run is pinned to (None: its params decide)."""
    allow_device_change: bool = False


class CheckpointDeleted(_OperationEvent):
    sequences: Annotated[tuple[PositiveInt, ...], Field(min_length=1)]
    reason: DeletionReason


OperationEvent = (
    OperationCreated
    | OperationClaimed
    | ClaimAcknowledged
    | ClaimReleased
    | ProgressReported
    | MetricsRecorded
    | CheckpointSaved
    | CheckpointSaveFailed
    | CancellationRequested
    | OperationCancelled
    | OperationFailed
    | OperationCompleted
    | RetryScheduled
    | ResumeRequested
    | CheckpointDeleted
)
