"""Any sequence of commands keeps the operation's invariants."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ktrdr.domain import (
    TRANSITIONS,
    CheckpointDeleted,
    CheckpointSaved,
    DomainError,
    OperationClaimed,
    OperationCommand,
    OperationEvent,
    OperationState,
    OperationStatus,
    ProgressReported,
    decide,
    evolve,
    fold,
    from_payload,
    to_payload,
)
from tests.unit import operation_scenarios as s

KINDS = (
    "claim",
    "progress",
    "save",
    "cancel",
    "confirm",
    "complete",
    "fail",
    "orphan",
    "backend_fail",
    "resume",
    "delete",
)
# Every command can come in any status, but the likely ones come more often, so
# that runs get long and reach resumes of resumes and deletions.
LIKELY = {
    OperationStatus.PENDING: ("claim", "claim"),
    OperationStatus.RESUMING: ("claim", "claim"),
    OperationStatus.RUNNING: ("progress", "save", "save", "save"),
    OperationStatus.CANCELLED: ("resume", "resume", "delete"),
    OperationStatus.FAILED: ("resume", "resume", "delete"),
    OperationStatus.COMPLETED: ("delete",),
}


def _command(data: st.DataObject, state: OperationState, kind: str, t: float) -> OperationCommand:
    attempt = max(1, state.attempt + data.draw(st.sampled_from([0, 0, 0, -1, 1])))
    worker = data.draw(st.sampled_from([state.worker_id or s.W1, state.worker_id or s.W1, s.W2]))
    live = sorted(state.checkpoints)
    sequence = data.draw(st.sampled_from([None, *live, state.last_sequence + 1]))
    match kind:
        case "claim":
            return s.claim(worker, t=t)
        case "progress":
            percentage = data.draw(st.sampled_from([10.0, 50.0, 100.0]))
            return s.report(percentage, t=t, attempt=attempt, worker_id=worker)
        case "save":
            return s.save(attempt=attempt, worker_id=worker, t=t, state={"epoch": int(t)})
        case "cancel":
            return s.request_cancellation(t=t)
        case "confirm":
            reason = data.draw(st.sampled_from(["cancellation", "shutdown"]))
            return s.confirm(reason, attempt=attempt, worker_id=worker, t=t)
        case "complete":
            return s.complete(attempt=attempt, worker_id=worker, t=t)
        case "fail":
            return s.fail(attempt, "error", worker, t=t)
        case "orphan":
            return s.fail(attempt, "orphaned", None, t=t)
        case "backend_fail":
            return s.fail(None, "shutdown", None, t=t)
        case "resume":
            return s.resume(sequence, t=t)
        case _:
            return s.delete(*([sequence] if sequence else []), t=t)


def _check_step(before: OperationState, event: OperationEvent, after: OperationState) -> None:
    if after.status != before.status:
        assert after.status in TRANSITIONS[before.status], (before.status, event)
    if isinstance(event, CheckpointSaved):
        assert event.sequence == before.last_sequence + 1
        assert event.sequence not in before.checkpoints
    if isinstance(event, OperationClaimed):
        assert event.attempt == before.attempt + 1
    if isinstance(event, ProgressReported) and before.progress is not None:
        same_attempt = before.progress.attempt == event.attempt
        if same_attempt and event.percentage < 100:
            assert event.at - before.progress.at >= timedelta(seconds=1)
    if isinstance(event, CheckpointDeleted):
        assert before.status not in (OperationStatus.RUNNING, OperationStatus.RESUMING)
    assert after.version == before.version + 1
    assert not after.cancellation_requested or after.status == OperationStatus.RUNNING
    assert set(after.checkpoints) <= set(range(1, after.last_sequence + 1))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_sequence_of_commands_keeps_the_invariants(data: st.DataObject) -> None:
    history: list[OperationEvent] = [s.created()]
    state = fold(history)
    assert state is not None
    t = 0.0
    for _ in range(data.draw(st.integers(0, 40))):
        kind = data.draw(st.sampled_from(KINDS + LIKELY[state.status]))
        t += data.draw(st.sampled_from([0.0, 0.4, 1.0, 2.5]))
        try:
            events = decide(state, _command(data, state, kind, t))
        except DomainError:
            continue
        for event in events:
            after = evolve(state, event)
            _check_step(state, event, after)
            history.append(event)
            state = after
    assert state.version == len(history)
    replayed = [from_payload(*to_payload(event)) for event in history]
    assert replayed == history
    assert fold(e for e in replayed if isinstance(e, OperationEvent)) == state
