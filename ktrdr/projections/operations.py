"""Operation and checkpoint read models, folded with the domain's own ``evolve`` (inline)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb
from pydantic import TypeAdapter

from ktrdr.domain import (
    CheckpointDeleted,
    CheckpointSaved,
    OperationEvent,
    describe_position,
    from_payload,
)
from ktrdr.domain.operation import OperationState, evolve, latest_checkpoint
from ktrdr.eventlog import RecordedEvent
from ktrdr.projections.base import Mode, Tables

STATE = TypeAdapter(OperationState)
OPERATION_PREFIX = "operation-"

_LOAD_STATE = sql.SQL("SELECT state FROM {operations} WHERE operation_id = %(id)s")
_UPSERT_OPERATION = sql.SQL(
    """
INSERT INTO {operations} (operation_id, operation_type, status, params, parent_operation_id,
    progress, attempt, worker_id, created_at, started_at, completed_at, error, result,
    checkpoint, resumable, cancellation_requested, stream_version, state, checkpoint_failure,
    retry_policy, attempts_used, next_retry_at, timeout_seconds, deadline_at)
VALUES (%(operation_id)s, %(operation_type)s, %(status)s, %(params)s, %(parent_operation_id)s,
    %(progress)s, %(attempt)s, %(worker_id)s, %(created_at)s, %(started_at)s, %(completed_at)s,
    %(error)s, %(result)s, %(checkpoint)s, %(resumable)s, %(cancellation_requested)s,
    %(stream_version)s, %(state)s, %(checkpoint_failure)s, %(retry_policy)s,
    %(attempts_used)s, %(next_retry_at)s, %(timeout_seconds)s, %(deadline_at)s)
ON CONFLICT (operation_id) DO UPDATE SET
    status = EXCLUDED.status, params = EXCLUDED.params, progress = EXCLUDED.progress,
    attempt = EXCLUDED.attempt,
    worker_id = EXCLUDED.worker_id, started_at = EXCLUDED.started_at,
    completed_at = EXCLUDED.completed_at, error = EXCLUDED.error, result = EXCLUDED.result,
    checkpoint = EXCLUDED.checkpoint, resumable = EXCLUDED.resumable,
    cancellation_requested = EXCLUDED.cancellation_requested,
    stream_version = EXCLUDED.stream_version, state = EXCLUDED.state,
    checkpoint_failure = EXCLUDED.checkpoint_failure, attempts_used = EXCLUDED.attempts_used,
    next_retry_at = EXCLUDED.next_retry_at, deadline_at = EXCLUDED.deadline_at
"""
)
_INSERT_HISTORY = sql.SQL(
    """
INSERT INTO {history} (operation_id, sequence, operation_type, checkpoint_type, state,
    artifacts_path, artifacts, state_size_bytes, artifacts_size_bytes, attempt, worker_id,
    created_at)
VALUES (%(operation_id)s, %(sequence)s, %(operation_type)s, %(checkpoint_type)s, %(state)s,
    %(artifacts_path)s, %(artifacts)s, %(state_size_bytes)s, %(artifacts_size_bytes)s,
    %(attempt)s, %(worker_id)s, %(created_at)s)
"""
)
_DELETE_HISTORY = sql.SQL(
    "DELETE FROM {history} WHERE operation_id = %(id)s AND sequence = ANY(%(sequences)s)"
)
# The latest live checkpoint, copied from its history row: its state lives only there
# (the aggregate keeps no checkpoint states).
_UPSERT_LATEST = sql.SQL(
    """
INSERT INTO {latest} (operation_id, sequence, operation_type, checkpoint_type, state,
    artifacts_path, artifacts, state_size_bytes, artifacts_size_bytes, created_at, updated_at)
SELECT operation_id, sequence, operation_type, checkpoint_type, state, artifacts_path,
    artifacts, state_size_bytes, artifacts_size_bytes, created_at, %(updated_at)s
FROM {history} WHERE operation_id = %(id)s AND sequence = %(sequence)s
ON CONFLICT (operation_id) DO UPDATE SET
    sequence = EXCLUDED.sequence, checkpoint_type = EXCLUDED.checkpoint_type,
    state = EXCLUDED.state, artifacts_path = EXCLUDED.artifacts_path,
    artifacts = EXCLUDED.artifacts, state_size_bytes = EXCLUDED.state_size_bytes,
    artifacts_size_bytes = EXCLUDED.artifacts_size_bytes, created_at = EXCLUDED.created_at,
    updated_at = EXCLUDED.updated_at
