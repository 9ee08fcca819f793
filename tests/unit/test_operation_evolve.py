"""Folding events into state: statuses, times, versions, and what a fold never does."""

from __future__ import annotations

import pytest

from ktrdr.domain import CorruptHistory, OperationStatus, evolve, fold, resumable
from tests.unit.operation_scenarios import (
    W1,
    W2,
    at,
    cancellation_requested,
    cancelled,
    checkpoints_deleted,
    claimed,
    completed,
    created,
    failed,
    progressed,
    resume_requested,
    saved,
    state_after,
)

LIFE = (
    created(t=0),
    claimed(1, W1, t=1),
    progressed(30, t=2),
    saved(1, t=3),
    failed("orphaned", attempt=1, t=4),
    resume_requested(1, "failed", t=5),
    claimed(2, W2, t=6),
    saved(2, attempt=2, worker_id=W2, t=7),
    completed(attempt=2, t=8, result={"accuracy": 0.9}),
    checkpoints_deleted(1, 2, reason="completed", t=9),
)


def test_statuses_follow_the_lifecycle() -> None:
    statuses = []
    state = None
    for event in LIFE:
        state = evolve(state, event)
        statuses.append(state.status)
    assert statuses == [
        "pending",
        "running",
        "running",
        "running",
        "failed",
        "resuming",
        "running",
        "running",
        "completed",
        "completed",
    ]


def test_the_folded_state_of_a_whole_life() -> None:
    state = state_after(*LIFE)
    assert state.version == len(LIFE)
    assert (state.worker_id, state.attempt) == (W2, 2)
    assert (state.started_at, state.claimed_at, state.completed_at) == (at(1), at(6), at(8))
    assert state.result == {"accuracy": 0.9}
    assert state.error is None
    assert state.resumed_from == 1
    assert state.checkpoints == {} and state.last_sequence == 2
    assert state.progress is not None and state.progress.percentage == 30
    assert not resumable(state)


def test_who_ran_it_last_is_kept_after_it_stopped() -> None:
    state = state_after(created(), claimed(1, W1), saved(1), cancelled())
    assert (state.worker_id, state.attempt, state.completed_at) == (W1, 1, at(4))


def test_a_resume_clears_the_end() -> None:
    state = state_after(created(), claimed(), saved(1), failed(), resume_requested(1, "failed"))
    assert (state.completed_at, state.error, state.resumed_from) == (None, None, 1)


def test_a_fold_can_continue_from_a_snapshot() -> None:
    snapshot = fold(LIFE[:4])
    assert fold(LIFE[4:], snapshot) == fold(LIFE)


def test_evolve_never_changes_the_state_it_is_given() -> None:
    before = state_after(created(), claimed(), saved(1))
    kept = dict(before.checkpoints)
    after = evolve(evolve(before, saved(2)), checkpoints_deleted(1))
    assert before.checkpoints == kept and before.version == 3
    assert list(after.checkpoints) == [2]


def test_fold_of_nothing_is_nothing() -> None:
    assert fold([]) is None


def test_an_event_before_the_operation_exists_is_corrupt_history() -> None:
    with pytest.raises(CorruptHistory, match="before OperationCreated"):
        evolve(None, claimed())


def test_an_operation_created_twice_is_corrupt_history() -> None:
    with pytest.raises(CorruptHistory, match="created twice"):
        fold([created(), created()])


def test_terminal_statuses() -> None:
    assert {s for s in OperationStatus if s.terminal} == {"completed", "failed", "cancelled"}


def test_a_claim_starts_without_a_cancellation_request() -> None:
    # decide never leaves a request behind a stop, but the fold does not rely on it.
    state = state_after(created(), cancellation_requested(), claimed())
    assert not state.cancellation_requested
