"""The agent research process manager: advances research operations on their children's events.

Each tick reads the event log after the manager's stored position (a row of
``projection_positions`` named ``agent_research_manager``), finds the research
operations the new events concern (their own events and their children's), and
advances each one: it asks the domain for the next reaction and runs it, until
there is none. Then it stores the new position. Delivery is at-least-once — a crash
after a reaction but before the position is stored replays those events — and that
is harmless: every reaction is decided from the current state, and its event ids
derive from that state, so nothing is appended twice.

One instance is active across backend replicas (it runs as a SingletonProcessor,
behind an advisory lock). It is the research operations' worker, so it keeps its
liveness row fresh on every tick (the orphan detector judges research like any
other running operation), and now and then it sweeps every live research, which
is also how a restarted backend picks up where the last one stopped.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Sequence
from typing import Any, LiteralString

import psycopg
from psycopg_pool import AsyncConnectionPool

from ktrdr import __version__
from ktrdr.domain import (
    MANAGER_ID,
    ClaimOperation,
    DomainError,
    OperationType,
    RegisterWorker,
    WorkerStatus,
    next_reaction,
    research_checkpoint,
)
from ktrdr.domain.operation import OperationState
from ktrdr.eventlog import ConcurrencyError, EventLog, Position, RecordedEvent
from ktrdr.handlers.bus import CommandBus
from ktrdr.handlers.liveness import keep_alive
from ktrdr.projections import views
from ktrdr.projections.operations import OPERATION_PREFIX
from ktrdr.projections.positions import read_position, store_position

log = logging.getLogger(__name__)

NAME = "agent_research_manager"
SWEEP_SECONDS = 5.0
"""How often every live research is looked at, whatever the log says."""
BATCHES_PER_TICK = 20
"""A long backlog is read over several ticks; liveness is touched before every batch."""
MAX_REACTIONS = 25
"""Reactions in a row for one research before the next tick takes over (an event needs a few)."""

_RESEARCH_OF: LiteralString = """
SELECT DISTINCT CASE WHEN o.operation_type = 'agent_research' THEN o.operation_id
                     ELSE o.parent_operation_id END::text
FROM operations o LEFT JOIN operations p ON p.operation_id = o.parent_operation_id
WHERE o.operation_id = ANY(%(ids)s::uuid[])
  AND (o.operation_type = 'agent_research' OR p.operation_type = 'agent_research')
