"""The pure parts of event-replay debugging: folding to a point, rendering, the export format."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ktrdr.bootstrap.debugging import event_filter
from ktrdr.domain import (
    CheckpointSaved,
    OperationClaimed,
    OperationCompleted,
    OperationCreated,
    OperationFailed,
    ValidationError,
    to_payload,
)
from ktrdr.domain.messages import Event
from ktrdr.eventlog import RecordedEvent
from ktrdr.projections import timeline
from ktrdr.projections.replay import Difference, describe

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
OP = "3f2b8c1e-0d4a-4c47-9a55-6f1e2d3c4b5a"


def recorded(
    event: Event | tuple[str, dict[str, Any]],
    version: int,
    *,
    seconds: float = 0,
    actor: str = "user",
    stream_id: str = f"operation-{OP}",
) -> RecordedEvent:
    if isinstance(event, tuple):
        event_type, schema_version, data = event[0], 1, event[1]
    else:
        event_type, schema_version, data = to_payload(event)
    return RecordedEvent(
        global_position=version,
        transaction_id=1000 + version,
        stream_id=stream_id,
        stream_version=version,
        event_id=uuid.uuid4(),
        event_type=event_type,
        schema_version=schema_version,
        data=data,
        metadata={"actor": actor, "correlation_id": OP},
        recorded_at=T0 + timedelta(seconds=seconds),
    )


def history() -> list[RecordedEvent]:
    at = T0
    return [
        recorded(OperationCreated(operation_id=OP, at=at, operation_type="training", params={}), 1),
        recorded(
            OperationClaimed(operation_id=OP, at=at, worker_id="gpu-a", attempt=1),
            2,
            seconds=1,
            actor="worker:gpu-a",
        ),
        recorded(
            CheckpointSaved(
                operation_id=OP,
                at=at,
                attempt=1,
                worker_id="gpu-a",
                sequence=1,
                checkpoint_type="periodic",
                state={"epoch": 3},
                state_size_bytes=11,
            ),
            3,
            seconds=2,
            actor="worker:gpu-a",
        ),
        recorded(
            OperationFailed(operation_id=OP, at=at, reason="orphaned", message="silent", attempt=1),
            4,
            seconds=2,
            actor="orphan-detector",
        ),
        recorded(
            OperationCompleted(operation_id=OP, at=at, attempt=1, result={"x": "y" * 100}),
            5,
            seconds=3,
            actor="worker:gpu-a",
        ),
    ]


def test_replay_keeps_the_state_after_every_event() -> None:
    steps = timeline.replay(history()[:4])
    assert [str(s.state.status) for s in steps] == ["pending", "running", "running", "failed"]
    assert [s.state.version for s in steps] == [1, 2, 3, 4]
    assert timeline.at_version(steps, 3).state.last_sequence == 1


@pytest.mark.parametrize("version", [0, 5, -1])
def test_a_version_outside_the_stream_is_refused(version: int) -> None:
    steps = timeline.replay(history()[:4])
    with pytest.raises(ValidationError, match=f"version {version} is not in the stream of"):
        timeline.at_version(steps, version)


def test_at_a_time_takes_every_event_recorded_by_then() -> None:
    steps = timeline.replay(history()[:4])
    # Versions 3 and 4 share a recorded_at (one batch): a moment includes both.
    assert timeline.at_time(steps, T0 + timedelta(seconds=2)).event.stream_version == 4
    assert timeline.at_time(steps, T0 + timedelta(seconds=1.5)).event.stream_version == 2
    assert timeline.at_time(steps, T0).event.stream_version == 1
    with pytest.raises(ValidationError, match="no event recorded at or before"):
        timeline.at_time(steps, T0 - timedelta(microseconds=1))


def test_key_fields_leave_out_defaults_and_name_who_acted() -> None:
    created, claimed, saved, failed, completed = history()
    assert timeline.key_fields(created) == {"operation_type": "training", "by": "user"}
    assert timeline.key_fields(claimed) == {"worker_id": "gpu-a", "attempt": "1"}
    assert timeline.key_fields(saved)["state"] == '{"epoch":3}'
    assert "artifacts_size_bytes" not in timeline.key_fields(saved)
    assert timeline.key_fields(failed) == {
        "attempt": "1",
        "reason": "orphaned",
        "message": "silent",
        "by": "orphan-detector",
    }
    result = timeline.key_fields(completed)["result"]
    assert len(result) == timeline.FIELD_WIDTH and result.endswith("…")
    assert timeline.worker_of(completed) == "gpu-a" and timeline.attempt_of(completed) == 1
    assert timeline.worker_of(failed) is None


def test_an_unknown_event_type_shows_its_data_as_stored() -> None:
    event = recorded(("SomethingNew", {"b": 2, "a": [1]}), 1, actor="worker:x")
    assert timeline.key_fields(event) == {"a": "[1]", "b": "2"}
    assert timeline.fields_line(timeline.key_fields(event)) == "a=[1] b=2"


def test_the_export_format_round_trips() -> None:
    events = history()
    lines = [json.dumps(timeline.event_json(e)) for e in events]
    parsed = timeline.parse_export(["", *lines, "  "])
    assert [(p.stream_id, p.stream_version) for p in parsed] == [
        (e.stream_id, e.stream_version) for e in events
    ]
    assert [p.event.event_id for p in parsed] == [e.event_id for e in events]
    assert [p.event.data for p in parsed] == [e.data for e in events]
    assert [p.event.metadata for p in parsed] == [e.metadata for e in events]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "no events: the export is empty"),
        (["{"], "line 1: not JSON"),
        (["[1]"], "line 1: an exported event must be a JSON object"),
        (["{}"], "line 1: malformed exported event: 'stream_id' must be a string"),
    ],
)
def test_a_broken_export_names_its_line(lines: list[str], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("[", r"\[")):
        timeline.parse_export(lines)


def test_a_boolean_is_not_a_version() -> None:
    item = timeline.event_json(history()[0]) | {"stream_version": True}
    with pytest.raises(ValidationError, match="'stream_version' must be an integer"):
        timeline.parse_event_json(item)


def test_event_filters() -> None:
    op_event = history()[1]
    worker = recorded(("WorkerRegistered", {}), 1, stream_id="worker-gpu-1")
    worker_10 = recorded(("WorkerRegistered", {}), 1, stream_id="worker-gpu-10")
    events = [op_event, worker, worker_10]

    def kept(**kwargs: Any) -> list[RecordedEvent]:
        return [e for e in events if event_filter(**kwargs)(e)]

    assert kept() == events
    assert kept(stream=OP) == kept(stream=OP.replace("-", "")) == [op_event]
    assert kept(stream="operation") == kept(stream="operation-") == [op_event]
    assert kept(stream="worker") == [worker, worker_10]
    assert kept(stream="worker-gpu-1") == [worker]
    assert kept(types=["WorkerRegistered"], stream="worker-gpu-10") == [worker_10]
    assert kept(types=["OperationClaimed", "Nope"]) == [op_event]


def test_describe_pairs_a_live_row_with_its_rebuild() -> None:
    key = {"operation_id": OP}
    live = {"operation_id": OP, "status": "running", "state": {"status": "running", "n": 1}}
    rebuilt = {"operation_id": OP, "status": "failed", "state": {"status": "failed", "n": 1}}
    lines = describe(
        [
            Difference("operations", "operations", "live only", live, key),
            Difference("operations", "operations", "rebuilt only", rebuilt, key),
            Difference("counts", "stream_type_counts", "live only", {"k": "x"}, {"k": "x"}),
            Difference("counts", "stream_type_counts", "rebuilt only", {"k": "y"}, {"k": "y"}),
        ]
    )
    assert lines == [
        f"operations operation_id={OP}: state.status live running, rebuilt failed;"
        " status live running, rebuilt failed",
        "stream_type_counts k=x: in the live table, but a rebuild from the log has no such row",
        "stream_type_counts k=y: missing from the live table, though the log builds it",
    ]
    many = {f"c{i}": i for i in range(8)}
    [line] = describe(
        [
            Difference("p", "t", "live only", many, {}),
            Difference("p", "t", "rebuilt only", {k: -v for k, v in many.items()}, {}),
        ]
    )
    assert line.startswith("t row: c1 live 1, rebuilt -1; c2 live 2, rebuilt -2")
    assert line.endswith("; and 2 more")
