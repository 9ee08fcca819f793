"""The wire: what the REST API answers, as frozen pydantic models.

The API returns these, the worker's and the CLI's clients parse answers into them, and
the OpenAPI document (/schema/openapi.json) is generated from them. Pydantic only;
imports nothing of ktrdr but the domain.
"""

from ktrdr.contracts.base import WORKER_ID_PATTERN, Contract, Moment
from ktrdr.contracts.checkpoints import (
    ArtifactView,
    CheckpointHistory,
    CheckpointHistoryItem,
    CheckpointListed,
    CheckpointPage,
    CheckpointsDeleted,
    CheckpointStats,
    CheckpointView,
    CleanupReport,
)
from ktrdr.contracts.health import DatabaseHealth, FencingHealth, Health, Problem
from ktrdr.contracts.operations import (
    CheckpointBrief,
    CheckpointFailureView,
    ErrorView,
    EventView,
    OperationEvents,
    OperationMetrics,
    OperationPage,
    OperationTypes,
    OperationTypeView,
    OperationView,
    ProgressView,
    Resumed,
    RetryPolicyView,
)
from ktrdr.contracts.workers import (
    CheckpointForWorker,
    CheckpointSavedAnswer,
    Claim,
    Deregistered,
    HeartbeatAnswer,
    MetricsRecorded,
    Recorded,
    Registered,
    Standing,
    StatusAnswer,
    WorkerList,
    WorkerView,
)

__all__ = [
    "WORKER_ID_PATTERN",
    "ArtifactView",
    "CheckpointBrief",
    "CheckpointFailureView",
    "CheckpointForWorker",
    "CheckpointHistory",
    "CheckpointHistoryItem",
    "CheckpointListed",
    "CheckpointPage",
    "CheckpointSavedAnswer",
    "CheckpointStats",
    "CheckpointView",
    "CheckpointsDeleted",
    "Claim",
    "CleanupReport",
    "Contract",
    "DatabaseHealth",
    "Deregistered",
    "ErrorView",
    "EventView",
    "FencingHealth",
    "Health",
    "HeartbeatAnswer",
    "MetricsRecorded",
    "Moment",
    "OperationEvents",
    "OperationMetrics",
    "OperationPage",
    "OperationTypes",
    "OperationTypeView",
    "OperationView",
    "Problem",
    "ProgressView",
    "Recorded",
    "Registered",
    "Resumed",
    "RetryPolicyView",
    "Standing",
    "StatusAnswer",
    "WorkerList",
    "WorkerView",
]
