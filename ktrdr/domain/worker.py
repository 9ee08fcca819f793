"""Workers: the events of a ``worker-<id>`` stream, their commands, state and rules.

Heartbeats are not events (they update a liveness table); a missed heartbeat is.
``current_operation_id``/``current_attempt`` are what the worker last reported when
it registered; claims are recorded on the operation's stream, not here.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Self, assert_never

from pydantic import NonNegativeInt, PositiveInt, StringConstraints, model_validator

from ktrdr.domain.errors import CorruptHistory, WorkerNotFound
from ktrdr.domain.values import Message, OperationId, UtcDatetime, WorkerId

_Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class WorkerStatus(enum.StrEnum):
    REGISTERED = "registered"
    MISSING = "missing"
    """It missed its heartbeat deadline; it may still come back and re-register."""
    DEREGISTERED = "deregistered"


def _check_current_operation(operation_id: str | None, attempt: int | None) -> None:
    if (operation_id is None) != (attempt is None):
        raise ValueError("current_operation_id and current_attempt go together")


class GpuInfo(Message):
    name: Annotated[str, StringConstraints(max_length=200)]
    memory_bytes: NonNegativeInt


class CudaInfo(Message):
    """The CUDA devices a worker found (it lists the ``cuda`` capability with them)."""

    device_count: PositiveInt
    devices: tuple[GpuInfo, ...] = ()


class _WorkerMessage(Message):
    worker_id: WorkerId
    at: UtcDatetime


class WorkerRegistered(_WorkerMessage):
    worker_type: _Name
    host: str
    pid: NonNegativeInt
    capabilities: tuple[str, ...] = ()
    cuda: CudaInfo | None = None
    version: str
    """The worker's software version."""
    current_operation_id: OperationId | None = None
    current_attempt: PositiveInt | None = None

    @model_validator(mode="after")
    def _operation_with_its_attempt(self) -> Self:
        _check_current_operation(self.current_operation_id, self.current_attempt)
        return self


class HeartbeatMissed(_WorkerMessage):
    last_heartbeat_at: UtcDatetime | None = None
    """None when the worker never sent a heartbeat (judged from its registration)."""
    operation_id: OperationId | None = None
    attempt: PositiveInt | None = None


class WorkerDeregistered(_WorkerMessage):
    reason: str


class RegisterWorker(_WorkerMessage):
    """Register, or register again (after a backend restart or a network loss)."""

    worker_type: _Name
    host: str
    pid: NonNegativeInt
    capabilities: tuple[str, ...] = ()
    cuda: CudaInfo | None = None
    version: str
    """The worker's software version."""
    current_operation_id: OperationId | None = None
    current_attempt: PositiveInt | None = None

    @model_validator(mode="after")
    def _operation_with_its_attempt(self) -> Self:
        _check_current_operation(self.current_operation_id, self.current_attempt)
        return self


class RecordMissedHeartbeat(_WorkerMessage):
    last_heartbeat_at: UtcDatetime | None = None
    operation_id: OperationId | None = None
    attempt: PositiveInt | None = None


class DeregisterWorker(_WorkerMessage):
    reason: str = "shutdown"


WorkerEvent = WorkerRegistered | HeartbeatMissed | WorkerDeregistered
WorkerCommand = RegisterWorker | RecordMissedHeartbeat | DeregisterWorker


@dataclass(frozen=True, slots=True)
class WorkerState:
    worker_id: str
    worker_type: str
    host: str
    pid: int
    capabilities: tuple[str, ...]
    software_version: str
    status: WorkerStatus
    registered_at: datetime
    """The latest registration's time."""
    version: int
    """The stream version folded so far (not the software version)."""
    current_operation_id: str | None = None
    current_attempt: int | None = None
    last_heartbeat_at: datetime | None = None
    missed_at: datetime | None = None
    deregistered_at: datetime | None = None
    deregistration_reason: str | None = None
    cuda: CudaInfo | None = None


def decide_worker(state: WorkerState | None, command: WorkerCommand) -> list[WorkerEvent]:
    match command:
        case RegisterWorker():
            return [WorkerRegistered(**command.model_dump())]
        case RecordMissedHeartbeat():
            if state is None:
                raise WorkerNotFound(command.worker_id)
            if state.status != WorkerStatus.REGISTERED:
                return []  # already judged: the detector may judge it again in a race
            return [HeartbeatMissed(**command.model_dump())]
        case DeregisterWorker():
            if state is None:
                raise WorkerNotFound(command.worker_id)
            if state.status == WorkerStatus.DEREGISTERED:
                return []
            return [WorkerDeregistered(**command.model_dump())]
        case _:
            assert_never(command)


def evolve_worker(state: WorkerState | None, event: WorkerEvent) -> WorkerState:
    if isinstance(event, WorkerRegistered):
        return _registered(event, 1 if state is None else state.version + 1)
    if state is None:
        raise CorruptHistory(
            f"{type(event).__name__} of worker {event.worker_id} before it registered"
        )
    version = state.version + 1
    match event:
        case HeartbeatMissed():
            return dataclasses.replace(
                state,
                status=WorkerStatus.MISSING,
                missed_at=event.at,
                last_heartbeat_at=event.last_heartbeat_at or state.last_heartbeat_at,
                version=version,
            )
        case WorkerDeregistered():
            return dataclasses.replace(
                state,
                status=WorkerStatus.DEREGISTERED,
                deregistered_at=event.at,
                deregistration_reason=event.reason,
                current_operation_id=None,
                current_attempt=None,
                version=version,
            )
        case _:
            assert_never(event)


def fold_worker(
    events: Iterable[WorkerEvent], state: WorkerState | None = None
) -> WorkerState | None:
    for event in events:
        state = evolve_worker(state, event)
    return state


def _registered(event: WorkerRegistered, version: int) -> WorkerState:
    return WorkerState(
        worker_id=event.worker_id,
        worker_type=event.worker_type,
        host=event.host,
        pid=event.pid,
        capabilities=event.capabilities,
        software_version=event.version,
        status=WorkerStatus.REGISTERED,
        registered_at=event.at,
        version=version,
        current_operation_id=event.current_operation_id,
        current_attempt=event.current_attempt,
        cuda=event.cuda,
    )
