"""What happened to an operation, and when: its stream folded event by event (pure).

`ktrdr events …`, ``GET /operations/{id}?as_of_version=N`` and ``scripts/`` share
this module, so each answers with the domain's own ``evolve`` and the API's own
JSON (``views.state_json``), and reads and writes one JSON form of a stored event.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from ktrdr.domain import UnknownEventType, ValidationError, upcast
from ktrdr.domain.operation import OperationState, evolve
from ktrdr.eventlog import NewEvent, RecordedEvent
from ktrdr.projections.operations import domain_event

FIELD_WIDTH = 60
"""Longest rendering of one field's value (params, results, checkpoint states)."""

_SHOWN: Mapping[str, tuple[str, ...]] = {
    "OperationCreated": ("operation_type", "params", "parent_operation_id", "keep_checkpoints"),
    "OperationClaimed": ("worker_id", "attempt"),
    "ProgressReported": ("worker_id", "attempt", "percentage", "current_step", "message"),
    "CheckpointSaved": (
        "worker_id",
        "attempt",
        "sequence",
        "checkpoint_type",
        "state",
        "artifacts_size_bytes",
    ),
    "CancellationRequested": ("reason",),
    "OperationCancelled": ("attempt", "reason"),
    "OperationFailed": ("attempt", "reason", "message"),
    "OperationCompleted": ("attempt", "result"),
    "ResumeRequested": (
        "from_sequence",
        "checkpoint_type",
        "previous_status",
        "device",
        "allow_device_change",
    ),
    "CheckpointDeleted": ("sequences", "reason"),
    "WorkerRegistered": (
        "worker_type",
        "host",
        "pid",
        "version",
        "current_operation_id",
        "current_attempt",
    ),
    "HeartbeatMissed": ("last_heartbeat_at", "operation_id", "attempt"),
    "WorkerDeregistered": ("reason",),
}
_HIDDEN_BY_DEFAULT = {
    "keep_checkpoints": False,
    "artifacts_size_bytes": 0,
    "device": None,
    "allow_device_change": False,
}
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Step:
    """One event of an operation's stream and the state right after it."""

    event: RecordedEvent
    state: OperationState


def replay(events: Iterable[RecordedEvent]) -> list[Step]:
    """Fold one operation stream with the domain's ``evolve``, keeping every state."""
    steps: list[Step] = []
    state: OperationState | None = None
    for recorded in events:
        state = evolve(state, domain_event(recorded))
        steps.append(Step(recorded, state))
    return steps


def at_version(steps: Sequence[Step], version: int) -> Step:
    """The step whose event has stream version ``version``."""
    for step in steps:
        if step.event.stream_version == version:
            return step
    last = steps[-1]
    raise ValidationError(
        f"version {version} is not in the stream of operation {last.state.operation_id},"
        f" which has versions 1 to {last.event.stream_version}"
    )


def at_time(steps: Sequence[Step], moment: datetime) -> Step:
    """The step of the last event recorded at or before ``moment`` (an aware datetime)."""
    earlier = [step for step in steps if step.event.recorded_at <= moment]
    if not earlier:
        first = steps[0]
        raise ValidationError(
            f"operation {first.state.operation_id} has no event recorded at or before"
            f" {stamp(moment)}; its first was recorded at {stamp(first.event.recorded_at)}"
        )
    return earlier[-1]


