"""The command bus: load the aggregate, decide, append at the expected version.

Commands fail loudly: a refusal (DomainError) reaches the caller unchanged. A
concurrent write to the same stream is retried with fresh state a few times,
since most commands (progress, claims, resumes) stay valid or become a clear
refusal on the newer state.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ktrdr.domain import (
    ClaimReleased,
    OperationCommand,
    OperationCreated,
    OperationEvent,
    ResumeRequested,
    WorkerCommand,
    WorkerEvent,
    decide,
    decide_worker,
    operation_stream,
    to_payload,
    worker_stream,
)
from ktrdr.domain.operation import OperationState, fold
from ktrdr.domain.tokens import TokenEvent
from ktrdr.domain.worker import WorkerState, fold_worker
from ktrdr.eventlog import NO_STREAM, ConcurrencyError, EventLog, Expected, NewEvent
from ktrdr.handlers.principal import current_principal
from ktrdr.handlers.states import States

RETRIES = 5
Clock = Callable[[], datetime]
AnnounceWork = Callable[[str], None]
"""Told the type of an operation that just became claimable, once its append committed."""
_CLAIMABLE = (OperationCreated, ResumeRequested, ClaimReleased)


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_events(
    events: list[OperationEvent] | list[WorkerEvent] | list[TokenEvent],
    *,
    actor: str,
    correlation_id: str | None,
    causation_id: str | None,
    event_ids: list[uuid.UUID] | None = None,
) -> list[NewEvent]:
    out = []
    principal = current_principal.get()
    for i, event in enumerate(events):
        event_type, schema_version, data = to_payload(event)
        metadata: dict[str, Any] = {"actor": actor}
        if principal is not None:
            metadata["principal"] = principal.name
        if correlation_id:
            metadata["correlation_id"] = correlation_id
        if causation_id:
            metadata["causation_id"] = causation_id
        attempt = getattr(event, "attempt", None)
        if attempt is not None:
            metadata["attempt"] = attempt
        event_id = event_ids[i] if event_ids else uuid.uuid4()
        out.append(NewEvent(event_type, data, schema_version, metadata, event_id))
    return out


def _expected(version: int | None) -> Expected:
    return NO_STREAM if version is None else version


class CommandBus:
    def __init__(
        self,
        event_log: EventLog,
        states: States,
        clock: Clock = utc_now,
        *,
        announce_work: AnnounceWork,
    ) -> None:
        self.event_log = event_log
        self.states = states
        self.clock = clock
        self._announce_work = announce_work

    async def operation(
        self,
        command: OperationCommand,
        *,
        actor: str,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        idempotency_key: uuid.UUID | None = None,
    ) -> tuple[OperationState | None, list[OperationEvent]]:
        """Handle an operation command; returns the state after it and the events it added.

        ``actor`` names who asked: a user, a worker (``worker:<id>``) or the processor
        that acted on its own (``orphan-detector``, ``checkpoint-retention``…).

        With ``idempotency_key`` the events get ids derived from it, so a retried
        command (a processor replaying an event) appends nothing twice.
        """
        conflict: ConcurrencyError | None = None
        for _ in range(RETRIES):
            state = await self.states.operation(command.operation_id)
            events = decide(state, command)
            if not events:
                return state, []
            ids = _derived_ids(idempotency_key, len(events))
            batch = new_events(
                events,
                actor=actor,
                correlation_id=correlation_id or command.operation_id,
                causation_id=causation_id,
                event_ids=ids,
            )
            try:
                result = await self.event_log.append(
                    operation_stream(command.operation_id),
                    batch,
                    _expected(state.version if state else None),
                )
            except ConcurrencyError as exc:
                conflict = exc
                continue
            if result.duplicate:
                return await self.states.operation(command.operation_id), []
            after = fold(events, state)
            if after is not None and any(isinstance(e, _CLAIMABLE) for e in events):
                self._announce_work(str(after.operation_type))
            return after, events
        assert conflict is not None
        raise conflict

    async def worker(
        self, command: WorkerCommand, *, actor: str, causation_id: str | None = None
    ) -> tuple[WorkerState | None, list[WorkerEvent]]:
        conflict: ConcurrencyError | None = None
        for _ in range(RETRIES):
            state = await self.states.worker(command.worker_id)
            events = decide_worker(state, command)
            if not events:
                return state, []
            batch = new_events(events, actor=actor, correlation_id=None, causation_id=causation_id)
            try:
                await self.event_log.append(
                    worker_stream(command.worker_id),
                    batch,
                    _expected(state.version if state else None),
                )
            except ConcurrencyError as exc:
                conflict = exc
                continue
            return fold_worker(events, state), events
        assert conflict is not None
        raise conflict


def _derived_ids(key: uuid.UUID | None, count: int) -> list[uuid.UUID] | None:
    if key is None:
        return None
    return [uuid.uuid5(key, str(i)) for i in range(count)]
