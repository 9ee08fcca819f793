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
from ktrdr.domain import (
    CHECKPOINT_CLEANUP_STREAM,
    CheckpointCleanupRan,
    DeletionReason,
    DomainError,
    superseded,
    to_payload,
)
from ktrdr.eventlog import ANY, NewEvent, RecordedEvent
from ktrdr.handlers.bus import CommandBus
from ktrdr.handlers.operations import delete_checkpoints
from ktrdr.handlers.reactor import React

log = logging.getLogger(__name__)

_EXPIRED: LiteralString = """
SELECT operation_id::text, array_agg(sequence ORDER BY sequence),
       sum(state_size_bytes + artifacts_size_bytes)
FROM checkpoint_history WHERE created_at < %(before)s GROUP BY operation_id
"""
_LIVE: LiteralString = (
    "SELECT artifacts_path FROM checkpoint_history WHERE artifacts_path IS NOT NULL"
)

_LAST_RUN: LiteralString = (
    "SELECT data FROM events WHERE stream_id = %(stream)s ORDER BY stream_version DESC LIMIT 1"
)

CLEANUP = "checkpoint-cleanup"
RETENTION = "checkpoint-retention"
COMPLETION = "completion-cleanup"
"""The actors of the automatic deletions (each names the processor that took it)."""

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
    actor: str,
    leftover_grace_seconds: float = LEFTOVER_GRACE_SECONDS,
) -> CleanupReport:
    """Delete what is expired or unreferenced, then record the run (an event): the
    schedule counts from the last recorded run, whichever backend made it."""
    deleted = freed = busy = 0
    for operation_id, sequences, size in await _rows(
        pool, _EXPIRED, before=now - timedelta(days=max_age_days)
    ):
        try:
            done = await delete_checkpoints(
                bus, store, operation_id, sequences, reason="expired", actor=actor
            )
        except DomainError as exc:
            log.info("cleanup skips operation %s: %s", operation_id, exc.detail)
            busy += 1
            continue
        deleted += len(done)
        freed += int(size)
    removed, bytes_removed = _remove_orphans(
        store, await _rows(pool, _LIVE), leftover_grace_seconds
    )
    report = CleanupReport(deleted, freed + bytes_removed, removed, busy)
    await _record(bus, report, max_age_days, now, actor)
    return report


async def _record(
    bus: CommandBus, report: CleanupReport, max_age_days: float, now: datetime, actor: str
) -> None:
    ran = CheckpointCleanupRan(at=now, max_age_days=max_age_days, **report.as_json())
    event_type, version, data = to_payload(ran)
    event = NewEvent(event_type, data, version, {"actor": actor})
    await bus.event_log.append(CHECKPOINT_CLEANUP_STREAM, [event], ANY)


async def last_cleanup(pool: AsyncConnectionPool[Any]) -> datetime | None:
    """When the last checkpoint cleanup ran, by the log (None: never)."""
    rows = await _rows(pool, _LAST_RUN, stream=CHECKPOINT_CLEANUP_STREAM)
    return None if not rows else CheckpointCleanupRan.model_validate(rows[0][0]).at


async def first_run_in(
    pool: AsyncConnectionPool[Any], now: datetime, *, interval_seconds: float
) -> float:
    """Seconds until the next scheduled cleanup: an interval after the last recorded run,
    at once when that is past (a backend restarted more often than the interval still
    cleans) or when none ever ran."""
    last = await last_cleanup(pool)
    if last is None:
        return 0.0
    return max(0.0, interval_seconds - (now - last).total_seconds())


def _remove_orphans(
    store: ArtifactStore, live_rows: list[tuple[Any, ...]], grace: float
) -> tuple[int, int]:
    live = {row[0] for row in live_rows}
    now = time.time()
    removed = freed = 0
    for operation_id in store.operations():
        for name in store.sets(operation_id):
            location = f"{operation_id}/{name}"
            path = store.set_path(location)
            if location in live or now - path.stat().st_mtime < grace:
                continue
            size = _size(path)
            store.delete_set(location)
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
        await _delete(bus, store, event, doomed, DeletionReason.COMPLETED, COMPLETION)

    return react


def retain_newest(bus: CommandBus, store: ArtifactStore, keep: int) -> React:
    """A reaction: after each checkpoint saved, an operation keeps its newest ``keep``
    (and the one a running attempt resumed from); the others go (reason "superseded")."""

    async def react(event: RecordedEvent) -> None:
        if event.event_type != "CheckpointSaved":
            return
        operation_id = str(event.data["operation_id"])
        state = await bus.states.operation(operation_id)
        if state is not None:
            doomed = superseded(state, keep)
            await _delete(bus, store, event, doomed, DeletionReason.SUPERSEDED, RETENTION)

    return react


async def _delete(
    bus: CommandBus,
    store: ArtifactStore,
    cause: RecordedEvent,
    sequences: list[int],
    reason: DeletionReason,
    actor: str,
) -> None:
    if not sequences:
        return
    operation_id = str(cause.data["operation_id"])
    try:
        await delete_checkpoints(
            bus,
            store,
            operation_id,
            sequences,
            reason=reason,
            actor=actor,
            causation_id=str(cause.event_id),
        )
    except DomainError as exc:  # already done by an earlier delivery, or it moved on since
        log.info("%s of %s skipped: %s", actor, operation_id, exc.detail)
