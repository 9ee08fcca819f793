from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pydantic
import pytest

from ktrdr.domain import (
    OperationAlreadyExists,
    OperationCommand,
    OperationCreated,
    OperationNotFound,
    OperationStatus,
    OperationType,
    ValidationError,
    decide,
    operation_stream,
    worker_stream,
)
from tests.unit.operation_scenarios import (
    OP,
    PARENT,
    T0,
    W1,
    at,
    claim,
    complete,
    confirm,
    create,
    created,
    delete,
    fail,
    given,
    report,
    request_cancellation,
    resume,
    save,
)


def test_an_operation_is_created_on_an_empty_stream() -> None:
    state = (
        given()
        .when(create(params={"epochs": 3}, parent_operation_id=PARENT, keep_checkpoints=True))
        .then(
            OperationCreated(
                operation_id=OP,
                at=T0,
                operation_type="training",
                params={"epochs": 3},
                parent_operation_id=PARENT,
                keep_checkpoints=True,
            )
        )
    )
    assert state is not None
    assert state.status == OperationStatus.PENDING
    assert (state.attempt, state.last_sequence, state.version) == (0, 0, 1)
    assert state.created_at == T0
    assert state.keep_checkpoints and state.parent_operation_id == PARENT


def test_an_existing_operation_is_not_created_again() -> None:
    error = given(created()).when(create()).then_refused(OperationAlreadyExists)
    assert error.code == "OPERATION_ALREADY_EXISTS"
    assert OP in error.detail and "new id" in error.detail


@pytest.mark.parametrize(
    "command",
    [
        claim(),
        report(10, t=1),
        save(),
        request_cancellation(),
        confirm(),
        complete(),
        fail(),
        resume(),
        delete(),
    ],
    ids=lambda command: type(command).__name__,
)
def test_every_other_command_needs_an_existing_operation(command: OperationCommand) -> None:
    error = given().when(command).then_refused(OperationNotFound)
    assert error.code == "OPERATION_NOT_FOUND"
    assert error.operation_id == OP


@pytest.mark.parametrize(
    "fields",
    [
        {"operation_type": "mining"},
        {"params": ["epochs", 3]},
        {"params": "epochs=3"},
        {"params": {"lr": float("nan")}},
        {"params": {"nested": [{"x": float("inf")}]}},
        {"operation_id": "not-a-uuid"},
        {"operation_id": ""},
        {"parent_operation_id": "42"},
        {"parent_operation_id": OP},
        {"at": datetime(2025, 1, 1)},
        {"unknown_field": 1},
    ],
)
def test_a_malformed_create_is_a_validation_error(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as refused:
        create(**fields)
    assert refused.value.code == "VALIDATION_ERROR"
    assert refused.value.errors
    assert "CreateOperation" in refused.value.detail


def test_ids_and_times_are_normalised() -> None:
    upper = OP.upper()
    command = create(operation_id=uuid.UUID(upper)).model_copy()
    assert command.operation_id == OP
    assert create(operation_id=upper).operation_id == OP
    assert create(at=datetime.fromisoformat("2025-01-01T14:00:00+02:00")).at == T0


def test_messages_are_frozen() -> None:
    command = create()
    with pytest.raises(pydantic.ValidationError):
        command.operation_type = OperationType.BACKTESTING  # type: ignore[misc]


def test_streams_are_named_by_their_ids() -> None:
    assert operation_stream(OP.upper()) == f"operation-{OP}"
    assert operation_stream(uuid.UUID(OP)) == f"operation-{OP}"
    assert worker_stream(W1) == f"worker-{W1}"


@pytest.mark.parametrize("bad", ["", "x", "../etc", OP + "0", None, 7])
def test_a_malformed_operation_id_is_a_validation_error(bad: Any) -> None:
    with pytest.raises(ValidationError, match="operation id"):
        operation_stream(bad)


@pytest.mark.parametrize("bad", ["", "-lead", "has space", "slash/id", "x" * 201, None])
def test_a_malformed_worker_id_is_a_validation_error(bad: Any) -> None:
    with pytest.raises(ValidationError, match="worker id"):
        worker_stream(bad)
    with pytest.raises(ValidationError):
        claim(worker_id=bad)


def test_a_command_is_never_decided_against_another_operations_state() -> None:
    other = created().model_copy(update={"operation_id": PARENT})
    with pytest.raises(ValueError, match="was given the state"):
        decide(given(other).state, claim(t=2))


def test_at_must_be_a_moment() -> None:
    assert claim(t=1.5).at == at(1.5)
