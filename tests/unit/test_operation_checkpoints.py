"""Checkpoint sequences, their state, and their deletion."""

from __future__ import annotations

from typing import Any

import pytest

from ktrdr.domain import (
    CheckpointNotFound,
    CheckpointSaved,
    CheckpointSequenceMismatch,
    DeleteCheckpoints,
    OperationBusy,
    OperationEvent,
    ValidationError,
    checkpoint_content_sha256,
    checkpoint_summary,
    latest_checkpoint,
)
from tests.unit.operation_scenarios import (
    OP,
    SHA,
    W1,
    W2,
    artifact,
    at,
    cancelled,
    checkpoints_deleted,
    claimed,
    completed,
    created,
    delete,
    failed,
    given,
    resume_requested,
    running,
    save,
    saved,
)


def test_the_first_checkpoint_is_sequence_1_and_records_its_sizes() -> None:
    files = (artifact("model.pt", 100), artifact("optimizer.pt", 50))
    command = save(
        checkpoint_type="cancellation",
        state={"b": 1, "a": "é"},
        artifacts_path="op/1",
        artifacts=files,
        artifacts_size_bytes=150,
        t=7,
    )
    state = (
        given(*running())
        .when(command)
        .then(
            CheckpointSaved(
                operation_id=OP,
                at=at(7),
                attempt=1,
                worker_id=W1,
                sequence=1,
                checkpoint_type="cancellation",
                state={"b": 1, "a": "é"},
                artifacts_path="op/1",
                artifacts=files,
                # '{"a":"é","b":1}': sorted keys, no spaces, UTF-8 (é is two bytes)
                state_size_bytes=16,
                artifacts_size_bytes=150,
                content_sha256=checkpoint_content_sha256(command),
            )
        )
    )
    assert state is not None
    info = state.checkpoints[1]
    assert (info.attempt, info.worker_id, info.created_at) == (1, W1, at(7))
    assert (info.state_size_bytes, info.artifacts_size_bytes) == (16, 150)
    assert info.artifacts == files and info.checkpoint_type == "cancellation"
    assert latest_checkpoint(state) == info == state.latest_checkpoint
    assert state.last_sequence == 1


def test_each_checkpoint_is_the_next_sequence() -> None:
    command = save(t=8)
    digest = checkpoint_content_sha256(command)
    decided = (
        given(*running(saved(1), saved(2)))
        .when(command)
        .then(saved(3, t=8, state={"epoch": 1}, content_sha256=digest))
    )
    assert decided is not None and sorted(decided.checkpoints) == [1, 2, 3]


def test_a_deleted_sequence_is_never_reused() -> None:
    history = (
        *running(saved(1), saved(2), saved(3)),
        cancelled(),
        checkpoints_deleted(2, 3),
        resume_requested(1),
        claimed(2, W2, t=6),
    )
    command = save(attempt=2, worker_id=W2, t=9)
    digest = checkpoint_content_sha256(command)
    state = (
        given(*history)
        .when(command)
        .then(saved(4, attempt=2, worker_id=W2, t=9, state={"epoch": 1}, content_sha256=digest))
    )
    assert state is not None and sorted(state.checkpoints) == [1, 4]


@pytest.mark.parametrize(
    "bad_state",
    [
        {"loss": float("nan")},
        {"loss": float("-inf")},
        {"history": {"val": [0.5, float("nan")]}},
        {"deep": [[{"x": float("inf")}]]},
        {1: "non-string key"},
        {"tuple": (1, 2)},
        {"set": {1}},
    ],
)
def test_checkpoint_state_must_be_plain_json_everywhere(bad_state: dict[Any, Any]) -> None:
    with pytest.raises(ValidationError, match="state"):
        save(state=bad_state)


def test_json_values_of_every_kind_are_accepted() -> None:
    state: dict[str, Any] = {
        "n": None,
        "b": True,
        "i": -3,
        "f": 1.5e300,
        "s": "",
        "l": [[], {}],
        "d": {"x": [1]},
    }
    assert save(state=state).state == state