def stamp(moment: datetime) -> str:
    """A moment in UTC to the millisecond: ``2025-06-01T22:35:40.123Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def data_of(event: RecordedEvent) -> dict[str, Any]:
    """The event's data upcast to today's schema, or as stored when this code cannot."""
    try:
        return upcast(event.event_type, event.schema_version, event.data)
    except UnknownEventType:
        return dict(event.data)


def attempt_of(event: RecordedEvent) -> int | None:
    attempt = event.data.get("attempt", event.metadata.get("attempt"))
    return attempt if isinstance(attempt, int) else None


def worker_of(event: RecordedEvent) -> str | None:
    """The worker that wrote the event, or that it names (claims, checkpoints)."""
    worker = event.data.get("worker_id")
    if isinstance(worker, str):
        return worker
    actor = str(event.metadata.get("actor", ""))
    return actor.removeprefix("worker:") if actor.startswith("worker:") else None


def key_fields(event: RecordedEvent) -> dict[str, str]:
    """The fields that tell this event apart, rendered short, in a stable order.

    Unset and default values are left out; ``by`` names a non-worker actor
    (the user and the token's name, the orphan detector, cleanup).
    """
    data = data_of(event)
    names = _SHOWN.get(event.event_type, tuple(sorted(data)))
    shown = {name: render(data[name]) for name in names if _worth_showing(name, data.get(name))}
    actor = event.metadata.get("actor")
    principal = event.metadata.get("principal")
    if isinstance(actor, str) and actor and not actor.startswith("worker:"):
        # The token a request came with: "who cancelled my run" is a name, not "user".
        shown["by"] = f"{actor}:{principal}" if principal else actor
    return shown


def _worth_showing(name: str, value: Any) -> bool:
    if value is None or value in ("", {}, []):
        return False
    return name not in _HIDDEN_BY_DEFAULT or value != _HIDDEN_BY_DEFAULT[name]


def render(value: Any, width: int = FIELD_WIDTH) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, float):
        text = f"{value:g}"
    else:
        text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    return text if len(text) <= width else text[: width - 1] + "…"


def fields_line(fields: Mapping[str, str]) -> str:
    return " ".join(f"{name}={value}" for name, value in fields.items())


def event_json(event: RecordedEvent) -> dict[str, Any]:
    """A stored event as one JSON object: the export format and `--json` output."""
    return {
        "global_position": event.global_position,
        "transaction_id": event.transaction_id,
        "stream_id": event.stream_id,
        "stream_version": event.stream_version,
        "event_id": str(event.event_id),
        "event_type": event.event_type,
        "schema_version": event.schema_version,
        "data": event.data,
        "metadata": event.metadata,
        "recorded_at": event.recorded_at.astimezone(UTC).isoformat(),
    }


@dataclass(frozen=True, slots=True)
class ExportedEvent:
    """An event read back from ``event_json``: what to append again, and where."""

    stream_id: str
    stream_version: int
    event: NewEvent


def parse_event_json(item: Any) -> ExportedEvent:
    """The inverse of ``event_json`` for appending; raises ValidationError on bad input."""
    if not isinstance(item, dict):
        raise ValidationError("an exported event must be a JSON object")
    try:
        return ExportedEvent(
            stream_id=_typed(item, "stream_id", str),
            stream_version=_typed(item, "stream_version", int),
            event=NewEvent(
                event_type=_typed(item, "event_type", str),
                data=_typed(item, "data", dict),
                schema_version=_typed(item, "schema_version", int),
                metadata=_typed(item, "metadata", dict),
                event_id=uuid.UUID(_typed(item, "event_id", str)),
            ),
        )
    except ValueError as exc:
        raise ValidationError(f"malformed exported event: {exc}") from None


def parse_export(lines: Iterable[str]) -> list[ExportedEvent]:
    """Events from JSON lines of ``event_json`` objects (blank lines are skipped)."""
    events = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            events.append(parse_event_json(json.loads(line)))
        except (ValueError, ValidationError) as exc:
            raise ValidationError(f"line {number}: {_first_line(exc)}") from None
    if not events:
        raise ValidationError("no events: the export is empty")
    return events


def _first_line(exc: Exception) -> str:
    detail = exc.detail if isinstance(exc, ValidationError) else f"not JSON ({exc})"
    return detail.splitlines()[0]


_KINDS = {str: "a string", int: "an integer", dict: "an object"}


def _typed(item: dict[str, Any], name: str, kind: type[T]) -> T:
    value = item.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"{name!r} must be {_KINDS.get(kind, kind.__name__)}")
    return value
