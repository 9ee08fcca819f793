"""A claim is a lease its worker must acknowledge; one nobody started goes back to the queue."""

from __future__ import annotations

from ktrdr.domain import OperationCancelled, OperationStatus, StaleAttempt
from tests.unit.operation_scenarios import (
    OP,
    W1,
    W2,
    acknowledge,
    acknowledged,
    at,
    cancellation_requested,
    cancelled,
    claim,
    claimed,
    created,
    given,
    release,
    released,
    resume_requested,
    saved,
    started,
)


def test_acknowledging_a_claim_starts_the_run() -> None:
    state = given(created(), claimed()).when(acknowledge()).then(acknowledged())
    assert state is not None
    assert (state.acknowledged_at, state.started_attempts) == (at(1.5), 1)


def test_a_repeated_acknowledgement_changes_nothing() -> None:
    given(*started()).when(acknowledge(t=2)).then_nothing()


def test_only_the_current_attempt_acknowledges() -> None:
    given(created(), claimed()).when(acknowledge(worker_id=W2)).then_refused(StaleAttempt)
    given(created(), claimed()).when(acknowledge(attempt=2)).then_refused(StaleAttempt)


def test_fault_01_an_unacknowledged_claim_goes_back_to_the_queue_without_failing() -> None:
    state = given(created(), claimed()).when(release()).then(released())
    assert state is not None
    assert state.status == OperationStatus.PENDING
    assert state.error is None and state.started_attempts == 0 and state.started_at is None
    # The next claim is a new fencing token: a worker that got attempt 1 late is fenced.
    after = given(created(), claimed(), released()).when(claim(W2, t=4)).then(claimed(2, W2, t=4))
    assert after is not None and after.attempt == 2 and after.started_attempts == 0


def test_a_released_resume_goes_back_to_resuming() -> None:
    history = (*started(saved(1)), cancelled(), resume_requested(1), claimed(2, W2, t=6))
    state = given(*history).when(release(attempt=2, t=7)).then(released(2, W2, t=7))
    assert state is not None
    assert state.status == OperationStatus.RESUMING and state.resumed_from == 1
    assert state.started_at == at(1)  # attempt 1 really started


def test_an_acknowledged_or_replaced_claim_is_not_released() -> None:
    given(*started()).when(release()).then_nothing()
    history = (*started(saved(1)), cancelled(), resume_requested(1), claimed(2, W2, t=6))
    given(*history).when(release(attempt=1)).then_nothing()


def test_a_worker_releases_only_its_own_claim() -> None:
    given(created(), claimed()).when(release(worker_id=W2)).then_nothing()
    given(created(), claimed()).when(release(worker_id=W1)).then(released())


def test_a_cancel_that_waited_for_the_released_claim_happens_with_the_release() -> None:
    history = (created(), claimed(), cancellation_requested(t=2))
    state = (
        given(*history)
        .when(release(t=3))
        .then(released(), OperationCancelled(operation_id=OP, at=at(3), reason="user"))
    )
    assert state is not None and state.status == OperationStatus.CANCELLED
