"""Retry policies: an interrupted run goes again by itself, as far as its policy allows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ktrdr.domain import (
    EnforceTimeout,
    OperationCommand,
    OperationEvent,
    OperationFailed,
    OperationStatus,
    ResumeRequested,
    RetryOperation,
    RetryPolicy,
    ScheduleRetry,
    ValidationError,
    decide,
    retry_delay,
)
from tests.unit.operation_scenarios import (
    OP,
    W2,
    acknowledged,
    at,
    cancelled,
    claimed,
    completed,
    created,
    failed,
    given,
    resume_requested,
    retry_scheduled,
    saved,
)

POLICY = {"max_attempts": 3, "initial_interval_seconds": 1.0, "maximum_interval_seconds": 60.0}


def with_policy(**fields: Any) -> Any:
    return created(retry_policy=RetryPolicy(**(POLICY | fields)))


def started_with(*more: Any, **policy: Any) -> tuple[Any, ...]:
    return (with_policy(**policy), claimed(), acknowledged(), *more)


def _decide(history: tuple[Any, ...], command: OperationCommand) -> list[OperationEvent]:
    return decide(given(*history).state, command)


def schedule(t: float = 5) -> ScheduleRetry:
    return ScheduleRetry(operation_id=OP, at=at(t))


def retry(t: float = 6, unavailable: tuple[int, ...] = ()) -> RetryOperation:
    return RetryOperation(operation_id=OP, at=at(t), unavailable=unavailable)


def test_delays_back_off_up_to_their_cap() -> None:
    policy = RetryPolicy(
        initial_interval_seconds=1, backoff_coefficient=2, maximum_interval_seconds=5
    )
    assert [retry_delay(policy, n).total_seconds() for n in range(5)] == [1, 2, 4, 5, 5]


def test_a_policy_with_a_cap_below_its_first_interval_is_refused() -> None:
    with pytest.raises(ValidationError, match="maximum_interval_seconds"):
        RetryPolicy(initial_interval_seconds=10, maximum_interval_seconds=5)


def test_an_orphaned_run_is_scheduled_for_a_retry_then_resumed_from_its_newest_checkpoint() -> None:
    history = started_with(saved(1), saved(2, t=3), failed("orphaned", t=4))
    state = given(*history).when(schedule(t=5)).then(retry_scheduled(2, t=5, retry_at=6))
    assert state is not None and state.next_retry_at == at(6) and state.retries == 1
    given(*history, retry_scheduled(t=5)).when(retry(t=5.5)).then_nothing()  # not due yet
    resumed = (
        given(*history, retry_scheduled(t=5))
        .when(retry(t=6))
        .then(
            ResumeRequested(
                operation_id=OP,
                at=at(6),
                from_sequence=2,
                checkpoint_type="periodic",
                previous_status="failed",
            )
        )
    )
    assert resumed is not None and resumed.status == OperationStatus.RESUMING
    assert resumed.next_retry_at is None


def test_a_retry_skips_checkpoints_whose_files_are_gone_and_starts_over_without_any() -> None:
    history = (*started_with(saved(1), saved(2, t=3), failed("orphaned")), retry_scheduled())
    [older] = _decide(history, retry(unavailable=(2,)))
    assert isinstance(older, ResumeRequested) and older.from_sequence == 1
    [over] = _decide(history, retry(unavailable=(1, 2)))
    assert isinstance(over, ResumeRequested) and over.from_sequence is None


@pytest.mark.parametrize(
    ("stop", "policy", "retried"),
    [
        (failed("orphaned"), {}, True),
        (failed("infrastructure"), {}, True),
        (failed("shutdown"), {}, True),
        (cancelled("shutdown"), {}, True),
        (failed("error"), {}, False),
        (failed("error"), {"retry_on_error": True}, True),
        (failed("invalid"), {"retry_on_error": True}, False),
        (failed("timeout"), {"retry_on_error": True}, False),
        (cancelled("cancellation"), {}, False),
        (completed(), {}, False),
    ],
    ids=lambda value: str(value)[:40],
)
def test_what_is_retried(stop: Any, policy: dict[str, Any], retried: bool) -> None:
    events = _decide(started_with(stop, **policy), schedule())
    assert bool(events) is retried


def test_max_attempts_counts_started_attempts_only() -> None:
    one = started_with(failed("orphaned"), max_attempts=1)
    assert _decide(one, schedule()) == []  # the manual flow: a person resumes
    third = (
        *started_with(saved(1), failed("orphaned"), max_attempts=3),
        retry_scheduled(2, t=5, retry_at=6),
        resume_requested(1, "failed", t=6),
        claimed(2, W2, t=6.5),
        acknowledged(2, W2, t=6.6),
        failed("orphaned", attempt=2, t=7),
    )
    [scheduled] = _decide(third, schedule(t=8))
    assert scheduled.attempt == 3
    assert scheduled.retry_at == at(8) + timedelta(seconds=2)  # the second retry backs off
    exhausted = (*third, scheduled, resume_requested(1, "failed", t=10), claimed(3, t=11))
    exhausted = (*exhausted, acknowledged(3, t=11.5), failed("orphaned", attempt=3, t=12))
    assert _decide(exhausted, schedule(t=13)) == []


def test_a_retry_is_scheduled_once() -> None:
    history = (*started_with(failed("orphaned")), retry_scheduled())
    assert _decide(history, schedule(t=5.5)) == []


def test_a_person_resuming_first_makes_the_scheduled_retry_a_no_op() -> None:
    history = (
        *started_with(saved(1), failed("orphaned")),
        retry_scheduled(),
        resume_requested(1, "failed", t=5.5),
    )
    assert _decide(history, retry(t=6)) == []


def test_timeouts_fail_a_running_or_waiting_operation_and_are_not_retried() -> None:
    running = started_with(saved(1), max_attempts=5)
    running = (created(retry_policy=RetryPolicy(), timeout_seconds=10), *running[1:])
    assert _decide(running, EnforceTimeout(operation_id=OP, at=at(10))) == []
    [out] = _decide(running, EnforceTimeout(operation_id=OP, at=at(11.5)))
    assert isinstance(out, OperationFailed) and (out.reason, out.attempt) == ("timeout", 1)
    assert _decide((*running, out), schedule(t=12)) == []
    waiting = (*running, failed("orphaned", t=5), retry_scheduled(t=5, retry_at=20))
    [closed] = _decide(waiting, EnforceTimeout(operation_id=OP, at=at(12)))
    assert isinstance(closed, OperationFailed) and closed.reason == "timeout"
    after = given(*waiting, closed).state
    assert after is not None and after.next_retry_at is None
    assert _decide((*running, completed(t=5)), EnforceTimeout(operation_id=OP, at=at(12))) == []
