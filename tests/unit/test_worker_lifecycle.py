"""Workers register (and register again), miss heartbeats, and deregister."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ktrdr.domain import (
    CorruptHistory,
    DeregisterWorker,
    HeartbeatMissed,
    RecordMissedHeartbeat,
    RegisterWorker,
    ValidationError,
    WorkerCommand,
    WorkerDeregistered,
    WorkerEvent,
    WorkerNotFound,
    WorkerRegistered,
    WorkerState,
    WorkerStatus,
    decide_worker,
    evolve_worker,
    fold_worker,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)
W = "trainer-1"
OP = "0b7e4c1e-5a55-4b8e-9d7c-7f0c1a2b3c4d"


def at(t: float) -> datetime:
    return T0 + timedelta(seconds=t)


def registration(t: float = 0, **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "worker_id": W,
        "at": at(t),
        "worker_type": "training",
        "host": "gpu-1",
        "pid": 4242,
        "capabilities": ["cuda"],
        "version": "0.1.0",
    }
    return values | fields


def registered(t: float = 0, **fields: Any) -> WorkerRegistered:
    return WorkerRegistered(**registration(t, **fields))


def missed(t: float = 70, last: float | None = 10) -> HeartbeatMissed:
    return HeartbeatMissed(
        worker_id=W, at=at(t), last_heartbeat_at=None if last is None else at(last)
    )


def deregistered(t: float = 80, reason: str = "shutdown") -> WorkerDeregistered:
    return WorkerDeregistered(worker_id=W, at=at(t), reason=reason)


def then(
    history: tuple[WorkerEvent, ...], command: WorkerCommand, *expected: WorkerEvent
) -> WorkerState | None:
    state = fold_worker(history)
    events = decide_worker(state, command)
    assert events == list(expected)
    return fold_worker(events, state)


def test_a_worker_registers() -> None:
    state = then((), RegisterWorker(**registration(0)), registered(0))
    assert state is not None
    assert state.status == WorkerStatus.REGISTERED
    assert (state.worker_type, state.host, state.pid) == ("training", "gpu-1", 4242)
    assert (state.capabilities, state.software_version) == (("cuda",), "0.1.0")
    assert (state.registered_at, state.version) == (at(0), 1)
    assert state.current_operation_id is None


def test_a_worker_registers_again_with_its_current_operation() -> None:
    command = RegisterWorker(**registration(90, current_operation_id=OP, current_attempt=2))
    state = then(
        (registered(), missed()),
        command,
        registered(90, current_operation_id=OP, current_attempt=2),
    )
    assert state is not None
    assert state.status == WorkerStatus.REGISTERED
    assert (state.current_operation_id, state.current_attempt) == (OP, 2)
    assert (state.registered_at, state.version) == (at(90), 3)


def test_a_deregistered_worker_can_register_again() -> None:
    state = then(
        (registered(), deregistered()), RegisterWorker(**registration(100)), registered(100)
    )
    assert state is not None and state.status == WorkerStatus.REGISTERED


@pytest.mark.parametrize(
    "fields",
    [
        {"current_operation_id": OP},
        {"current_attempt": 1},
        {"current_operation_id": "nope", "current_attempt": 1},
        {"worker_id": "bad id"},
        {"worker_type": ""},
        {"pid": -1},
        {"at": datetime(2025, 1, 1)},
    ],
)
def test_a_malformed_registration_is_a_validation_error(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RegisterWorker(**registration(**fields))


def test_a_missed_heartbeat_is_recorded_once() -> None:
    command = RecordMissedHeartbeat(
        worker_id=W, at=at(70), last_heartbeat_at=at(10), operation_id=OP, attempt=1
    )
    expected = HeartbeatMissed(
        worker_id=W, at=at(70), last_heartbeat_at=at(10), operation_id=OP, attempt=1
    )
    state = then((registered(),), command, expected)
    assert state is not None
    assert state.status == WorkerStatus.MISSING
    assert (state.missed_at, state.last_heartbeat_at) == (at(70), at(10))
    then((registered(), expected), command)  # decides nothing the second time


def test_a_worker_that_never_sent_a_heartbeat_can_miss_one() -> None:
    command = RecordMissedHeartbeat(worker_id=W, at=at(70))
    then((registered(),), command, missed(70, last=None))


def test_a_deregistered_worker_misses_no_heartbeat() -> None:
    then((registered(), deregistered()), RecordMissedHeartbeat(worker_id=W, at=at(90)))


def test_a_worker_deregisters_once() -> None:
    state = then((registered(),), DeregisterWorker(worker_id=W, at=at(80)), deregistered())
    assert state is not None
    assert state.status == WorkerStatus.DEREGISTERED
    assert (state.deregistered_at, state.deregistration_reason) == (at(80), "shutdown")
    then((registered(), deregistered()), DeregisterWorker(worker_id=W, at=at(81)))


def test_a_missing_worker_can_be_deregistered() -> None:
    command = DeregisterWorker(worker_id=W, at=at(400), reason="expired")
    then((registered(), missed()), command, deregistered(400, "expired"))


@pytest.mark.parametrize(
    "command",
    [RecordMissedHeartbeat(worker_id=W, at=T0), DeregisterWorker(worker_id=W, at=T0)],
    ids=lambda command: type(command).__name__,
)
def test_an_unknown_worker_is_not_found(command: WorkerCommand) -> None:
    with pytest.raises(WorkerNotFound) as refused:
        decide_worker(None, command)
    assert refused.value.code == "WORKER_NOT_FOUND"
    assert "register first" in refused.value.detail


def test_an_event_before_registration_is_corrupt_history() -> None:
    with pytest.raises(CorruptHistory):
        evolve_worker(None, missed())
