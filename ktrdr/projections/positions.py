"""A named reader's stored position in the global log (``projection_positions``)."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from ktrdr.eventlog import START, Position
from ktrdr.projections import queries


async def read_position(
    conn: AsyncConnection[Any], name: str, *, create: bool = False, lock: bool = False
) -> Position:
    """Where ``name`` stands (``create``: a new reader starts at the beginning; ``lock``: the
    row stays locked until the transaction ends); START when it has no row."""
    if create:
        await conn.execute(queries.ENSURE_POSITION, {"name": name})
    cur = await conn.execute(
        queries.LOCK_POSITION if lock else queries.GET_POSITION, {"name": name}
    )
    row = await cur.fetchone()
    return Position(int(row[0]), row[1]) if row else START


async def store_position(conn: AsyncConnection[Any], name: str, position: Position) -> None:
    await conn.execute(queries.SET_POSITION, {"name": name, **_columns(position)})


async def advance_position(
    conn: AsyncConnection[Any], name: str, old: Position, new: Position
) -> bool:
    """Compare-and-set: False (nothing written) when the position is no longer ``old``."""
    old_columns = {f"old_{key}": value for key, value in _columns(old).items()}
    cur = await conn.execute(
        queries.ADVANCE_POSITION, {"name": name, **_columns(new), **old_columns}
    )
    return cur.rowcount == 1


def _columns(position: Position) -> dict[str, Any]:
    return {"tx": str(position.transaction_id), "pos": position.global_position}
