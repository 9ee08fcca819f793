"""The orphan detector: judges every running attempt, and every idle worker, on liveness.

- An attempt whose claim was never acknowledged within the ack deadline goes back to
  the queue (``ClaimReleased``): its worker never started, so nothing failed.
- An acknowledged attempt whose worker stopped reporting it for the orphan timeout
  becomes failed/orphaned, keeping its checkpoints.
- A registered worker silent for the orphan timeout is recorded as missing (lost).

Silence is measured on the bus clock (the database's) and never counts a period in
which the backend could not record heartbeats: it counts from the backend's start at
the earliest (workers get one timeout to re-register), and a gap between two of the
detector's own ticks (a database stall, a frozen backend) is taken off every silence
it overlaps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, LiteralString

from psycopg_pool import AsyncConnectionPool

from ktrdr.domain import FailOperation, FailureReason, RecordMissedHeartbeat
from ktrdr.handlers.bus import CommandBus
from ktrdr.handlers.workers import ORPHAN_DETECTOR, release_claim, verdict_key

log = logging.getLogger(__name__)

_RUNNING: LiteralString = """
SELECT o.operation_id::text, o.worker_id, o.attempt,
       (o.state->>'claimed_at')::timestamptz, (o.state->>'acknowledged_at')::timestamptz,
       a.last_seen_at, w.last_heartbeat_at
FROM operations o
LEFT JOIN attempt_liveness a
    ON a.operation_id = o.operation_id AND a.attempt = o.attempt AND a.worker_id = o.worker_id
LEFT JOIN worker_liveness w ON w.worker_id = o.worker_id
WHERE o.status = 'running'
"""
_REGISTERED: LiteralString = """
SELECT w.worker_id, w.registered_at, l.last_heartbeat_at
FROM workers w LEFT JOIN worker_liveness l ON l.worker_id = w.worker_id
WHERE w.status = 'registered'
"""
# Rows of attempts that ended or were replaced; a late heartbeat may add one back,
# and the next tick removes it again.
_FORGET_ENDED: LiteralString = """
DELETE FROM attempt_liveness a
WHERE NOT EXISTS (
    SELECT 1 FROM operations o
    WHERE o.operation_id = a.operation_id AND o.attempt = a.attempt AND o.status = 'running'
)
"""

ACK_DEADLINE_HEARTBEATS = 1.5
"""A claim unacknowledged this many heartbeat intervals after it was made goes back to the
queue; with the detector's tick it is back within two intervals."""
STALL_SECONDS = 1.0
"""A gap this long between two ticks (at least three intervals) is a stall, not a tick."""


@dataclass(frozen=True)
class Suspect:
    operation_id: str
    worker_id: str
    attempt: int
    claimed_at: datetime
    acknowledged_at: datetime | None
    attempt_seen_at: datetime | None
    worker_seen_at: datetime | None

    def last_seen(self) -> datetime:
        """When the attempt was last known to be alive: acknowledged, or reported since."""
        assert self.acknowledged_at is not None
        return max(self.acknowledged_at, self.attempt_seen_at or self.acknowledged_at)


class Stalls:
    """Recent periods in which this detector could not look (so heartbeats may be missing)."""

    def __init__(self, threshold: timedelta, keep_for: timedelta) -> None:
        self._threshold = threshold
        self._keep_for = keep_for
        self._last_tick: datetime | None = None
        self.periods: list[tuple[datetime, datetime]] = []

    def ticked(self, now: datetime) -> None:
        last, self._last_tick = self._last_tick, now
        if last is not None and now - last > self._threshold:
            log.warning(
                "no liveness check for %.1fs: that time is not held against workers",
                (now - last).total_seconds(),
            )
            self.periods.append((last, now))
        self.periods = [(s, e) for s, e in self.periods if now - e < self._keep_for]

    def silence(self, since: datetime, now: datetime) -> timedelta:
        """``now - since`` less the stalls inside it."""
        stalled = sum(
            (min(end, now) - max(start, since) for start, end in self.periods if end > since),
            timedelta(0),
        )
        return now - since - max(stalled, timedelta(0))


