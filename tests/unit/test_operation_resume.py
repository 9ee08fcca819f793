"""Resume: only cancelled or failed operations with a live checkpoint; a refusal changes nothing."""

from __future__ import annotations

import pytest

from ktrdr.domain import (
    CheckpointNotFound,
    CheckpointNotResumable,
    OperationEvent,
    OperationNotResumable,
    OperationStatus,
)
from tests.unit.operation_scenarios import (
    W2,
    at,
    cancellation_requested,
    cancelled,
    checkpoints_deleted,
    claimed,
    completed,
    created,
    failed,
    given,
    resume,
    resume_requested,
    running,
    saved,
)


def test_a_cancelled_operation_resumes_from_its_latest_checkpoint() -> None:
    history = (
        *running(saved(1), saved(2, checkpoint_type="cancellation"), cancellation_requested()),
        cancelled(t=4),
    )
    state = (
        given(*history)
        .when(resume(t=5))
        .then(resume_requested(2, "cancelled", t=5, checkpoint_type="cancellation"))
    )
    assert state is not None
    assert state.status == OperationStatus.RESUMING
    assert state.resumed_from == 2
    assert state.completed_at is None
    assert not state.cancellation_requested


def test_a_failed_operation_resumes_and_forgets_its_error() -> None:
    history = (*running(saved(1)), failed())
    state = given(*history).when(resume(t=5)).then(resume_requested(1, "failed", t=5))
    assert state is not None and state.error is None


def test_resume_from_a_chosen_live_checkpoint() -> None:
    history = (*running(saved(1), saved(2), saved(3)), failed())
    given(*history).when(resume(2)).then(resume_requested(2, "failed"))


def test_a_resume_of_a_resume() -> None:
    history = (
        *running(saved(1)),
        cancelled(),
        resume_requested(1),
        claimed(2, W2, t=6),
        saved(2, attempt=2, worker_id=W2, t=7),
        cancelled(attempt=2, t=8),
    )
    state = given(*history).when(resume(t=9)).then(resume_requested(2, t=9))
    assert state is not None
    assert (state.attempt, state.started_at) == (2, at(1))


@pytest.mark.parametrize(
    ("history", "status", "hint"),
    [
        ((created(),), "pending", "not started"),
        ((*running(saved(1)), cancelled(), resume_requested(1)), "resuming", "already resuming"),
        (running(saved(1)), "running", "cancel it first"),
        ((*running(saved(1)), completed()), "completed", "new operation"),
    ],
)
def test_only_cancelled_or_failed_operations_resume(
    history: tuple[OperationEvent, ...], status: str, hint: str
) -> None:
    error = given(*history).when(resume()).then_refused(OperationNotResumable)
    assert error.code == "OPERATION_NOT_RESUMABLE"
    assert error.status == status
    assert hint in error.detail


@pytest.mark.parametrize(
    "history",
    [(*running(), cancelled()), (*running(saved(1)), failed(), checkpoints_deleted(1))],
    ids=["never saved", "all deleted"],
)
def test_an_operation_without_a_live_checkpoint_does_not_resume(
    history: tuple[OperationEvent, ...],
) -> None:
    before = given(*history)
    error = before.when(resume()).then_refused(CheckpointNotFound)
    assert error.code == "CHECKPOINT_NOT_FOUND"
    assert before.state is not None and not before.state.resumable
    # Unlike the reference, a refused resume leaves the status alone.
    assert before.state.status in (OperationStatus.CANCELLED, OperationStatus.FAILED)


def test_resume_from_a_checkpoint_that_is_not_live_is_refused() -> None:
    history = (*running(saved(1), saved(2)), cancelled(), checkpoints_deleted(1))
    deleted = given(*history).when(resume(1)).then_refused(CheckpointNotResumable)
    assert (deleted.code, deleted.sequence, deleted.resumable) == (
        "CHECKPOINT_NOT_RESUMABLE",
        1,
        [2],
    )
    assert "it was deleted; resume from one of 2" in deleted.detail
    error = given(*history).when(resume(7)).then_refused(CheckpointNotFound)
    assert error.sequences == [7]
