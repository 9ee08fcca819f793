"""Named SQL of the projection machinery."""

from __future__ import annotations

from typing import LiteralString

from psycopg import sql

# hashtextextended gives a stable 64-bit key per projection name across processes.
TRY_LOCK: LiteralString = (
    "SELECT pg_try_advisory_lock(hashtextextended('ktrdr.projection.' || %(name)s, 0))"
)

ENSURE_POSITION: LiteralString = (
    "INSERT INTO projection_positions (name) VALUES (%(name)s) ON CONFLICT (name) DO NOTHING"
)
GET_POSITION: LiteralString = (
    "SELECT transaction_id::text, global_position FROM projection_positions WHERE name = %(name)s"
)
# Compare-and-set: a runner whose position moved under it (a rebuild, a second
# runner after a lost lock) updates nothing and rolls its batch back.
ADVANCE_POSITION: LiteralString = """
UPDATE projection_positions
SET transaction_id = %(tx)s::text::xid8, global_position = %(pos)s, updated_at = now()
WHERE name = %(name)s
  AND transaction_id = %(old_tx)s::text::xid8 AND global_position = %(old_pos)s
"""
SET_POSITION: LiteralString = """
INSERT INTO projection_positions (name, transaction_id, global_position)
VALUES (%(name)s, %(tx)s::text::xid8, %(pos)s)
ON CONFLICT (name) DO UPDATE
SET transaction_id = EXCLUDED.transaction_id, global_position = EXCLUDED.global_position,
    updated_at = now()
"""
LOCK_POSITION: LiteralString = (
    "SELECT transaction_id::text, global_position FROM projection_positions"
    " WHERE name = %(name)s FOR UPDATE"
)

# Appends take ROW EXCLUSIVE; SHARE waits for those in flight and holds new ones
# back, so the replay sees every committed event and no inline update is missed.
LOCK_EVENTS_FOR_REPLAY: LiteralString = "LOCK TABLE events IN SHARE MODE"

CREATE_SHADOW = sql.SQL(
    "CREATE TEMPORARY TABLE {shadow} (LIKE {live} INCLUDING ALL) ON COMMIT DROP"
)
LOCK_TABLE = sql.SQL("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
TRUNCATE = sql.SQL("TRUNCATE {table}")
COPY_BACK = sql.SQL("INSERT INTO {live} SELECT * FROM {shadow}")
PRIMARY_KEY: LiteralString = (
    "SELECT a.attname FROM pg_index i"
    " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
    " WHERE i.indrelid = %(table)s::regclass AND i.indisprimary"
    " ORDER BY array_position(i.indkey::int2[], a.attnum)"
)
DIFFERENCES = sql.SQL(
    "(SELECT 'live only' AS side, to_jsonb(l) AS row FROM"
    " (SELECT * FROM {live} EXCEPT ALL SELECT * FROM {shadow}) AS l)"
    " UNION ALL"
    " (SELECT 'rebuilt only', to_jsonb(r) FROM"
    " (SELECT * FROM {shadow} EXCEPT ALL SELECT * FROM {live}) AS r)"
    " LIMIT %(limit)s"
)


# Read side (views.py).
OPERATION_COLUMNS: LiteralString = (
    "operation_id::text, operation_type, status, params, parent_operation_id::text, progress,"
    " attempt, worker_id, created_at, started_at, completed_at, error, result, checkpoint,"
    " resumable, cancellation_requested, checkpoint_failure, retry_policy, attempts_used,"
    " next_retry_at, timeout_seconds, deadline_at,"
    # The live value between ProgressReported events (handlers/progress.py).
    " (SELECT jsonb_build_object('percentage', p.percentage, 'current_step', p.current_step,"
    " 'message', p.message, 'details', p.details, 'at', p.at) FROM operation_progress p"
    " WHERE p.operation_id = operations.operation_id) AS live_progress,"
    # Queued CUDA work no live worker of its type can take: the reason it waits.
    " CASE WHEN status IN ('pending', 'resuming') AND params->>'device' = 'cuda'"
    " AND NOT EXISTS (SELECT 1 FROM workers w WHERE w.worker_type = operations.operation_type"
    " AND w.status = 'registered' AND w.capabilities ? 'cuda') THEN 'cuda' END AS waiting_for"
)
CHECKPOINT_COLUMNS: LiteralString = (
    "operation_id::text, sequence, operation_type, checkpoint_type, state, artifacts_path,"
    " artifacts, state_size_bytes, artifacts_size_bytes, created_at"
)

GET_OPERATION: LiteralString = (
    "SELECT " + OPERATION_COLUMNS + " FROM operations WHERE operation_id = %(id)s"
)
GET_CHECKPOINT: LiteralString = (
    "SELECT " + CHECKPOINT_COLUMNS + " FROM checkpoints WHERE operation_id = %(id)s"
)
# An operation's metrics, in the order they were recorded (the stream index finds them).
METRICS: LiteralString = (
    "SELECT data->>'series', data->'points' FROM events"
    " WHERE stream_id = %(stream)s AND event_type = 'MetricsRecorded' ORDER BY stream_version"
)
CHECKPOINT_STATES: LiteralString = (
    "SELECT sequence, state FROM checkpoint_history"
    " WHERE operation_id = %(id)s AND sequence = ANY(%(sequences)s)"
)
CHECKPOINT_HISTORY: LiteralString = (
    "SELECT " + CHECKPOINT_COLUMNS + ", attempt, worker_id FROM checkpoint_history"
    " WHERE operation_id = %(id)s ORDER BY sequence DESC"
)
# Every live checkpoint (not only each operation's latest), and what its rows take.
CHECKPOINT_STATS: LiteralString = """
SELECT count(*), coalesce(sum(state_size_bytes + artifacts_size_bytes), 0),
       coalesce(sum(state_size_bytes), 0), coalesce(sum(artifacts_size_bytes), 0),
       min(created_at), count(DISTINCT operation_id), coalesce(sum(pg_column_size(h.*)), 0)
FROM checkpoint_history h
"""
CHECKPOINT_STATS_BY_TYPE: LiteralString = (
    "SELECT checkpoint_type, count(*) FROM checkpoint_history GROUP BY checkpoint_type"
)


def page(
    table: LiteralString, columns: LiteralString, where: sql.Composable, order: LiteralString
) -> tuple[sql.Composed, sql.Composed]:
    """The count and the page query of a filtered listing."""
    count = sql.SQL("SELECT count(*) FROM ") + sql.Identifier(table) + where
    select = (
        sql.SQL("SELECT " + columns + " FROM ")
        + sql.Identifier(table)
        + where
        + sql.SQL(" ORDER BY " + order + " LIMIT %(limit)s OFFSET %(offset)s")
    )
    return count, select


# A worker is busy with the running operation it claimed last (the operations read
# model knows; the liveness row only echoes what the worker reported).
LIST_WORKERS: LiteralString = """
SELECT w.worker_id, w.worker_type, w.status, w.host, w.pid, w.version, w.capabilities,
       w.state->'cuda' AS cuda,
       w.registered_at, l.last_heartbeat_at,
       o.operation_id::text AS current_operation_id, o.attempt AS current_attempt
FROM workers w
LEFT JOIN worker_liveness l ON l.worker_id = w.worker_id
LEFT JOIN LATERAL (
    SELECT operation_id, attempt FROM operations
    WHERE worker_id = w.worker_id AND status = 'running'
    ORDER BY created_at DESC LIMIT 1
) o ON true
WHERE %(all)s OR w.status <> 'deregistered'
ORDER BY w.worker_type, w.worker_id
"""