@pytest.mark.parametrize(
    "fields",
    [
        {"artifacts": [artifact()]},  # no artifacts_path
        {"artifacts_path": "p", "artifacts": [artifact(), artifact()]},
        {"artifacts_path": "p", "artifacts": [{"name": "m.pt", "size": 1, "sha256": "xyz"}]},
        {"artifacts_path": "p", "artifacts": [{"name": "../m.pt", "size": 1, "sha256": SHA}]},
        {"artifacts_path": "p", "artifacts": [{"name": "/m.pt", "size": 1, "sha256": SHA}]},
        {"artifacts_path": "p", "artifacts": [{"name": "m.pt", "size": -1, "sha256": SHA}]},
        {"artifacts_size_bytes": -1},
        {"checkpoint_type": "whenever"},
    ],
)
def test_a_malformed_checkpoint_is_a_validation_error(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        save(**fields)


# Deletion -----------------------------------------------------------------------------


def test_deleting_without_sequences_deletes_every_live_checkpoint() -> None:
    history = (*running(saved(1), saved(2), saved(3)), cancelled(), checkpoints_deleted(2))
    state = given(*history).when(delete(reason="manual")).then(checkpoints_deleted(1, 3))
    assert state is not None
    assert state.checkpoints == {}
    assert state.last_sequence == 3
    assert not state.resumable


def test_deleting_named_sequences_keeps_the_others() -> None:
    history = (*running(saved(1), saved(2), saved(3)), completed())
    state = (
        given(*history)
        .when(delete(3, 1, 3, reason="completed"))
        .then(checkpoints_deleted(1, 3, reason="completed"))
    )
    assert state is not None and list(state.checkpoints) == [2]


@pytest.mark.parametrize(
    ("history", "status"),
    [
        (running(saved(1)), "running"),
        ((*running(saved(1)), cancelled(), resume_requested(1)), "resuming"),
    ],
)
def test_checkpoints_of_a_busy_operation_are_not_deleted(
    history: tuple[OperationEvent, ...], status: str
) -> None:
    error = given(*history).when(delete()).then_refused(OperationBusy)
    assert error.code == "OPERATION_BUSY"
    assert error.status == status
    assert "cancel it first" in error.detail


@pytest.mark.parametrize(
    "history",
    [
        (created(),),
        (*running(), completed()),
        (*running(saved(1)), failed(), checkpoints_deleted(1)),
    ],
)
def test_deleting_when_nothing_is_live_is_checkpoint_not_found(
    history: tuple[OperationEvent, ...],
) -> None:
    error = given(*history).when(delete()).then_refused(CheckpointNotFound)
    assert error.code == "CHECKPOINT_NOT_FOUND"


def test_deleting_a_sequence_that_is_not_live_is_checkpoint_not_found() -> None:
    history = (*running(saved(1), saved(2)), failed(), checkpoints_deleted(1))
    error = given(*history).when(delete(1, 2)).then_refused(CheckpointNotFound)
    assert (error.sequences, error.live) == ([1], [2])
    assert "live checkpoints: 2" in error.detail


def test_an_empty_list_of_sequences_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="sequences"):
        DeleteCheckpoints(operation_id=OP, at=at(6), sequences=[])


# Summary ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation_type", "state", "summary"),
    [
        ("training", {"epoch": 12, "loss": 0.1}, "epoch 12"),
        ("training", {"epoch": 0}, "epoch 0"),
        ("backtesting", {"bar_index": 5400}, "bar 5400"),
        ("agent_research", {"phase": "training"}, "phase training"),
        ("training", {}, ""),
        ("training", {"epoch": None}, ""),
        ("backtesting", {"bar_index": True}, ""),
        ("unknown", {"epoch": 1}, ""),
    ],
)
def test_checkpoint_summary(operation_type: str, state: dict[str, Any], summary: str) -> None:
    assert checkpoint_summary(operation_type, state) == summary


def test_a_checkpoint_written_under_the_wrong_sequence_is_refused() -> None:
    refused = given(*running(saved(1))).when(save(t=8, sequence=3))
    error = refused.then_refused(CheckpointSequenceMismatch)
    assert (error.sequence, error.expected) == (3, 2)
    command = save(t=8, sequence=2)
    digest = checkpoint_content_sha256(command)
    given(*running(saved(1))).when(command).then(
        saved(2, t=8, state={"epoch": 1}, content_sha256=digest)
    )
