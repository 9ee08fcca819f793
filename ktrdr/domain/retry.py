"""Retry policies (Temporal's names): which interrupted runs go again by themselves, when.

A run interrupted by infrastructure — its worker orphaned it, shut down, or could
not store a checkpoint — is retried while the operation has started fewer attempts
than ``max_attempts``; a workload error only with ``retry_on_error``; an error that
cannot succeed again (invalid params, an incompatible checkpoint), a timeout or a
user's cancel never. ``max_attempts: 1`` is the manual flow: a person resumes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Self

from pydantic import Field, PositiveFloat, PositiveInt, model_validator

from ktrdr.domain.values import Message
from ktrdr.domain.vocabulary import CancelReason, FailureReason, OperationStatus

_Seconds = Annotated[float, Field(gt=0, le=7 * 24 * 3600, allow_inf_nan=False)]


class RetryPolicy(Message):
    max_attempts: PositiveInt = Field(5, le=1000)
    """Attempts an operation may start in all, the first one included."""
    initial_interval_seconds: _Seconds = 1.0
    backoff_coefficient: Annotated[float, Field(ge=1, le=100, allow_inf_nan=False)] = 2.0
    maximum_interval_seconds: _Seconds = 60.0
    retry_on_error: bool = False
    """Also retry a run that failed with a workload error (never an invalid one)."""

    @model_validator(mode="after")
    def _interval_within_its_cap(self) -> Self:
        if self.maximum_interval_seconds < self.initial_interval_seconds:
            raise ValueError("maximum_interval_seconds must be at least initial_interval_seconds")
        return self


MANUAL = RetryPolicy(max_attempts=1)
"""The policy of operations created before policies existed: a person resumes them."""

TimeoutSeconds = Annotated[PositiveFloat, Field(le=366 * 24 * 3600, allow_inf_nan=False)]

_INFRASTRUCTURE = frozenset(
    {FailureReason.ORPHANED, FailureReason.SHUTDOWN, FailureReason.INFRASTRUCTURE}
)


def retry_delay(policy: RetryPolicy, retries_before: int) -> timedelta:
    """How long the retry after ``retries_before`` earlier ones waits."""
    seconds = policy.initial_interval_seconds * policy.backoff_coefficient**retries_before
    return timedelta(seconds=min(policy.maximum_interval_seconds, seconds))


def retryable(
    policy: RetryPolicy,
    status: OperationStatus,
    failure: FailureReason | None,
    cancel: CancelReason | None,
) -> bool:
    """Whether a stop of this kind may be retried under ``policy`` (attempts aside)."""
    if status == OperationStatus.CANCELLED:
        return cancel == CancelReason.SHUTDOWN
    if status != OperationStatus.FAILED or failure is None:
        return False
    return failure in _INFRASTRUCTURE or (failure == FailureReason.ERROR and policy.retry_on_error)


def deadline(started_at: datetime | None, timeout_seconds: float | None) -> datetime | None:
    """When a run that started at ``started_at`` must be closed (start to close)."""
    if started_at is None or timeout_seconds is None:
        return None
    return started_at + timedelta(seconds=timeout_seconds)
