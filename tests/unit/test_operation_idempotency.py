"""A repeat of a committed worker write gets the original answer; only a conflict is refused.

A reply can be lost after the commit (a client timeout, a proxy reset, a backend
killed after COMMIT), so a worker retries; the retry must not make it abandon its run.
"""

from __future__ import annotations

from typing import Any

from ktrdr.domain import (
    CheckpointSequenceMismatch,
    ConflictingWrite,
    OperationEvent,
    SaveCheckpoint,
    StaleAttempt,
    checkpoint_content_sha256,
    decide,
)
from tests.unit.operation_scenarios import (
    W2,
    cancelled,
    claimed,
    complete,
    completed,
    confirm,
    fail,
    failed,
    given,
    report_failure,
    resume_requested,
    save,
    save_failed,
    saved,
    started,
)


def _committed(sequence: int = 1, **fields: Any) -> tuple[SaveCheckpoint, OperationEvent]:
    """A save and the event it was committed as."""
    command = save(sequence=sequence, **fields)
    [event] = decide(given(*started(*[saved(s) for s in range(1, sequence)])).state, command)
    return command, event


def test_fault_03_a_repeated_checkpoint_save_gets_the_original_answer() -> None:
    command, event = _committed(1, state={"epoch": 5})
    given(*started(event)).when(command).then_nothing()


def test_a_repeated_save_is_recognised_after_the_operation_moved_on() -> None:
    command, event = _committed(1, checkpoint_type="shutdown", state={"epoch": 5})
    given(*started(event), cancelled("shutdown")).when(command).then_nothing()


def test_the_same_sequence_with_other_content_conflicts() -> None:
    _, event = _committed(1, state={"epoch": 5})
    other = save(sequence=1, state={"epoch": 6})
    given(*started(event)).when(other).then_refused(ConflictingWrite)


def test_a_save_of_a_sequence_another_attempt_committed_is_refused() -> None:
    command = save(sequence=1, attempt=1, state={"epoch": 1})
    digest = checkpoint_content_sha256(command)
    history = (
        *started(saved(1, content_sha256=digest)),
        cancelled(),
        resume_requested(1),
        claimed(2, W2, t=6),
        saved(2, attempt=2, worker_id=W2, t=7),
    )
    # attempt 1 repeating its own save of 1 is a repeat, whoever runs now
    given(*history).when(command).then_nothing()
    # but a stale attempt's new sequence is fenced
    given(*history).when(save(sequence=3, attempt=1)).then_refused(StaleAttempt)
    given(*history).when(save(sequence=2, attempt=2, worker_id=W2)).then_refused(ConflictingWrite)
    given(*history).when(save(sequence=9, attempt=2, worker_id=W2)).then_refused(
        CheckpointSequenceMismatch
    )


def test_a_repeated_completion_gets_the_original_answer_and_another_result_conflicts() -> None:
    given(*started(completed())).when(complete()).then_nothing()
    other = complete().model_copy(update={"result": {"ok": 2}})
    given(*started(completed())).when(other).then_refused(ConflictingWrite)


def test_a_repeated_failure_report_gets_the_original_answer() -> None:
    given(*started(failed())).when(fail()).then_nothing()
    given(*started(failed())).when(fail(message="other")).then_refused(StaleAttempt)
    # the detector failed it meanwhile: the worker's own report is refused, it moves on
    given(*started(failed("orphaned"))).when(fail()).then_refused(StaleAttempt)


def test_a_repeated_cancellation_confirmation_gets_the_original_answer() -> None:
    given(*started(cancelled("shutdown"))).when(confirm("shutdown")).then_nothing()
    given(*started(cancelled("shutdown"))).when(confirm(worker_id=W2)).then_refused(StaleAttempt)


def test_a_failed_checkpoint_save_is_recorded_once_and_cleared_by_the_next_save() -> None:
    state = given(*started()).when(report_failure(1)).then(save_failed(1))
    assert state is not None and state.checkpoint_failure is not None
    assert state.checkpoint_failure.message == "disk full"
    given(*started(save_failed(1))).when(report_failure(1)).then_nothing()
    after = given(*started(save_failed(1), saved(1))).state
    assert after is not None and after.checkpoint_failure is None


def test_only_the_current_attempt_reports_a_failed_save() -> None:
    given(*started(completed())).when(report_failure(1)).then_refused(StaleAttempt)
