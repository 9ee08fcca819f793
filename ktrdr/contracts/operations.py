"""Answers about operations: one operation, pages of them, their events and metrics."""

from __future__ import annotations

from typing import Any

from ktrdr.contracts.base import Contract, JsonObject, Moment, OperationIdText
from ktrdr.domain import CheckpointType, FailureReason, OperationStatus, OperationType


class ProgressView(Contract):
    """The newest progress: the last progress event's, or a live value reported since."""

    percentage: float
    current_step: str | None
    message: str | None
    details: JsonObject


class ErrorView(Contract):
    reason: FailureReason
    message: str


class CheckpointBrief(Contract):
    """A checkpoint named in an operation: where the run was when it was saved."""

    sequence: int
    checkpoint_type: CheckpointType
    created_at: Moment
    summary: str
    """The position in words ("epoch 3 of 10"), or "" when there is none."""


class CheckpointFailureView(Contract):
    """The latest checkpoint a worker could not store; cleared by the next one saved."""

    sequence: int
    checkpoint_type: CheckpointType
    message: str
    attempt: int
    at: Moment


class RetryPolicyView(Contract):
    max_attempts: int
    initial_interval_seconds: float
    backoff_coefficient: float
    maximum_interval_seconds: float
    retry_on_error: bool


class OperationView(Contract):
    operation_id: OperationIdText
    operation_type: OperationType
    status: OperationStatus
    params: JsonObject
    parent_operation_id: OperationIdText | None
    progress: ProgressView
    attempt: int
    worker_id: str | None
    created_at: Moment
    started_at: Moment | None
    completed_at: Moment | None
    error: ErrorView | None
    result: JsonObject | None
    checkpoint: CheckpointBrief | None
    """The latest live checkpoint."""
    resumable: bool
    cancellation_requested: bool
    checkpoint_failure: CheckpointFailureView | None
    retry_policy: RetryPolicyView | None
    """None in a row last written before retry policies existed (migration 0004)."""
    attempts_used: int
    next_retry_at: Moment | None
    timeout_seconds: float | None
    deadline_at: Moment | None
    waiting_for: str | None = None
    """What a pending operation waits for that no live worker has (``cuda``), or None."""
    waiting_reason: str | None = None
    """The same, in words, with what to do about it."""


class OperationPage(Contract):
    items: list[OperationView]
    total: int
    """All operations the filters match, not only this page's."""


class Resumed(Contract):
    operation_id: OperationIdText
    status: OperationStatus
    device: str | None = None
    """The device a resumed training run is pinned to (its checkpoint's, or the one asked)."""
    resumed_from: CheckpointBrief


class OperationTypeView(Contract):
    """An operation type, the JSON Schema of its params and their defaults."""

    operation_type: OperationType
    params_schema: JsonObject
    defaults: JsonObject


class OperationTypes(Contract):
    items: list[OperationTypeView]


class OperationMetrics(Contract):
    """Metrics for plots, from the log: a training run's per-epoch losses, accuracies and
    learning rate (``epochs``), a backtest's sampled equity curve (``equity``)."""

    operation_id: OperationIdText
    operation_type: OperationType
    series: dict[str, list[JsonObject]]


class EventView(Contract):
    global_position: int
    stream_version: int
    event_id: str
    event_type: str
    schema_version: int
    data: JsonObject
    metadata: dict[str, Any]
    recorded_at: Moment


class OperationEvents(Contract):
    operation_id: OperationIdText
    items: list[EventView]
