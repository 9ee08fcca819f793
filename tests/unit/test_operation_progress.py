"""Progress is throttled to at most one event per second and operation."""

from __future__ import annotations

import pytest

from ktrdr.domain import ProgressReported, ValidationError
from tests.unit.operation_scenarios import (
    OP,
    W1,
    W2,
    at,
    cancelled,
    claimed,
    given,
    progressed,
    report,
    resume_requested,
    running,
    saved,
)


def test_the_first_report_is_recorded() -> None:
    state = (
        given(*running())
        .when(report(12.5, t=10, message="loss 0.3", details={"loss": 0.3}))
        .then(
            ProgressReported(
                operation_id=OP,
                at=at(10),
                attempt=1,
                worker_id=W1,
                percentage=12.5,
                current_step="epoch",
                message="loss 0.3",
                details={"loss": 0.3},
            )
        )
    )
    assert state is not None and state.progress is not None
    assert (state.progress.percentage, state.progress.at, state.progress.attempt) == (
        12.5,
        at(10),
        1,
    )
    assert state.progress.details == {"loss": 0.3}


def test_a_report_within_a_second_of_the_last_one_is_dropped() -> None:
    given(*running(progressed(10, t=10))).when(report(11, t=10.999)).then_nothing()


def test_a_report_a_second_after_the_last_recorded_one_is_recorded() -> None:
    given(*running(progressed(10, t=10))).when(report(11, t=11)).then(progressed(11, t=11))


def test_the_interval_counts_from_the_last_recorded_report_not_the_last_dropped_one() -> None:
    history = running(progressed(10, t=10))
    # t=10.6 was dropped, so it does not delay t=11.2.
    given(*history).when(report(11, t=10.6)).then_nothing()
    given(*history).when(report(12, t=11.2)).then(progressed(12, t=11.2))


def test_reaching_100_percent_is_never_dropped() -> None:
    given(*running(progressed(99, t=10))).when(report(100, t=10.1)).then(progressed(100, t=10.1))


def test_a_new_attempt_reports_at_once() -> None:
    history = (
        *running(saved(1), progressed(40, t=3)),
        cancelled(t=3.1),
        resume_requested(1, t=3.2),
        claimed(2, W2, t=3.3),
    )
    given(*history).when(report(40, t=3.5, attempt=2, worker_id=W2)).then(
        progressed(40, t=3.5, attempt=2, worker_id=W2)
    )


@pytest.mark.parametrize("percentage", [-0.1, 100.1, float("nan"), float("inf")])
def test_a_percentage_outside_0_to_100_is_a_validation_error(percentage: float) -> None:
    with pytest.raises(ValidationError, match="percentage"):
        report(percentage, t=1)


def test_progress_details_must_be_json() -> None:
    with pytest.raises(ValidationError, match="NaN"):
        report(5, t=1, details={"loss": float("nan")})
