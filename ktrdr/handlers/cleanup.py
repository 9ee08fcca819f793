"""Checkpoint cleanup: expired checkpoints, unreferenced artifact sets, crash leftovers.

The scheduled processor and `POST /checkpoints/cleanup` run this same code.
A checkpoint a resume is reading is never deleted: the domain refuses to
delete checkpoints of a resuming or running operation (OperationBusy).
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, LiteralString

from psycopg_pool import AsyncConnectionPool

from ktrdr.artifacts import ArtifactStore
from ktrdr.domain import DomainError
from ktrdr.eventlog import RecordedEvent
from ktrdr.handlers.bus import CommandBus
from ktrdr.handlers.operations import delete_checkpoints
from ktrdr.handlers.reactor import React

log = logging.getLogger(__name__)

_EXPIRED: LiteralString = """
SELECT operation_id::text, array_agg(sequence ORDER BY sequence),
       sum(state_size_bytes + artifacts_size_bytes)
FROM checkpoint_history WHERE created_at < %(before)s GROUP BY operation_id
"""
_LIVE: LiteralString = "SELECT operation_id::text, sequence FROM checkpoint_history"

LEFTOVER_GRACE_SECONDS = 3600.0
"""Unreferenced sets and temp folders younger than this may belong to a save in flight."""


@dataclass(frozen=True)
class CleanupReport:
    checkpoints_deleted: int
    bytes_freed: int
    orphan_artifacts_removed: int
    skipped_busy: int

    def as_json(self) -> dict[str, int]:
        return {
            "checkpoints_deleted": self.checkpoints_deleted,
            "bytes_freed": self.bytes_freed,
            "orphan_artifacts_removed": self.orphan_artifacts_removed,
            "skipped_busy": self.skipped_busy,
        }


async def _rows(
    pool: AsyncConnectionPool[Any], query: LiteralString, **params: Any
) -> list[tuple[Any, ...]]:
    async with pool.connection() as conn:
        cur = await conn.execute(query, params)
        return list(await cur.fetchall())


async def run_cleanup(
    bus: CommandBus,
    pool: AsyncConnectionPool[Any],
    store: ArtifactStore,
    *,
    max_age_days: float,
    now: datetime,
    leftover_grace_seconds: float = LEFTOVER_GRACE_SECONDS,
) -> CleanupReport:
    deleted = freed = busy = 0
    for operation_id, sequences, size in await _rows(
        pool, _EXPIRED, before=now - timedelta(days=max_age_days)
    ):
        try:
            done = await delete_checkpoints(bus, store, operation_id, sequences, reason="expired")
        except DomainError as exc:
            log.info("cleanup skips operation %s: %s", operation_id, exc.detail)
            busy += 1
            continue
        deleted += len(done)
        freed += int(size)
    removed, bytes_removed = _remove_orphans(
        store, await _rows(pool, _LIVE), leftover_grace_seconds
    )
    return CleanupReport(deleted, freed + bytes_removed, removed, busy)


def _remove_orphans(store: ArtifactStore, live_rows: list[Any], grace: float) -> tuple[int, int]:
    live = {(op, seq) for op, seq in live_rows}
    now = time.time()
    removed = freed = 0
    for operation_id in store.operations():
        for sequence in store.sequences(operation_id):
            path = store.path(operation_id, sequence)
            if (operation_id, sequence) in live or now - path.stat().st_mtime < grace:
                continue
            size = _size(path)
            store.delete(operation_id, [sequence])
            removed, freed = removed + 1, freed + size
        for leftover in store.leftovers(operation_id, now=now):
            if leftover.age_seconds >= grace:
                size = _size(leftover.path)
                store.remove_leftover(leftover)
                removed, freed = removed + 1, freed + size
        _remove_if_empty(store.root / operation_id)
    return removed, freed


def _remove_if_empty(folder: Path) -> None:
    # rmdir, not a tree removal: a save may have started a temp folder meanwhile.
    with contextlib.suppress(OSError):
        folder.rmdir()


def _size(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file())


def delete_on_completion(bus: CommandBus, store: ArtifactStore) -> React:
    """A reaction: a completed operation's checkpoints go (reason "completed") unless it
    asked to keep them — all but the last when the result names a model artifact in it
    (a training run's trained model, which backtests load)."""

    async def react(event: RecordedEvent) -> None:
        if event.event_type != "OperationCompleted":
            return
        operation_id = str(event.data["operation_id"])
        state = await bus.states.operation(operation_id)
        if state is None or state.keep_checkpoints or not state.checkpoints:
            return
        doomed = sorted(state.checkpoints)
        if state.result and state.result.get("model_artifact"):
            doomed = doomed[:-1]
        if not doomed:
            return
        try:
            await delete_checkpoints(bus, store, operation_id, doomed, reason="completed")
        except DomainError as exc:  # already done by an earlier delivery, or resumed since
            log.info("completion cleanup of %s skipped: %s", operation_id, exc.detail)

    return react
