"""Retention while an operation lives: the newest checkpoints stay, every deletion an event."""

from __future__ import annotations

from ktrdr.domain import OperationBusy, superseded
from tests.unit.operation_scenarios import (
    W2,
    cancelled,
    checkpoints_deleted,
    claimed,
    completed,
    delete,
    given,
    resume_requested,
    saved,
    started,
    state_after,
)


def test_the_newest_checkpoints_are_kept_and_the_others_superseded() -> None:
    assert superseded(state_after(*started(saved(1), saved(2), saved(3))), keep=2) == [1]
    assert superseded(state_after(*started(saved(1))), keep=2) == []
    assert superseded(state_after(*started(saved(1), saved(2), saved(3))), keep=1) == [1, 2]


def test_a_running_resume_keeps_the_checkpoint_it_resumed_from() -> None:
    history = (
        *started(saved(1), saved(2)),
        cancelled(),
        resume_requested(1),
        claimed(2, W2, t=6),
        saved(3, attempt=2, worker_id=W2, t=7),
        saved(4, attempt=2, worker_id=W2, t=8),
    )
    assert superseded(state_after(*history), keep=2) == [2]
    given(*history).when(delete(2, reason="superseded")).then(
        checkpoints_deleted(2, reason="superseded")
    )
    given(*history).when(delete(1, reason="superseded")).then_refused(OperationBusy)
    given(*history).when(delete(4, reason="superseded")).then_refused(OperationBusy)
    # a user still cannot delete checkpoints of a running operation
    given(*history).when(delete(2)).then_refused(OperationBusy)


def test_nothing_is_superseded_while_resuming_or_once_completed() -> None:
    resuming = (*started(saved(1), saved(2), saved(3)), cancelled(), resume_requested(3))
    assert superseded(state_after(*resuming), keep=1) == []
    assert superseded(state_after(*started(saved(1), saved(2), completed())), keep=1) == []
