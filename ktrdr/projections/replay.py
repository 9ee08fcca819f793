"""Rebuild read models from position zero, and verify that a rebuild equals the live tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, LiteralString

from psycopg import AsyncConnection, IsolationLevel, sql

from ktrdr.eventlog import START, Position
from ktrdr.eventlog import queries as log_queries
from ktrdr.eventlog.postgres import row_to_event
from ktrdr.projections import queries
from ktrdr.projections.base import Mode, Projection, Tables
from ktrdr.projections.positions import read_position, store_position
from ktrdr.projections.timeline import render

REPLAY_BATCH = 5000
_LAST = Position(2**63 - 1, 2**63 - 1)


@dataclass(frozen=True)
class Difference:
    projection: str
    table: str
    side: str
    """"live only" or "rebuilt only": the row is on that side and not on the other."""
    row: dict[str, Any]
    key: dict[str, Any] = field(default_factory=dict)
    """The row's primary key columns, to pair a live row with its rebuilt twin."""


@dataclass
class ReplayReport:
    events_replayed: dict[str, int] = field(default_factory=dict)
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences


async def _replay(
    conn: AsyncConnection[Any], projection: Projection, tables: Tables, until: Position
) -> int:
    after, replayed = START, 0
    while True:
        cur = await conn.execute(
            log_queries.READ_RANGE,
            {
                "tx": str(after.transaction_id),
                "pos": after.global_position,
                "until_tx": str(until.transaction_id),
                "until_pos": until.global_position,
                "limit": REPLAY_BATCH,
            },
        )
        events = [row_to_event(r) for r in await cur.fetchall()]
        if not events:
            return replayed
        await projection.apply(conn, events, tables)
        replayed += len(events)
        after = events[-1].position


async def _shadow(conn: AsyncConnection[Any], projection: Projection) -> Tables:
    tables = {}
    for name in projection.tables:
        shadow = sql.Identifier(f"{name}__replay")
        await conn.execute(queries.CREATE_SHADOW.format(shadow=shadow, live=sql.Identifier(name)))
        tables[name] = shadow
    return tables


async def rebuild(conn: AsyncConnection[Any], projections: Sequence[Projection]) -> ReplayReport:
    """Replay the log into fresh tables and make them the live ones, in one transaction.

    Appends wait meanwhile, so inline tables cannot change under the replay.
    Catch-up projections are rebuilt up to the last position no running
    transaction can precede (as read_all would), and a runner's batch in flight
    is rolled back by its compare-and-set on the position.
    """
    report = ReplayReport()
    async with conn.transaction():
        await conn.execute(queries.LOCK_EVENTS_FOR_REPLAY)
        # Before this transaction writes anything: its own id would hold xmin back.
        safe = await _position_of(conn, log_queries.LAST_SAFE_POSITION)
        for projection in projections:
            for name in projection.tables:
                # Table before position row: the order a runner takes them in, so no deadlock.
                await conn.execute(queries.LOCK_TABLE.format(table=sql.Identifier(name)))
            until = _LAST
            if projection.mode is Mode.CATCH_UP:
                await read_position(conn, projection.name, lock=True)
                until = safe
            shadow = await _shadow(conn, projection)
            report.events_replayed[projection.name] = await _replay(conn, projection, shadow, until)
            for name, table in shadow.items():
                live = sql.Identifier(name)
                await conn.execute(queries.TRUNCATE.format(table=live))
                await conn.execute(queries.COPY_BACK.format(live=live, shadow=table))
            if projection.mode is Mode.CATCH_UP:
                await store_position(conn, projection.name, until)
    return report


async def _position_of(conn: AsyncConnection[Any], query: LiteralString) -> Position:
    cur = await conn.execute(query)
    row = await cur.fetchone()
    return Position(int(row[0]), row[1]) if row else START


async def _differences(
    conn: AsyncConnection[Any],
    projection: Projection,
    name: str,
    shadow: sql.Identifier,
    limit: int,
) -> list[Difference]:
    cur = await conn.execute(queries.PRIMARY_KEY, {"table": name})
    key = [column for (column,) in await cur.fetchall()]
    cur = await conn.execute(
        queries.DIFFERENCES.format(live=sql.Identifier(name), shadow=shadow), {"limit": limit}
    )
    return [
        Difference(projection.name, name, side, row, {column: row.get(column) for column in key})
        for side, row in await cur.fetchall()
    ]


def describe(differences: Sequence[Difference]) -> list[str]:
    """One line per differing row: the columns that differ, or which side lacks it."""
    rows: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for d in differences:
        key = " ".join(f"{column}={value}" for column, value in d.key.items()) or "row"
        rows.setdefault((d.table, key), {})[d.side] = d.row
    return [_described(table, key, sides) for (table, key), sides in rows.items()]


def _described(table: str, key: str, sides: dict[str, dict[str, Any]]) -> str:
    live, rebuilt = sides.get("live only"), sides.get("rebuilt only")
    if rebuilt is None:
        return f"{table} {key}: in the live table, but a rebuild from the log has no such row"
    if live is None:
        return f"{table} {key}: missing from the live table, though the log builds it"
    changes = _changes("", live, rebuilt)
    shown = "; ".join(
        f"{path} live {render(a, 40)}, rebuilt {render(b, 40)}" for path, a, b in changes[:5]
    )
    more = f"; and {len(changes) - 5} more" if len(changes) > 5 else ""
    return f"{table} {key}: {shown}{more}"


def _changes(path: str, live: Any, rebuilt: Any) -> list[tuple[str, Any, Any]]:
    """The paths (``state.progress.percentage``) at which two JSON values differ."""
    if not (isinstance(live, dict) and isinstance(rebuilt, dict)):
        return [] if live == rebuilt else [(path or "value", live, rebuilt)]
    return [
        change
        for name in sorted(live.keys() | rebuilt.keys())
        for change in _changes(
            f"{path}.{name}" if path else name, live.get(name), rebuilt.get(name)
        )
    ]


async def verify(
    conn: AsyncConnection[Any], projections: Sequence[Projection], *, limit: int = 100
) -> ReplayReport:
    """Replay into temporary tables in one snapshot and compare them with the live tables."""
    report = ReplayReport()
    previous = conn.isolation_level
    await conn.set_isolation_level(IsolationLevel.REPEATABLE_READ)
    try:
        async with conn.transaction(force_rollback=True):
            for projection in projections:
                until = _LAST
                if projection.mode is Mode.CATCH_UP:
                    until = await read_position(conn, projection.name)
                shadow = await _shadow(conn, projection)
                report.events_replayed[projection.name] = await _replay(
                    conn, projection, shadow, until
                )
                for name, table in shadow.items():
                    report.differences += await _differences(conn, projection, name, table, limit)
    finally:
        await conn.set_isolation_level(previous)
    return report
