"""What a projection is: a name, the tables it owns, and how events change them."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from psycopg import AsyncConnection, sql

from ktrdr.eventlog import RecordedEvent

Tables = Mapping[str, sql.Identifier]


class Mode(enum.Enum):
    INLINE = "inline"
    """Applied in the append's transaction: readers see their own writes."""
    CATCH_UP = "catch_up"
    """Applied by a runner that stores its position in the same transaction as its output."""


class Projection(Protocol):
    """A read model built only from events.

    ``apply`` writes into ``tables[name]`` for each name in ``tables`` rather than
    into a fixed table, so that rebuild and verify can replay into fresh tables.
    Per stream, events arrive in version order; across streams the order may
    differ between live and replay, so apply must not depend on it.
    """

    name: str
    mode: Mode
    tables: tuple[str, ...]

    async def apply(
        self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent], tables: Tables
    ) -> None: ...


def live_tables(projection: Projection) -> Tables:
    return {name: sql.Identifier(name) for name in projection.tables}


class BoundInline:
    """An inline projection bound to its live tables, as the event log applies it."""

    def __init__(self, projection: Projection) -> None:
        self.name = projection.name
        self._projection = projection
        self._tables = live_tables(projection)

    async def apply(self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None:
        await self._projection.apply(conn, events, self._tables)
