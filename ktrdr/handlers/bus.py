"""The command bus: load the aggregate, decide, append at the expected version.

Commands fail loudly: a refusal (DomainError) reaches the caller unchanged. A
concurrent write to the same stream is retried with fresh state a few times,
since most commands (progress, claims, resumes) stay valid or become a clear
refusal on the newer state.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

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


class _Versioned(Protocol):
    @property
    def version(self) -> int: ...


S = TypeVar("S", bound=_Versioned)
E = TypeVar("E", OperationEvent, WorkerEvent)


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
        operation_id = command.operation_id
        after, events = await self._decide_and_append(
            operation_stream(operation_id),
            lambda: self.states.operation(operation_id),
            lambda state: decide(state, command),
            fold,
            actor=actor,
            correlation_id=correlation_id or operation_id,
            causation_id=causation_id,
            idempotency_key=idempotency_key,
        )
        if after is not None and any(isinstance(e, _CLAIMABLE) for e in events):
            self._announce_work(str(after.operation_type))
        return after, events

    async def worker(
        self, command: WorkerCommand, *, actor: str, causation_id: str | None = None
    ) -> tuple[WorkerState | None, list[WorkerEvent]]:
        return await self._decide_and_append(
            worker_stream(command.worker_id),
            lambda: self.states.worker(command.worker_id),
            lambda state: decide_worker(state, command),
            fold_worker,
            actor=actor,
            correlation_id=None,
            causation_id=causation_id,
        )

    async def _decide_and_append(
        self,
        stream: str,
        load: Callable[[], Awaitable[S | None]],
        decide_on: Callable[[S | None], list[E]],
        fold_on: Callable[[list[E], S | None], S | None],
        *,
        actor: str,
        correlation_id: str | None,
        causation_id: str | None,
        idempotency_key: uuid.UUID | None = None,
    ) -> tuple[S | None, list[E]]:
        """One command on one stream: load, decide, append at the version it decided on; a
        concurrent write is retried on fresh state, a repeat (same derived ids) adds nothing."""
        conflict: ConcurrencyError | None = None
        for _ in range(RETRIES):
            state = await load()
            events = decide_on(state)
            if not events:
                return state, []
            batch = new_events(
                events,
                actor=actor,
                correlation_id=correlation_id,
                causation_id=causation_id,
                event_ids=_derived_ids(idempotency_key, len(events)),
            )
            try:
                result = await self.event_log.append(
                    stream, batch, _expected(state.version if state else None)
                )
            except ConcurrencyError as exc:
                conflict = exc
                continue
            if result.duplicate:
                return await load(), []
            return fold_on(events, state), events
        assert conflict is not None
        raise conflict


def _derived_ids(key: uuid.UUID | None, count: int) -> list[uuid.UUID] | None:
    if key is None:
        return None
    return [uuid.uuid5(key, str(i)) for i in range(count)]
