"""Events as stored: ``(event_type, schema_version, data)``, and back.

``event_type`` is the event's class name. A stored event of an older schema
version is upcast on read, one version at a time, and never rewritten in place:
to change an event's shape, bump its entry in ``SCHEMA_VERSIONS`` and register an
upcaster from the previous version in ``UPCASTERS``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ktrdr.domain.errors import UnknownEventType
from ktrdr.domain.maintenance import CheckpointCleanupRan
from ktrdr.domain.operation_events import (
    CancellationRequested,
    CheckpointDeleted,
    CheckpointSaved,
    CheckpointSaveFailed,
    ClaimAcknowledged,
    ClaimReleased,
    MetricsRecorded,
    OperationCancelled,
    OperationClaimed,
    OperationCompleted,
    OperationCreated,
    OperationEvent,
    OperationFailed,
    ProgressReported,
    ResumeRequested,
    RetryScheduled,
)
from ktrdr.domain.tokens import TokenEvent, TokenIssued, TokenRevoked, WorkerIdBound
from ktrdr.domain.worker import (
    HeartbeatMissed,
    WorkerDeregistered,
    WorkerEvent,
    WorkerRegistered,
)

Event = OperationEvent | WorkerEvent | CheckpointCleanupRan | TokenEvent

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns the data of version N into the data of version N + 1 (returns a new dict)."""

SCHEMA_VERSION = 1

EVENT_TYPES: Mapping[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        OperationCreated,
        OperationClaimed,
        ClaimAcknowledged,
        ClaimReleased,
        ProgressReported,
        MetricsRecorded,
        CheckpointSaved,
        CheckpointSaveFailed,
        CancellationRequested,
        OperationCancelled,
        OperationFailed,
        OperationCompleted,
        ResumeRequested,
        RetryScheduled,
        CheckpointDeleted,
        WorkerRegistered,
        HeartbeatMissed,
        WorkerDeregistered,
        CheckpointCleanupRan,
        TokenIssued,
        TokenRevoked,
        WorkerIdBound,
    )
}

SCHEMA_VERSIONS: Mapping[str, int] = {event_type: SCHEMA_VERSION for event_type in EVENT_TYPES}
"""The version each event type is written at today."""

UPCASTERS: Mapping[tuple[str, int], Upcaster] = {}
"""(event_type, from_version) -> the upcaster to from_version + 1."""


def to_payload(event: Event) -> tuple[str, int, dict[str, Any]]:
    """The stored form of an event: its type, schema version and JSON-safe data."""
    event_type = type(event).__name__
    return event_type, SCHEMA_VERSIONS[event_type], event.model_dump(mode="json")


def from_payload(
    event_type: str,
    schema_version: int,
    data: Mapping[str, Any],
    upcasters: Mapping[tuple[str, int], Upcaster] = UPCASTERS,
) -> Event:
    """The event a stored payload describes, upcast to today's schema first.

    Raises UnknownEventType for a type this code does not know or cannot upcast,
    and ValidationError for data that does not fit the event.
    """
    cls = EVENT_TYPES.get(event_type)
    if cls is None:
        raise UnknownEventType(event_type, schema_version)
    return cls.model_validate(upcast(event_type, schema_version, data, upcasters))


def upcast(
    event_type: str,
    schema_version: int,
    data: Mapping[str, Any],
    upcasters: Mapping[tuple[str, int], Upcaster] = UPCASTERS,
) -> dict[str, Any]:
    """``data`` of ``schema_version`` brought to today's version of ``event_type``."""
    current = SCHEMA_VERSIONS.get(event_type)
    if current is None or schema_version > current:
        raise UnknownEventType(event_type, schema_version)
    upcast_data = dict(data)
    for version in range(schema_version, current):
        step = upcasters.get((event_type, version))
        if step is None:
            raise UnknownEventType(event_type, schema_version)
        upcast_data = step(upcast_data)
    return upcast_data


def is_known_event_type(event_type: str) -> bool:
    return event_type in EVENT_TYPES
