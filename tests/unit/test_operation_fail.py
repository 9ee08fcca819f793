"""Failures: from the worker (fenced), the orphan detector (never a newer attempt), the backend."""

from __future__ import annotations

import pytest

from ktrdr.domain import (
    OperationEvent,
    OperationFinished,
    OperationStatus,
    StaleAttempt,
    ValidationError,
)
from tests.unit.operation_scenarios import (
    W1,
    W2,
    at,
    cancelled,
    claimed,
    completed,
    created,
    fail,
    failed,
    given,
    resume_requested,
    running,
    saved,
)

ON_ATTEMPT_2 = (*running(saved(1)), cancelled(), resume_requested(1), claimed(2, W2, t=6))


def test_the_worker_fails_its_attempt() -> None:
    state = (
        given(*running(saved(1)))
        .when(fail(1, "error", W1, t=9, message="OOM"))
        .then(failed("error", attempt=1, t=9, message="OOM"))
    )
    assert state is not None
    assert state.status == OperationStatus.FAILED
    assert state.error is not None
    assert (state.error.reason, state.error.message) == ("error", "OOM")
    assert state.completed_at == at(9)


def test_a_failed_operation_keeps_its_checkpoints_and_is_resumable() -> None:
    state = given(*running(saved(1), saved(2))).when(fail(1, t=9)).then(failed(t=9))
    assert state is not None
    assert sorted(state.checkpoints) == [1, 2]
    assert state.resumable


def test_a_failure_without_a_checkpoint_is_not_resumable() -> None:
    state = given(*running()).when(fail(1, t=9)).then(failed(t=9))
    assert state is not None and not state.resumable


def test_a_worker_failure_of_an_old_attempt_is_refused() -> None:
    error = given(*ON_ATTEMPT_2).when(fail(1, "error", W1)).then_refused(StaleAttempt)
    assert (error.attempt, error.current_attempt) == (1, 2)


def test_the_orphan_detector_fails_the_attempt_it_judged() -> None:
    given(*running()).when(fail(1, "orphaned", None, t=70)).then(
        failed("orphaned", attempt=1, t=70)
    )


def test_the_orphan_detector_never_fails_a_newer_attempt() -> None:
    given(*ON_ATTEMPT_2).when(fail(1, "orphaned", None, t=70)).then_nothing()
    given(*ON_ATTEMPT_2).when(fail(1, "orphaned", W1, t=70)).then_nothing()


@pytest.mark.parametrize(
    "history",
    [
        (*running(), completed()),
        (*running(), failed()),
        (*running(saved(1)), cancelled()),
        (*running(saved(1)), cancelled(), resume_requested(1)),
    ],
    ids=["completed", "failed", "cancelled", "resuming"],
)
def test_the_orphan_detector_leaves_an_attempt_that_already_ended(
    history: tuple[OperationEvent, ...],
) -> None:
    given(*history).when(fail(1, "orphaned", None, t=70)).then_nothing()


def test_the_backend_fails_whatever_attempt_is_running() -> None:
    given(*ON_ATTEMPT_2).when(fail(None, "shutdown", None, t=9)).then(
        failed("shutdown", attempt=2, t=9)
    )


@pytest.mark.parametrize(
    "history",
    [(created(),), (*running(saved(1)), cancelled(), resume_requested(1))],
    ids=["pending", "resuming"],
)
def test_the_backend_fails_an_unclaimed_operation_with_no_attempt(
    history: tuple[OperationEvent, ...],
) -> None:
    given(*history).when(fail(None, "error", None, t=9)).then(failed(attempt=None, t=9))


@pytest.mark.parametrize(
    ("history", "status"),
    [
        ((*running(), completed()), "completed"),
        ((*running(), failed()), "failed"),
        ((*running(), cancelled()), "cancelled"),
    ],
)
def test_the_backend_does_not_fail_a_finished_operation(
    history: tuple[OperationEvent, ...], status: str
) -> None:
    error = given(*history).when(fail(None, "error", None)).then_refused(OperationFinished)
    assert error.code == "OPERATION_FINISHED" and error.status == status


def test_an_orphaned_failure_names_its_attempt() -> None:
    with pytest.raises(ValidationError, match="attempt it judged"):
        fail(None, "orphaned", None)


def test_a_worker_fails_with_its_attempt() -> None:
    with pytest.raises(ValidationError, match="attempt it claimed"):
        fail(None, "error", W1)


def test_a_failure_reason_is_one_of_error_orphaned_shutdown() -> None:
    with pytest.raises(ValidationError, match="reason"):
        fail(1, "bored")