"""
)
_DELETE_LATEST = sql.SQL("DELETE FROM {latest} WHERE operation_id = %(id)s")


def domain_event(event: RecordedEvent) -> OperationEvent:
    return from_payload(event.event_type, event.schema_version, event.data)  # type: ignore[return-value]


def _json(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def dump_state(state: OperationState) -> dict[str, Any]:
    return json.loads(STATE.dump_json(state))  # type: ignore[no-any-return]


def load_state(data: Any) -> OperationState:
    return STATE.validate_python(data)


def checkpoint_brief(state: OperationState) -> dict[str, Any] | None:
    latest = latest_checkpoint(state)
    if latest is None:
        return None
    return {
        "sequence": latest.sequence,
        "checkpoint_type": str(latest.checkpoint_type),
        "created_at": latest.created_at.isoformat(),
        "summary": describe_position(state.operation_type, latest.position),
    }


_JSON_COLUMNS = frozenset(
    {
        "params",
        "progress",
        "error",
        "result",
        "checkpoint",
        "state",
        "checkpoint_failure",
        "retry_policy",
    }
)


def operation_fields(state: OperationState) -> dict[str, Any]:
    """The ``operations`` row of a state, JSON columns as plain values.

    ``views.operation_json`` maps this (or the row read back) to the API's JSON,
    so an operation folded from its stream reads exactly as the live one does.
    """
    dumped = dump_state(state)
    return {
        "operation_id": state.operation_id,
        "operation_type": str(state.operation_type),
        "status": str(state.status),
        "params": dumped["params"],
        "parent_operation_id": state.parent_operation_id,
        "progress": dumped["progress"],
        "attempt": state.attempt,
        "worker_id": state.worker_id,
        "created_at": state.created_at,
        "started_at": state.started_at,
        "completed_at": state.completed_at,
        "error": dumped["error"],
        "result": dumped["result"],
        "checkpoint": checkpoint_brief(state),
        "resumable": state.resumable,
        "cancellation_requested": state.cancellation_requested,
        "stream_version": state.version,
        "state": dumped,
        "checkpoint_failure": dumped["checkpoint_failure"],
        "retry_policy": dumped["retry_policy"],
        "attempts_used": state.started_attempts,
        "next_retry_at": state.next_retry_at,
        "timeout_seconds": state.timeout_seconds,
        "deadline_at": state.deadline_at,
    }


def _operation_row(state: OperationState) -> dict[str, Any]:
    fields = operation_fields(state)
    return {name: _json(v) if name in _JSON_COLUMNS else v for name, v in fields.items()}


def _checkpoint_row(state: OperationState, event: CheckpointSaved) -> dict[str, Any]:
    return {
        "operation_id": state.operation_id,
        "sequence": event.sequence,
        "operation_type": str(state.operation_type),
        "checkpoint_type": str(event.checkpoint_type),
        "state": Jsonb(event.state),
        "artifacts_path": event.artifacts_path,
        "artifacts": Jsonb([a.model_dump(mode="json") for a in event.artifacts]),
        "state_size_bytes": event.state_size_bytes,
        "artifacts_size_bytes": event.artifacts_size_bytes,
        "attempt": event.attempt,
        "worker_id": event.worker_id,
        "created_at": event.at,
    }


def _by_stream(events: Iterable[RecordedEvent]) -> dict[str, list[RecordedEvent]]:
    streams: dict[str, list[RecordedEvent]] = {}
    for event in events:
        if event.stream_id.startswith(OPERATION_PREFIX):
            streams.setdefault(event.stream_id, []).append(event)
    return streams


class OperationsProjection:
    """``operations`` (one row per operation), ``checkpoint_history`` (every live checkpoint)
    and ``checkpoints`` (the latest live one per operation)."""

    name = "operations"
    mode = Mode.INLINE
    tables: tuple[str, ...] = ("operations", "checkpoint_history", "checkpoints")

    async def apply(
        self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent], tables: Tables
    ) -> None:
        for stream_events in _by_stream(events).values():
            await self._apply_stream(conn, stream_events, tables)

    async def _apply_stream(
        self, conn: AsyncConnection[Any], events: list[RecordedEvent], tables: Tables
    ) -> None:
        operation_id = events[0].stream_id[len(OPERATION_PREFIX) :]
        state = await self._load(conn, operation_id, tables)
        checkpoints_changed_at = None
        for recorded in events:
            event = domain_event(recorded)
            state = evolve(state, event)
            if isinstance(event, CheckpointSaved):
                query = _INSERT_HISTORY.format(history=tables["checkpoint_history"])
                await conn.execute(query, _checkpoint_row(state, event))
                checkpoints_changed_at = event.at
            elif isinstance(event, CheckpointDeleted):
                query = _DELETE_HISTORY.format(history=tables["checkpoint_history"])
                await conn.execute(query, {"id": operation_id, "sequences": list(event.sequences)})
                checkpoints_changed_at = event.at
        assert state is not None
        await conn.execute(
            _UPSERT_OPERATION.format(operations=tables["operations"]), _operation_row(state)
        )
        if checkpoints_changed_at is not None:
            await self._write_latest(conn, state, checkpoints_changed_at, tables)

    async def _load(
        self, conn: AsyncConnection[Any], operation_id: str, tables: Tables
    ) -> OperationState | None:
        cur = await conn.execute(
            _LOAD_STATE.format(operations=tables["operations"]), {"id": operation_id}
        )
        row = await cur.fetchone()
        return None if row is None else load_state(row[0])

    async def _write_latest(
        self,
        conn: AsyncConnection[Any],
        state: OperationState,
        changed_at: datetime,
        tables: Tables,
    ) -> None:
        latest = latest_checkpoint(state)
        if latest is None:
            query = _DELETE_LATEST.format(latest=tables["checkpoints"])
            await conn.execute(query, {"id": state.operation_id})
            return
        query = _UPSERT_LATEST.format(
            latest=tables["checkpoints"], history=tables["checkpoint_history"]
        )
        await conn.execute(
            query,
            {"id": state.operation_id, "sequence": latest.sequence, "updated_at": changed_at},
        )
