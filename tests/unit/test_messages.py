"""Events as stored: type, schema version and JSON data, and back (upcast on read)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ktrdr.domain import (
    EVENT_TYPES,
    SCHEMA_VERSION,
    SCHEMA_VERSIONS,
    CheckpointCleanupRan,
    CheckpointDeleted,
    Event,
    HeartbeatMissed,
    MetricsRecorded,
    UnknownEventType,
    ValidationError,
    WorkerDeregistered,
    WorkerRegistered,
    from_payload,
    is_known_event_type,
    to_payload,
    upcast,
)
from ktrdr.domain.tokens import Role, TokenIssued, TokenRevoked, WorkerIdBound
from tests.unit.operation_scenarios import (
    OP,
    PARENT,
    W1,
    acknowledged,
    artifact,
    at,
    cancellation_requested,
    cancelled,
    checkpoints_deleted,
    claimed,
    completed,
    created,
    failed,
    progressed,
    released,
    resume_requested,
    retry_scheduled,
    save_failed,
    saved,
)

ONE_OF_EACH: list[Event] = [
    created(params={"symbols": ["EURUSD"], "lr": 0.001}, parent_operation_id=PARENT),
    claimed(3, W1),
    acknowledged(3, W1),
    released(3, W1),
    save_failed(8, attempt=3),
    progressed(42.5, t=2),
    MetricsRecorded(
        operation_id=OP,
        at=at(2),
        attempt=1,
        worker_id=W1,
        series="epochs",
        points=({"epoch": 1, "train_loss": 0.7, "val_loss": "NaN"},),
    ),
    saved(
        7,
        checkpoint_type="shutdown",
        state={"epoch": 7, "rng": {"torch": [1, 2, 3]}, "loss": None, "name": "ü"},
        artifacts_path=f"{OP}/7",
        artifacts=(artifact("model.pt", 10), artifact("optimizer.pt", 20)),
        artifacts_size_bytes=30,
    ),
    cancellation_requested(),
    cancelled("shutdown", attempt=2),
    failed("orphaned", attempt=None),
    completed(result={"model_sha256": "ab" * 32, "metrics": {"acc": 0.5}}),
    resume_requested(7, "failed", checkpoint_type="shutdown"),
    retry_scheduled(3, retry_at=9),
    checkpoints_deleted(1, 2, reason="expired"),
    WorkerRegistered(
        worker_id=W1,
        at=at(0),
        worker_type="training",
        host="h",
        pid=1,
        capabilities=["cuda", "fp16"],
        version="1.2.3",
        current_operation_id=OP,
        current_attempt=2,
    ),
    HeartbeatMissed(worker_id=W1, at=at(9), last_heartbeat_at=at(1), operation_id=OP, attempt=2),
    WorkerDeregistered(worker_id=W1, at=at(10), reason="shutdown"),
    CheckpointCleanupRan(
        at=at(11),
        max_age_days=30,
        checkpoints_deleted=2,
        bytes_freed=100,
        orphan_artifacts_removed=1,
        skipped_busy=0,
    ),
    TokenIssued(
        token_id="a" * 32,
        at=at(12),
        name="ci",
        role=Role.WORKER,
        secret_sha256="b" * 64,
        worker_id=W1,
    ),
    WorkerIdBound(token_id="a" * 32, at=at(13), worker_id=W1),
    TokenRevoked(token_id="a" * 32, at=at(14)),
]


def test_the_samples_cover_every_event_type() -> None:
    assert {type(event).__name__ for event in ONE_OF_EACH} == set(EVENT_TYPES)


@pytest.mark.parametrize("event", ONE_OF_EACH, ids=lambda event: type(event).__name__)
def test_every_event_survives_a_round_trip_through_json(event: Event) -> None:
    event_type, schema_version, data = to_payload(event)
    assert event_type == type(event).__name__
    assert schema_version == SCHEMA_VERSION == 1
    stored = json.loads(json.dumps(data, allow_nan=False))
    assert from_payload(event_type, schema_version, stored) == event


def test_times_are_stored_as_utc_iso_text() -> None:
    _, _, data = to_payload(claimed(t=1.5))
    assert data["at"] == "2025-01-01T12:00:01.500000Z"


def test_every_event_type_is_at_version_1() -> None:
    assert set(SCHEMA_VERSIONS.values()) == {1}
    assert all(is_known_event_type(name) for name in EVENT_TYPES)
    assert not is_known_event_type("OperationExploded")


def _v0_deleted_one_sequence(data: dict[str, Any]) -> dict[str, Any]:
    """A made-up version 0 of CheckpointDeleted that deleted a single sequence."""
    upgraded = {key: value for key, value in data.items() if key != "sequence"}
    return upgraded | {"sequences": [data["sequence"]], "reason": "manual"}


V0_UPCASTERS = {("CheckpointDeleted", 0): _v0_deleted_one_sequence}


def test_an_old_version_is_upcast_on_read() -> None:
    v0 = {"operation_id": OP, "at": "2025-01-01T12:00:06Z", "sequence": 3}
    event = from_payload("CheckpointDeleted", 0, v0, upcasters=V0_UPCASTERS)
    assert event == CheckpointDeleted(operation_id=OP, at=at(6), sequences=(3,), reason="manual")
    assert v0 == {"operation_id": OP, "at": "2025-01-01T12:00:06Z", "sequence": 3}


def test_the_current_version_is_not_upcast() -> None:
    _, _, data = to_payload(checkpoints_deleted(4))
    assert upcast("CheckpointDeleted", 1, data, upcasters=V0_UPCASTERS) == data


def test_an_old_version_without_an_upcaster_cannot_be_read() -> None:
    with pytest.raises(UnknownEventType) as refused:
        from_payload("CheckpointDeleted", 0, {"sequence": 3})
    assert refused.value.code == "UNKNOWN_EVENT_TYPE"


@pytest.mark.parametrize(
    ("event_type", "version"), [("OperationExploded", 1), ("OperationClaimed", 2)]
)
def test_an_unknown_type_or_a_newer_version_cannot_be_read(event_type: str, version: int) -> None:
    with pytest.raises(UnknownEventType, match="upgrade"):
        from_payload(event_type, version, {})


def test_data_that_does_not_fit_is_a_validation_error() -> None:
    _, _, data = to_payload(claimed())
    with pytest.raises(ValidationError, match="attempt"):
        from_payload("OperationClaimed", 1, data | {"attempt": 0})
    with pytest.raises(ValidationError, match="colour: Extra inputs"):
        from_payload("OperationClaimed", 1, data | {"colour": "red"})
