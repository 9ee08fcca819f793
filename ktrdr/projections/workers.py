"""The workers read model, folded with the domain's ``evolve_worker`` (inline)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb
from pydantic import TypeAdapter

from ktrdr.domain import WorkerEvent, from_payload
from ktrdr.domain.worker import WorkerState, evolve_worker
from ktrdr.eventlog import RecordedEvent
from ktrdr.projections.base import Mode, Tables

STATE = TypeAdapter(WorkerState)
WORKER_PREFIX = "worker-"

_LOAD = sql.SQL("SELECT state FROM {workers} WHERE worker_id = %(id)s")
_UPSERT = sql.SQL(
    """
INSERT INTO {workers} (worker_id, worker_type, status, host, pid, capabilities, version,
    registered_at, missed_at, deregistered_at, stream_version, state)
VALUES (%(worker_id)s, %(worker_type)s, %(status)s, %(host)s, %(pid)s, %(capabilities)s,
    %(version)s, %(registered_at)s, %(missed_at)s, %(deregistered_at)s, %(stream_version)s,
    %(state)s)
ON CONFLICT (worker_id) DO UPDATE SET
    worker_type = EXCLUDED.worker_type, status = EXCLUDED.status, host = EXCLUDED.host,
    pid = EXCLUDED.pid, capabilities = EXCLUDED.capabilities, version = EXCLUDED.version,
    registered_at = EXCLUDED.registered_at, missed_at = EXCLUDED.missed_at,
    deregistered_at = EXCLUDED.deregistered_at, stream_version = EXCLUDED.stream_version,
    state = EXCLUDED.state
"""
)


def worker_event(recorded: RecordedEvent) -> WorkerEvent:
    event = from_payload(recorded.event_type, recorded.schema_version, recorded.data)
    return event  # type: ignore[return-value]


def load_worker_state(data: Any) -> WorkerState:
    return STATE.validate_python(data)


class WorkersProjection:
    name = "workers"
    mode = Mode.INLINE
    tables: tuple[str, ...] = ("workers",)

    async def apply(
        self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent], tables: Tables
    ) -> None:
        streams: dict[str, list[RecordedEvent]] = {}
        for recorded in events:
            if recorded.stream_id.startswith(WORKER_PREFIX):
                worker_id = recorded.stream_id[len(WORKER_PREFIX) :]
                streams.setdefault(worker_id, []).append(recorded)
        for worker_id, stream_events in streams.items():
            cur = await conn.execute(_LOAD.format(workers=tables["workers"]), {"id": worker_id})
            row = await cur.fetchone()
            state = None if row is None else load_worker_state(row[0])
            for recorded in stream_events:
                state = evolve_worker(state, worker_event(recorded))
            assert state is not None
            await conn.execute(_UPSERT.format(workers=tables["workers"]), _row(state))


def _row(state: WorkerState) -> dict[str, Any]:
    return {
        "worker_id": state.worker_id,
        "worker_type": state.worker_type,
        "status": str(state.status),
        "host": state.host,
        "pid": state.pid,
        "capabilities": Jsonb(list(state.capabilities)),
        "version": state.software_version,
        "registered_at": state.registered_at,
        "missed_at": state.missed_at,
        "deregistered_at": state.deregistered_at,
        "stream_version": state.version,
        "state": Jsonb(json.loads(STATE.dump_json(state))),
    }
