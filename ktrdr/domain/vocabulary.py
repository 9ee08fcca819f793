"""The closed sets of names messages use. StrEnums, so each member equals its string."""

from __future__ import annotations

import enum


class OperationType(enum.StrEnum):
    TRAINING = "training"
    BACKTESTING = "backtesting"
    AGENT_RESEARCH = "agent_research"


class OperationStatus(enum.StrEnum):
    PENDING = "pending"
    RESUMING = "resuming"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {OperationStatus.COMPLETED, OperationStatus.FAILED, OperationStatus.CANCELLED}
)

TRANSITIONS: dict[OperationStatus | None, frozenset[OperationStatus]] = {
    None: frozenset({OperationStatus.PENDING}),
    OperationStatus.PENDING: frozenset(
        {OperationStatus.RUNNING, OperationStatus.CANCELLED, OperationStatus.FAILED}
    ),
    # Back to the queue when a claim was never acknowledged (ClaimReleased).
    OperationStatus.RUNNING: TERMINAL_STATUSES
    | {OperationStatus.PENDING, OperationStatus.RESUMING},
    # Failed (reason timeout) when the deadline passes while a retry waits.
    OperationStatus.CANCELLED: frozenset({OperationStatus.RESUMING, OperationStatus.FAILED}),
    OperationStatus.FAILED: frozenset({OperationStatus.RESUMING, OperationStatus.FAILED}),
    OperationStatus.RESUMING: frozenset(
        {OperationStatus.RUNNING, OperationStatus.CANCELLED, OperationStatus.FAILED}
    ),
    OperationStatus.COMPLETED: frozenset(),
}
"""Status changes an event may cause (docs/design.md §4). A pending or resuming operation can
also be cancelled (by a user) or failed (by the backend) before any worker claims it."""


class CheckpointType(enum.StrEnum):
    PERIODIC = "periodic"
    CANCELLATION = "cancellation"
    FAILURE = "failure"
    SHUTDOWN = "shutdown"


class StopReason(enum.StrEnum):
    """Why a worker stopped an operation before its end (it saved a checkpoint first)."""

    CANCELLATION = "cancellation"
    SHUTDOWN = "shutdown"


class CancelReason(enum.StrEnum):
    CANCELLATION = "cancellation"
    """A worker stopped after a cancellation request."""
    SHUTDOWN = "shutdown"
    """A worker stopped because it was shutting down (SIGTERM)."""
    USER = "user"
    """Cancelled before any worker ran it (pending or resuming)."""


class FailureReason(enum.StrEnum):
    ERROR = "error"
    """The workload failed (retried only with retry_on_error)."""
    ORPHANED = "orphaned"
    SHUTDOWN = "shutdown"
    INFRASTRUCTURE = "infrastructure"
    """Not the workload's fault: a checkpoint could not be stored (retried)."""
    INVALID = "invalid"
    """Cannot succeed on a retry: invalid params, an incompatible checkpoint (never retried)."""
    TIMEOUT = "timeout"
    """Past the operation's timeout_seconds (never retried)."""


class DeletionReason(enum.StrEnum):
    COMPLETED = "completed"
    MANUAL = "manual"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"
    """Retention: newer checkpoints of the same operation replaced it."""