class OrphanDetector:
    def __init__(
        self,
        bus: CommandBus,
        pool: AsyncConnectionPool[Any],
        *,
        timeout_seconds: float,
        heartbeat_interval_seconds: float,
        started_at: datetime,
        tick_seconds: float = 0.5,
        stall_seconds: float = STALL_SECONDS,
    ) -> None:
        """``stall_seconds``: the shortest gap between two ticks taken for a stall (at
        least three ticks); a test that moves a clock by hand between ticks raises it."""
        self._bus = bus
        self._pool = pool
        self._timeout = timedelta(seconds=timeout_seconds)
        self._ack_deadline = timedelta(seconds=heartbeat_interval_seconds * ACK_DEADLINE_HEARTBEATS)
        self._started_at = started_at
        threshold = timedelta(seconds=max(stall_seconds, 3 * tick_seconds))
        self.stalls = Stalls(threshold, keep_for=2 * self._timeout + threshold)
        self.detected = 0
        self.released = 0

    async def tick(self) -> list[str]:
        """Judge every running attempt and registered worker once; returns the ids of the
        operations failed as orphaned."""
        now = self._bus.clock()
        self.stalls.ticked(now)
        async with self._pool.connection() as conn:
            running = [Suspect(*row) for row in await (await conn.execute(_RUNNING)).fetchall()]
            idle = await (await conn.execute(_REGISTERED)).fetchall()
            await conn.execute(_FORGET_ENDED)
        failed = []
        for suspect in running:
            if suspect.acknowledged_at is None:
                await self._judge_claim(suspect, now)
            elif self._silence(suspect.last_seen(), now) > self._timeout:
                await self._fail(suspect, now)
                failed.append(suspect.operation_id)
        for worker_id, registered_at, last_heartbeat_at in idle:
            if self._silence(last_heartbeat_at or registered_at, now) > self._timeout:
                await self._missed(worker_id, now, last_heartbeat_at)
        self.detected += len(failed)
        return failed

    def _silence(self, since: datetime, now: datetime) -> timedelta:
        # Nothing this backend did not see counts: silence before it started (workers
        # re-register with it first), nor a stall while it could not look.
        return self.stalls.silence(max(since, self._started_at), now)

    async def _judge_claim(self, suspect: Suspect, now: datetime) -> None:
        if self._silence(suspect.claimed_at, now) <= self._ack_deadline:
            return
        waited = (now - suspect.claimed_at).total_seconds()
        await release_claim(
            self._bus,
            suspect.operation_id,
            suspect.attempt,
            f"worker {suspect.worker_id} did not acknowledge its claim within {waited:.1f}s"
            " (it died or never got the answer); back to the queue",
            actor=ORPHAN_DETECTOR,
        )
        self.released += 1
        log.warning(
            "operation %s: claim %s of %s not acknowledged; back to the queue",
            suspect.operation_id,
            suspect.attempt,
            suspect.worker_id,
        )

    async def _missed(
        self,
        worker_id: str,
        now: datetime,
        last_heartbeat_at: datetime | None,
        suspect: Suspect | None = None,
    ) -> None:
        """Record that the worker is lost (with the attempt it left, when it held one)."""
        await self._bus.worker(
            RecordMissedHeartbeat(
                worker_id=worker_id,
                at=now,
                last_heartbeat_at=last_heartbeat_at,
                operation_id=suspect.operation_id if suspect else None,
                attempt=suspect.attempt if suspect else None,
            ),
            actor=ORPHAN_DETECTOR,
        )
        log.warning("worker %s is lost: no heartbeat for the orphan timeout", worker_id)

    async def _fail(self, suspect: Suspect, now: datetime) -> None:
        silent = self._silence(suspect.last_seen(), now).total_seconds()
        worker_silent = (
            suspect.worker_seen_at is None
            or self._silence(suspect.worker_seen_at, now) > self._timeout
        )
        # A worker that never registered (only tests claim without) has no stream to mark.
        if worker_silent and await self._bus.states.worker(suspect.worker_id) is not None:
            await self._missed(suspect.worker_id, now, suspect.worker_seen_at, suspect)
        await self._bus.operation(
            FailOperation(
                operation_id=suspect.operation_id,
                at=now,
                reason=FailureReason.ORPHANED,
                attempt=suspect.attempt,
                message=(
                    f"worker {suspect.worker_id} went silent on attempt {suspect.attempt} for"
                    f" {silent:.1f}s (timeout {self._timeout.total_seconds():g}s); resume it"
                    " from its last checkpoint"
                ),
            ),
            actor=ORPHAN_DETECTOR,
            idempotency_key=verdict_key(suspect.operation_id, suspect.attempt),
        )
        log.warning("operation %s orphaned (worker %s)", suspect.operation_id, suspect.worker_id)
