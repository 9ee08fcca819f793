"""Cancellation: at once when no worker holds the operation, else asked of the worker."""

from __future__ import annotations

import pytest

from ktrdr.domain import (
    CancellationRequested,
    OperationEvent,
    OperationNotCancellable,
    OperationStatus,
    ValidationError,
)
from tests.unit.operation_scenarios import (
    OP,
    W2,
    at,
    cancellation_requested,
    cancelled,
    claimed,
    completed,
    confirm,
    created,
    failed,
    given,
    request_cancellation,
    resume_requested,
    running,
    saved,
)


def test_a_pending_operation_is_cancelled_at_once() -> None:
    state = (
        given(created())
        .when(request_cancellation(t=3))
        .then(cancelled(reason="user", attempt=None, t=3))
    )
    assert state is not None
    assert state.status == OperationStatus.CANCELLED
    assert state.completed_at == at(3)


def test_a_resuming_operation_is_cancelled_at_once_and_stays_resumable() -> None:
    history = (*running(saved(1)), failed(), resume_requested(1, "failed"))
    state = (
        given(*history)
        .when(request_cancellation(t=9))
        .then(cancelled(reason="user", attempt=None, t=9))
    )
    assert state is not None and state.resumable


def test_a_running_operation_is_asked_to_stop() -> None:
    state = (
        given(*running())
        .when(request_cancellation(t=3))
        .then(CancellationRequested(operation_id=OP, at=at(3), reason="user"))
    )
    assert state is not None
    assert state.status == OperationStatus.RUNNING
    assert state.cancellation_requested


def test_a_second_request_while_running_is_a_no_op() -> None:
    given(*running(cancellation_requested())).when(request_cancellation(t=5)).then_nothing()


def test_cancelling_a_cancelled_operation_is_a_no_op() -> None:
    given(*running(), cancelled()).when(request_cancellation(t=5)).then_nothing()


@pytest.mark.parametrize(
    ("history", "status"),
    [((*running(), completed()), "completed"), ((*running(), failed()), "failed")],
)
def test_a_completed_or_failed_operation_is_not_cancellable(
    history: tuple[OperationEvent, ...], status: str
) -> None:
    error = given(*history).when(request_cancellation(t=5)).then_refused(OperationNotCancellable)
    assert error.code == "OPERATION_NOT_CANCELLABLE"
    assert error.status == status


@pytest.mark.parametrize("reason", ["cancellation", "shutdown"])
def test_the_worker_confirms_it_stopped(reason: str) -> None:
    history = running(saved(1, checkpoint_type="cancellation"), cancellation_requested())
    state = given(*history).when(confirm(reason, t=4)).then(cancelled(reason, attempt=1, t=4))
    assert state is not None
    assert state.status == OperationStatus.CANCELLED
    assert not state.cancellation_requested
    assert state.resumable


def test_a_shutdown_needs_no_cancellation_request() -> None:
    given(*running()).when(confirm("shutdown")).then(cancelled("shutdown", attempt=1))


def test_a_worker_stops_only_for_cancellation_or_shutdown() -> None:
    with pytest.raises(ValidationError, match="reason"):
        confirm("user")


def test_a_new_claim_starts_without_the_old_request() -> None:
    history = (
        *running(saved(1), cancellation_requested()),
        cancelled(),
        resume_requested(1),
        claimed(2, W2, t=6),
    )
    state = given(*history).state
    assert state is not None and not state.cancellation_requested
