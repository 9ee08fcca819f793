"""Claims, the attempt they hand out, and the fencing of every later worker write."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ktrdr.domain import (
    OperationCommand,
    OperationCompleted,
    OperationEvent,
    OperationNotClaimable,
    OperationStatus,
    StaleAttempt,
    decide,
)
from tests.unit.operation_scenarios import (
    OP,
    W1,
    W2,
    at,
    cancelled,
    claim,
    claimed,
    complete,
    completed,
    confirm,
    created,
    fail,
    failed,
    given,
    report,
    resume_requested,
    running,
    save,
    saved,
)


def test_the_first_claim_is_attempt_1() -> None:
    state = given(created()).when(claim(W1, t=1)).then(claimed(1, W1, t=1))
    assert state is not None
    assert state.status == OperationStatus.RUNNING
    assert (state.worker_id, state.attempt) == (W1, 1)
    assert state.started_at == state.claimed_at == at(1)


def test_each_claim_of_a_resumed_operation_is_the_next_attempt() -> None:
    history = (
        *running(saved(1)),
        cancelled(),
        resume_requested(1),
        claimed(2, W2, t=6),
        failed(attempt=2, t=7),
        resume_requested(1, "failed", t=8),
    )
    state = given(*history).when(claim(W1, t=9)).then(claimed(3, W1, t=9))
    assert state is not None
    assert (state.worker_id, state.attempt, state.status) == (W1, 3, OperationStatus.RUNNING)


def test_started_at_is_the_first_claim_and_claimed_at_the_latest() -> None:
    history = (*running(saved(1)), cancelled(), resume_requested(1))
    state = given(*history).when(claim(W2, t=30)).then(claimed(2, W2, t=30))
    assert state is not None
    assert state.started_at == at(1)
    assert state.claimed_at == at(30)


@pytest.mark.parametrize(
    ("history", "status"),
    [
        ((created(), claimed()), "running"),
        ((created(), claimed(), completed()), "completed"),
        ((created(), claimed(), failed()), "failed"),
        ((created(), claimed(), cancelled()), "cancelled"),
    ],
)
def test_only_pending_or_resuming_operations_are_claimable(
    history: tuple[OperationEvent, ...], status: str
) -> None:
    error = given(*history).when(claim(W2, t=9)).then_refused(OperationNotClaimable)
    assert error.code == "OPERATION_NOT_CLAIMABLE"
    assert error.status == status
    assert status in error.detail


def test_complete_ends_the_current_attempt() -> None:
    state = (
        given(*running())
        .when(complete(attempt=1, t=9))
        .then(OperationCompleted(operation_id=OP, at=at(9), attempt=1, result={"ok": 1}))
    )
    assert state is not None
    assert state.status == OperationStatus.COMPLETED
    assert state.result == {"ok": 1}
    assert state.completed_at == at(9)


WORKER_WRITES: dict[str, Callable[[int, str], OperationCommand]] = {
    "progress": lambda attempt, worker: report(50, t=9, attempt=attempt, worker_id=worker),
    "checkpoint": lambda attempt, worker: save(attempt=attempt, worker_id=worker, t=9),
    "confirm": lambda attempt, worker: confirm(attempt=attempt, worker_id=worker, t=9),
    "complete": lambda attempt, worker: complete(attempt=attempt, worker_id=worker, t=9),
    "fail": lambda attempt, worker: fail(attempt=attempt, worker_id=worker, t=9),
}

ON_ATTEMPT_2 = (
    *running(saved(1)),
    cancelled(),
    resume_requested(1),
    claimed(2, W2, t=6),
)

STALE = {
    # history, the write's attempt and worker, the status the error reports
    "an older attempt": (ON_ATTEMPT_2, 1, W1, "running"),
    "an attempt not yet given": ((created(), claimed()), 2, W1, "running"),
    "another worker's claim": ((created(), claimed()), 1, W2, "running"),
    "a completed operation": ((created(), claimed(), completed()), 1, W1, "completed"),
    "a failed operation": ((created(), claimed(), failed()), 1, W1, "failed"),
    "a cancelled operation": ((created(), claimed(), cancelled()), 1, W1, "cancelled"),
    "a resuming operation": (
        (*running(saved(1)), cancelled(), resume_requested(1)),
        1,
        W1,
        "resuming",
    ),
}


REPEATS = {
    # The write that ended the attempt, sent again: the original answer, not a refusal
    # (tests/unit/test_operation_idempotency.py).
    ("a completed operation", "complete"),
    ("a failed operation", "fail"),
    ("a cancelled operation", "confirm"),
}


@pytest.mark.parametrize(
    ("case", "write"),
    [(c, w) for c in sorted(STALE) for w in sorted(WORKER_WRITES) if (c, w) not in REPEATS],
)
def test_a_write_from_a_claim_that_is_not_current_is_refused(case: str, write: str) -> None:
    history, attempt, worker, status = STALE[case]
    command = WORKER_WRITES[write](attempt, worker)
    error = given(*history).when(command).then_refused(StaleAttempt)
    assert error.code == "STALE_ATTEMPT"
    assert error.attempt == attempt
    assert error.current_attempt == (2 if history is ON_ATTEMPT_2 else 1)
    assert error.status == status
    assert "stop working on it" in error.detail


@pytest.mark.parametrize("write", sorted(WORKER_WRITES))
def test_a_write_from_the_current_claim_is_accepted(write: str) -> None:
    command = WORKER_WRITES[write](2, W2)
    decided = decide(given(*ON_ATTEMPT_2).state, command)
    assert [getattr(event, "attempt", None) for event in decided] == [2]
