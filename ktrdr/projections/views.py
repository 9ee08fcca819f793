"""Read-side queries over the read models, shaped as the API returns them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, LiteralString

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from ktrdr.domain import CUDA, operation_stream
from ktrdr.domain.operation import OperationState
from ktrdr.projections import queries
from ktrdr.projections.operations import operation_fields


def _iso(value: datetime | None) -> str | None:
    # In UTC whatever the session's TimeZone: a row read back and a state folded
    # from the log must spell the same moment the same way.
    return None if value is None else value.astimezone(UTC).isoformat()


def _newest_progress(row: dict[str, Any]) -> dict[str, Any]:
    """The progress event's, or the live value reported since (it may be newer)."""
    logged, live = row["progress"] or {}, row.get("live_progress")
    if live and (
        not logged or datetime.fromisoformat(live["at"]) >= datetime.fromisoformat(logged["at"])
    ):
        return dict(live)
    return dict(logged)


def operation_json(row: dict[str, Any]) -> dict[str, Any]:
    progress = _newest_progress(row)
    return {
        "operation_id": row["operation_id"],
        "operation_type": row["operation_type"],
        "status": row["status"],
        "params": row["params"],
        "parent_operation_id": row["parent_operation_id"],
        "progress": {
            "percentage": progress.get("percentage", 0.0),
            "current_step": progress.get("current_step"),
            "message": progress.get("message"),
            "details": progress.get("details", {}),
        },
        "attempt": row["attempt"],
        "worker_id": row["worker_id"],
        "created_at": _iso(row["created_at"]),
        "started_at": _iso(row["started_at"]),
        "completed_at": _iso(row["completed_at"]),
        "error": row["error"],
        "result": row["result"],
        "checkpoint": row["checkpoint"],
        "resumable": row["resumable"],
        "cancellation_requested": row["cancellation_requested"],
        "checkpoint_failure": row["checkpoint_failure"],
        "retry_policy": row["retry_policy"],
        "attempts_used": row["attempts_used"],
        "next_retry_at": _iso(row["next_retry_at"]),
        "timeout_seconds": row["timeout_seconds"],
        "deadline_at": _iso(row["deadline_at"]),
        "waiting_for": row.get("waiting_for"),
        "waiting_reason": _waiting_reason(row),
    }


def _waiting_reason(row: dict[str, Any]) -> str | None:
    if row.get("waiting_for") != CUDA:
        return None
    return f"no live {row['operation_type']} worker has CUDA; it waits for one to register"


def state_json(state: OperationState) -> dict[str, Any]:
    """The API's JSON of an operation state folded from the log (as of any version)."""
    return operation_json(operation_fields(state))


def checkpoint_json(row: dict[str, Any], *, with_state: bool = True) -> dict[str, Any]:
    out = {
        "operation_id": row["operation_id"],
        "sequence": row["sequence"],
        "operation_type": row["operation_type"],
        "checkpoint_type": row["checkpoint_type"],
        "artifacts_path": row["artifacts_path"],
        "artifacts": row["artifacts"],
        "state_size_bytes": row["state_size_bytes"],
        "artifacts_size_bytes": row["artifacts_size_bytes"],
        "total_size_bytes": row["state_size_bytes"] + row["artifacts_size_bytes"],
        "created_at": _iso(row["created_at"]),
    }
    if with_state:
        out["state"] = row["state"]
    return out


def _where(filters: list[sql.Composable]) -> sql.Composable:
    if not filters:
        return sql.SQL("")
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(filters)


async def _page(
    conn: AsyncConnection[Any],
    table: LiteralString,
    columns: LiteralString,
    filters: list[sql.Composable],
    params: dict[str, Any],
    order: LiteralString,
) -> tuple[list[dict[str, Any]], int]:
    count, select = queries.page(table, columns, _where(filters), order)
    cur = await conn.execute(count, params)
    total_row = await cur.fetchone()
    async with conn.cursor(row_factory=dict_row) as rows:
        await rows.execute(select, params)
        items = await rows.fetchall()
    return items, int(total_row[0]) if total_row else 0


async def list_operations(
    conn: AsyncConnection[Any],
    *,
    status: str | None = None,
    operation_type: str | None = None,
    resumable: bool | None = None,
    parent_operation_id: str | None = None,
    id_range: tuple[str, str] | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """``id_range``: the lowest and highest id of a prefix, a range scan of the primary key."""
    filters: list[sql.Composable] = []
    if status is not None:
        filters.append(sql.SQL("status = %(status)s"))
    if operation_type is not None:
        filters.append(sql.SQL("operation_type = %(operation_type)s"))
    if resumable is not None:
        filters.append(sql.SQL("resumable = %(resumable)s"))
    if parent_operation_id is not None:
        filters.append(sql.SQL("parent_operation_id = %(parent)s"))
    if id_range is not None:
        filters.append(sql.SQL("operation_id BETWEEN %(id_low)s AND %(id_high)s"))
    params = {
        "status": status,
        "operation_type": operation_type,
        "resumable": resumable,
        "parent": parent_operation_id,
        "id_low": id_range[0] if id_range else None,
        "id_high": id_range[1] if id_range else None,
        "limit": limit,
        "offset": offset,
    }
    rows, total = await _page(
        conn,
        "operations",
        queries.OPERATION_COLUMNS,
        filters,
        params,
        "created_at DESC, operation_id",
    )
    return [operation_json(r) for r in rows], total


async def get_operation(conn: AsyncConnection[Any], operation_id: str) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            queries.GET_OPERATION,
            {"id": operation_id},
        )
        row = await cur.fetchone()
    return None if row is None else operation_json(row)


