"""Event counts per stream type (inline) and per event type (catch-up).

Small on purpose: they carry the projection machinery end to end until the
operation read models arrive, and stay as cheap health figures afterwards.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection, sql

from ktrdr.eventlog import RecordedEvent
from ktrdr.eventlog.model import stream_type
from ktrdr.projections.base import Mode, Tables

_UPSERT_COUNTS = sql.SQL(
    "INSERT INTO {table} ({key}, event_count)"
    " SELECT * FROM unnest(%(keys)s::text[], %(counts)s::bigint[])"
    " ON CONFLICT ({key}) DO UPDATE SET event_count = {table}.event_count + EXCLUDED.event_count"
)


async def _add_counts(
    conn: AsyncConnection[Any], table: sql.Identifier, key: str, counts: Counter[str]
) -> None:
    # Sorted keys: concurrent appends lock the rows in one order, so they cannot deadlock.
    keys = sorted(counts)
    query = _UPSERT_COUNTS.format(table=table, key=sql.Identifier(key))
    await conn.execute(query, {"keys": keys, "counts": [counts[k] for k in keys]})


class StreamTypeCounts:
    name = "stream_type_counts"
    mode = Mode.INLINE
    tables: tuple[str, ...] = ("stream_type_counts",)

    async def apply(
        self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent], tables: Tables
    ) -> None:
        counts = Counter(stream_type(e.stream_id) for e in events)
        await _add_counts(conn, tables["stream_type_counts"], "stream_type", counts)


class EventTypeCounts:
    name = "event_type_counts"
    mode = Mode.CATCH_UP
    tables: tuple[str, ...] = ("event_type_counts",)

    async def apply(
        self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent], tables: Tables
    ) -> None:
        counts = Counter(e.event_type for e in events)
        await _add_counts(conn, tables["event_type_counts"], "event_type", counts)
