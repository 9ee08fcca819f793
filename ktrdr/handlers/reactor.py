"""A processor that reacts to events in log order and stores how far it got.

Delivery is at-least-once: a crash after a reaction but before the position is
stored replays that event, so reactions must be idempotent (derived event ids,
refusals of what is already done).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from psycopg_pool import AsyncConnectionPool

from ktrdr.eventlog import EventLog, Position, RecordedEvent
from ktrdr.projections.positions import read_position, store_position

log = logging.getLogger(__name__)

React = Callable[[RecordedEvent], Awaitable[None]]


class Reactor:
    def __init__(
        self,
        name: str,
        pool: AsyncConnectionPool[Any],
        event_log: EventLog,
        react: React,
        *,
        batch_size: int = 500,
    ) -> None:
        self.name = name
        self._pool = pool
        self._log = event_log
        self._react = react
        self._batch = batch_size

    async def tick(self) -> int:
        """React to the next batch of events; returns how many were handled."""
        position = await self._position()
        events = await self._log.read_all(position, self._batch)
        for event in events:
            await self._react(event)
        if events:
            await self._store(events[-1].position)
        return len(events)

    async def _position(self) -> Position:
        async with self._pool.connection() as conn:
            return await read_position(conn, self.name, create=True)

    async def _store(self, position: Position) -> None:
        async with self._pool.connection() as conn:
            await store_position(conn, self.name, position)
