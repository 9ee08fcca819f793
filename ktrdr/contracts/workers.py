"""Answers to workers: registration, heartbeats, claims, and every fenced write."""

from __future__ import annotations

from typing import Literal

from ktrdr.contracts.base import Contract, JsonObject, Moment, OperationIdText
from ktrdr.contracts.checkpoints import ArtifactView
from ktrdr.domain import CheckpointType, OperationStatus, OperationType, WorkerStatus


class Standing(Contract):
    """The backend's verdict on the operation a worker says it runs."""

    operation_id: OperationIdText
    attempt: int
    action: Literal["continue", "drop"]
    """drop: the worker no longer owns it and must abandon it."""
    reason: str


class Registered(Contract):
    worker_id: str
    status: WorkerStatus
    current_operation: Standing | None
    heartbeat_interval_seconds: float
    orphan_timeout_seconds: float


class HeartbeatAnswer(Contract):
    current_operation: Standing | None
    cancellation_requested: bool


class CheckpointForWorker(Contract):
    """A checkpoint to resume from, with its state."""

    sequence: int
    checkpoint_type: CheckpointType
    state: JsonObject
    artifacts_path: str | None
    artifacts: list[ArtifactView]
    created_at: Moment
    summary: str


class Claim(Contract):
    """An operation handed to a worker (204 No Content when none came in the wait)."""

    operation_id: OperationIdText
    operation_type: OperationType
    params: JsonObject
    attempt: int
    """Every write about it must carry this attempt."""
    next_checkpoint_sequence: int
    resume_from: CheckpointForWorker | None
    fallbacks: list[CheckpointForWorker]
    """Older checkpoints, newest first, should ``resume_from`` prove unusable."""


class Deregistered(Contract):
    worker_id: str
    status: WorkerStatus


WorkerListStatus = Literal["available", "busy", "lost", "deregistered"]


class WorkerView(Contract):
    worker_id: str
    worker_type: str
    status: WorkerListStatus
    host: str
    pid: int
    version: str
    capabilities: list[str]
    cuda: JsonObject | None = None
    """The CUDA devices the worker found at start (count, names, memory), or None."""
    current_operation_id: OperationIdText | None
    current_attempt: int | None
    heartbeat_age_seconds: float
    registered_at: Moment


class WorkerList(Contract):
    items: list[WorkerView]
    total: int


class StatusAnswer(Contract):
    """An operation's status after a write that may change it."""

    operation_id: OperationIdText
    status: OperationStatus


class Recorded(Contract):
    """progress and checkpoint-failures: whether the write was recorded as an event."""

    recorded: bool
    cancellation_requested: bool


class MetricsRecorded(Contract):
    recorded: int
    """Points received."""
    cancellation_requested: bool


class CheckpointSavedAnswer(Contract):
    sequence: int
    cancellation_requested: bool