"""
_LIVE_RESEARCH: LiteralString = """
SELECT operation_id::text FROM operations
WHERE operation_type = 'agent_research' AND status IN ('pending', 'resuming', 'running')
ORDER BY created_at, operation_id
"""
_CHILDREN: LiteralString = """
SELECT operation_id::text FROM operations WHERE parent_operation_id = %(parent)s
ORDER BY created_at, operation_id
"""


class AgentResearchManager:
    def __init__(
        self,
        bus: CommandBus,
        pool: AsyncConnectionPool[Any],
        event_log: EventLog,
        *,
        sweep_interval: float = SWEEP_SECONDS,
        batch_size: int = 500,
    ) -> None:
        self._bus = bus
        self._pool = pool
        self._log = event_log
        self._sweep_interval = sweep_interval
        self._batch = batch_size
        self._swept_at: float | None = None
        self._position: Position | None = None
        """Cached: only this instance moves it while it holds the lock; a stale one replays."""

    async def tick(self) -> int:
        """Keep alive, react to the next batch of events, sweep when due.

        Returns how many events it read.
        """
        handled = 0
        for _ in range(BATCHES_PER_TICK):
            await keep_alive(self._pool, MANAGER_ID, self._bus.clock())
            read = await self._react()
            handled += read
            if read < self._batch:
                break
        now = time.monotonic()
        if self._swept_at is None or now - self._swept_at >= self._sweep_interval:
            self._swept_at = now
            await self.sweep()
        return handled

    async def sweep(self) -> None:
        """Advance every research that is not finished."""
        live = await self._ids(_LIVE_RESEARCH)
        if live:
            await self._register()  # again, if the orphan detector wrote it off meanwhile
        for research_id in live:
            await self._advance_isolated(research_id)

    async def advance(self, research_id: str) -> int:
        """Run reactions until the research waits; returns how many changed something."""
        for done in range(MAX_REACTIONS):
            research = await self._bus.states.operation(research_id)
            if research is None or research.operation_type != OperationType.AGENT_RESEARCH:
                return done
            reaction = next_reaction(
                research,
                await self._checkpoint_state(research),
                await self._children(research_id),
                self._bus.clock(),
            )
            if reaction is None:
                return done
            if isinstance(reaction.command, ClaimOperation):
                await self._register()
            try:
                _, events = await self._bus.operation(
                    reaction.command,
                    actor=MANAGER_ID,
                    correlation_id=research_id,
                    idempotency_key=reaction.key,
                )
            except (DomainError, ConcurrencyError) as refused:
                # A rival replica (during a lock handover) or a user moved first; what is
                # left to do is decided again from the newer state on the next tick.
                log.info("research %s: %s; looking again next tick", research_id, refused)
                return done
            if not events:
                return done  # a throttled progress report, or a rival's duplicate
        log.warning("research %s is still moving after %d reactions", research_id, MAX_REACTIONS)
        return MAX_REACTIONS

    async def _react(self) -> int:
        if self._position is None:
            self._position = await self._stored_position()
        events = await self._log.read_all(self._position, self._batch)
        if not events:
            return 0
        for research_id in await self._research_of(events):
            await self._advance_isolated(research_id)
        await self._store(events[-1].position)
        self._position = events[-1].position
        return len(events)

    async def _advance_isolated(self, research_id: str) -> None:
        # One research that cannot move (a refusal, a bug) must not hold up the others;
        # the sweep tries it again. A lost connection ends the tick.
        try:
            await self.advance(research_id)
        except psycopg.OperationalError:
            raise
        except Exception:
            log.exception("research %s could not advance; the next sweep retries", research_id)

    async def _register(self) -> None:
        """Be a registered worker while holding research, so the orphan detector can judge it."""
        worker = await self._bus.states.worker(MANAGER_ID)
        if worker is not None and worker.status == WorkerStatus.REGISTERED:
            return
        register = RegisterWorker(
            worker_id=MANAGER_ID,
            at=self._bus.clock(),
            worker_type=str(OperationType.AGENT_RESEARCH),
            host=socket.gethostname(),
            pid=os.getpid(),
            version=__version__,
        )
        await self._bus.worker(register, actor=MANAGER_ID)

    async def _checkpoint_state(self, research: OperationState) -> dict[str, Any] | None:
        sequence = research_checkpoint(research)
        if sequence is None:
            return None
        async with self._pool.connection() as conn:
            states = await views.checkpoint_states(conn, research.operation_id, [sequence])
        return states.get(sequence)

    async def _children(self, research_id: str) -> list[OperationState]:
        children = []
        for child_id in await self._ids(_CHILDREN, parent=research_id):
            child = await self._bus.states.operation(child_id)
            if child is not None:
                children.append(child)
        return children

    async def _research_of(self, events: Sequence[RecordedEvent]) -> list[str]:
        ids = {
            e.stream_id.removeprefix(OPERATION_PREFIX)
            for e in events
            if e.stream_id.startswith(OPERATION_PREFIX)
        }
        return await self._ids(_RESEARCH_OF, ids=sorted(ids)) if ids else []

    async def _ids(self, query: LiteralString, **params: Any) -> list[str]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(query, params)
            return [row[0] for row in await cur.fetchall()]

    async def _stored_position(self) -> Position:
        async with self._pool.connection() as conn:
            return await read_position(conn, NAME, create=True)

    async def _store(self, position: Position) -> None:
        async with self._pool.connection() as conn:
            await store_position(conn, NAME, position)
