"""Every N units or T seconds, whichever first, with the caller's clock."""

from __future__ import annotations

from typing import Any

import pytest

from ktrdr.domain import CheckpointPolicy, ValidationError


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def started(
    every_units: int = 10, interval_seconds: float = 300, units_done: int = 0
) -> tuple[CheckpointPolicy, FakeClock]:
    clock = FakeClock()
    policy = CheckpointPolicy(every_units=every_units, interval_seconds=interval_seconds)
    policy.start(clock.now, units_done)
    return policy, clock


def saves(
    policy: CheckpointPolicy, clock: FakeClock, units: range, seconds_per_unit: float
) -> list[int]:
    """Run units, saving whenever the policy says so; return the units saved at."""
    saved_at = []
    for unit in units:
        clock.advance(seconds_per_unit)
        if policy.due(unit, clock.now):
            policy.saved(unit, clock.now)
            saved_at.append(unit)
    return saved_at


def test_units_trigger_every_n_units() -> None:
    policy, clock = started(every_units=10)
    assert not policy.due(9, clock.now)
    assert policy.due(10, clock.now)
    policy.saved(10, clock.now)
    assert not policy.due(19, clock.now)
    assert policy.due(20, clock.now)


def test_time_triggers_before_the_first_save() -> None:
    policy, clock = started(every_units=1000, interval_seconds=300)
    assert not policy.due(0, clock.advance(299.9))
    assert policy.due(0, clock.advance(0.1))


def test_time_counts_from_the_last_save() -> None:
    policy, clock = started(every_units=1000, interval_seconds=300)
    policy.saved(3, clock.advance(200))
    assert not policy.due(4, clock.advance(299))
    assert policy.due(4, clock.advance(1))


def test_whichever_comes_first() -> None:
    fast_units, clock = started(every_units=10, interval_seconds=300)
    assert saves(fast_units, clock, range(1, 31), seconds_per_unit=1) == [10, 20, 30]
    slow_units, clock = started(every_units=10, interval_seconds=300)
    assert saves(slow_units, clock, range(1, 7), seconds_per_unit=100) == [3, 6]


def test_counting_survives_a_resume() -> None:
    uninterrupted, clock = started(every_units=10)
    assert saves(uninterrupted, clock, range(1, 61), seconds_per_unit=1) == [10, 20, 30, 40, 50, 60]
    # A run that crashed at unit 37 resumes from its checkpoint at 30: same cadence.
    resumed, clock = started(every_units=10, units_done=30)
    assert saves(resumed, clock, range(31, 61), seconds_per_unit=1) == [40, 50, 60]


def test_any_save_restarts_the_count() -> None:
    policy, clock = started(every_units=10)
    policy.saved(7, clock.now)  # e.g. a cancellation checkpoint
    assert not policy.due(16, clock.now)
    assert policy.due(17, clock.now)


def test_due_before_start_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError, match="start"):
        CheckpointPolicy(every_units=1, interval_seconds=1).due(1, 0.0)


@pytest.mark.parametrize(
    ("every_units", "interval_seconds"),
    [(0, 1), (-1, 1), (1.5, 1), (True, 1), (1, 0), (1, -5), (1, float("nan")), (1, float("inf"))],
)
def test_intervals_must_be_positive(every_units: Any, interval_seconds: float) -> None:
    with pytest.raises(ValidationError):
        CheckpointPolicy(every_units=every_units, interval_seconds=interval_seconds)