async def list_checkpoints(
    conn: AsyncConnection[Any],
    *,
    now: datetime,
    operation_type: str | None = None,
    checkpoint_type: str | None = None,
    older_than_days: float | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    filters: list[sql.Composable] = []
    if operation_type is not None:
        filters.append(sql.SQL("operation_type = %(operation_type)s"))
    if checkpoint_type is not None:
        filters.append(sql.SQL("checkpoint_type = %(checkpoint_type)s"))
    if older_than_days is not None:
        filters.append(sql.SQL("created_at < %(before)s"))
    params = {
        "operation_type": operation_type,
        "checkpoint_type": checkpoint_type,
        "before": now - timedelta(days=older_than_days or 0),
        "limit": limit,
        "offset": offset,
    }
    rows, total = await _page(
        conn,
        "checkpoints",
        queries.CHECKPOINT_COLUMNS,
        filters,
        params,
        "created_at DESC, operation_id",
    )
    return [checkpoint_json(r, with_state=False) for r in rows], total


async def get_checkpoint(conn: AsyncConnection[Any], operation_id: str) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            queries.GET_CHECKPOINT,
            {"id": operation_id},
        )
        row = await cur.fetchone()
    return None if row is None else checkpoint_json(row)


STEP_KEYS = {"epochs": "epoch", "equity": "bar_index"}
"""The key that orders each series' points; a point recorded again (a resumed run
replays from its checkpoint) replaces the earlier one."""


async def metrics(conn: AsyncConnection[Any], operation_id: str) -> dict[str, list[Any]]:
    """Each metrics series of an operation, read from the log, one point per step."""
    cur = await conn.execute(queries.METRICS, {"stream": operation_stream(operation_id)})
    series: dict[str, dict[Any, Any]] = {}
    for name, points in await cur.fetchall():
        key = STEP_KEYS.get(name)
        by_step = series.setdefault(name, {})
        for point in points:
            by_step[point.get(key, len(by_step)) if key else len(by_step)] = point
    return {name: [by_step[s] for s in sorted(by_step)] for name, by_step in series.items()}


async def checkpoint_states(
    conn: AsyncConnection[Any], operation_id: str, sequences: Sequence[int]
) -> dict[int, dict[str, Any]]:
    """The states of an operation's live checkpoints, by sequence (each written once)."""
    cur = await conn.execute(
        queries.CHECKPOINT_STATES, {"id": operation_id, "sequences": list(sequences)}
    )
    return {int(sequence): state for sequence, state in await cur.fetchall()}


async def checkpoint_history(conn: AsyncConnection[Any], operation_id: str) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            queries.CHECKPOINT_HISTORY,
            {"id": operation_id},
        )
        rows = await cur.fetchall()
    return [
        {**checkpoint_json(r), "attempt": r["attempt"], "worker_id": r["worker_id"]} for r in rows
    ]


async def checkpoint_stats(conn: AsyncConnection[Any]) -> dict[str, Any]:
    cur = await conn.execute(queries.CHECKPOINT_STATS)
    row = await cur.fetchone()
    assert row is not None
    cur = await conn.execute(queries.CHECKPOINT_STATS_BY_TYPE)
    by_type = {kind: count for kind, count in await cur.fetchall()}
    return {
        "total_checkpoints": row[0],
        "total_size_bytes": int(row[1]),
        "state_size_bytes": int(row[2]),
        "artifacts_size_bytes": int(row[3]),
        "oldest_checkpoint": _iso(row[4]),
        "by_type": by_type,
        "operations": row[5],
        "database_bytes": int(row[6]),
    }


LONG_LOST_TIMEOUTS = 10
"""A worker silent for this many orphan timeouts is long lost: listed only when asked."""


async def list_workers(
    conn: AsyncConnection[Any],
    *,
    now: datetime,
    lost_after_seconds: float,
    include_deregistered: bool = False,
    include_lost: bool = False,
) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(queries.LIST_WORKERS, {"all": include_deregistered})
        rows = await cur.fetchall()
    workers = [_worker_json(r, now, lost_after_seconds) for r in rows]
    forgotten = LONG_LOST_TIMEOUTS * lost_after_seconds
    return [
        w
        for w in workers
        if include_lost or w["status"] != "lost" or w["heartbeat_age_seconds"] <= forgotten
    ]


def _worker_json(row: dict[str, Any], now: datetime, lost_after: float) -> dict[str, Any]:
    seen = row["last_heartbeat_at"] or row["registered_at"]
    age = (now - seen).total_seconds()
    if row["status"] == "deregistered":
        status = "deregistered"
    elif row["status"] == "missing" or age > lost_after:
        status = "lost"
    elif row["current_operation_id"]:
        status = "busy"
    else:
        status = "available"
    return {
        "worker_id": row["worker_id"],
        "worker_type": row["worker_type"],
        "status": status,
        "host": row["host"],
        "pid": row["pid"],
        "version": row["version"],
        "capabilities": row["capabilities"],
        "cuda": row["cuda"],
        "current_operation_id": row["current_operation_id"],
        "current_attempt": row["current_attempt"],
        "heartbeat_age_seconds": round(age, 3),
        "registered_at": _iso(row["registered_at"]),
    }
