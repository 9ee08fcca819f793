"""Waking the claim long-polls when work becomes claimable: LISTEN/NOTIFY, not polling.

An operation becomes claimable when it is created, resumed, or its claim is released.
The command bus then announces its type on ``ktrdr_work``, after the append committed
(with the event log's own notification). Each backend process holds one listening
connection and wakes the long-polls of that type waiting in it; idle workers cost the
database nothing.

Each type has a ticket, replaced at every wake-up. A look for work that found none
marks the ticket: until the next announcement another look would find none either, so
a worker polling again (a new long-poll) waits without querying at all.

A notification can be missed: the listening connection was down, or a NOTIFY failed.
So after every (re)connection everyone waiting is woken once, and while anyone waits
the board looks for claimable work itself every few seconds — one query for the
process, not one per waiting worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, LiteralString

import psycopg
from psycopg import AsyncConnection

from ktrdr.eventlog import PostgresEventLog
from ktrdr.projections.runner import until_stopped

log = logging.getLogger(__name__)

CHANNEL = "ktrdr_work"
_LISTEN: LiteralString = "LISTEN ktrdr_work"
# Per type: whether a worker without CUDA could claim any of it too.
_CLAIMABLE_TYPES: LiteralString = """
SELECT operation_type, bool_or(coalesce(params->>'device', 'auto') <> 'cuda')
FROM operations
WHERE status IN ('pending', 'resuming') AND operation_type = ANY(%(types)s)
GROUP BY operation_type
"""
APPLICATION_NAME = "ktrdr-work-board"
"""How the listening connection shows in pg_stat_activity."""
SWEEP_SECONDS = 5.0
"""The most a missed notification delays a claim."""
STOP_CHECK_SECONDS = 0.25
"""How soon the listener notices it is stopped (waiting for notifications costs no query)."""
RECONNECT_MIN_SECONDS = 0.2
RECONNECT_MAX_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 2


@dataclass(eq=False)
class Ticket:
    """Stands for the announcements of one operation type until the next one."""

    announced: asyncio.Event = field(default_factory=asyncio.Event)
    found_nothing: bool = False
    """A look taken under this ticket found no claimable operation."""


class WorkBoard:
    """Announces claimable work after commit, and wakes this process's long-polls on it."""

    def __init__(self, event_log: PostgresEventLog) -> None:
        self._event_log = event_log
        self._tickets: dict[tuple[str, bool], Ticket] = {}
        """By operation type and whether its waiters have CUDA (they can take more work)."""
        self._backoff = RECONNECT_MIN_SECONDS

    def announce(self, operation_type: str) -> None:
        """An operation of this type just became claimable (its append has committed)."""
        self._event_log.announce(CHANNEL, operation_type)

    def ticket(self, operation_type: str, *, cuda: bool = False) -> Ticket:
        """Announced by the next wake-up of this type. Take it before looking for work: an
        announcement made while the caller looks then ends its wait at once."""
        return self._tickets.setdefault((operation_type, cuda), Ticket())

    def _wake(self, operation_type: str, *, cuda_only: bool = False) -> None:
        for cuda in (True,) if cuda_only else (True, False):
            ticket = self._tickets.pop((operation_type, cuda), None)
            if ticket is not None:
                ticket.announced.set()

    def _wake_all(self) -> None:
        for operation_type, _ in list(self._tickets):
            self._wake(operation_type)

    @contextlib.asynccontextmanager
    async def listening(self) -> AsyncIterator[None]:
        """Listen for announcements for the lifetime of the block."""
        stop = asyncio.Event()
        task = asyncio.create_task(self._listen(stop), name="work_board")
        try:
            yield
        finally:
            stop.set()
            await task

    async def _listen(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await until_stopped(stop, self._session(stop))
            except psycopg.Error as exc:
                log.warning(
                    "work notifications lost (%s); listening again in %.1fs", exc, self._backoff
                )
            await _sleep(stop, self._backoff)
            self._backoff = min(self._backoff * 2, RECONNECT_MAX_SECONDS)

    async def _session(self, stop: asyncio.Event) -> None:
        async with await AsyncConnection.connect(
            self._event_log.conninfo,
            autocommit=True,
            application_name=APPLICATION_NAME,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
        ) as conn:
            await conn.execute(_LISTEN)
            self._backoff = RECONNECT_MIN_SECONDS
            # What was announced while nobody listened here is looked for again.
            self._wake_all()
            loop = asyncio.get_running_loop()
            swept_at = loop.time()
            while not stop.is_set():
                async for notice in conn.notifies(timeout=STOP_CHECK_SECONDS):
                    self._wake(notice.payload)
                if loop.time() - swept_at >= SWEEP_SECONDS:
                    await self._sweep(conn)
                    swept_at = loop.time()

    async def _sweep(self, conn: AsyncConnection[Any]) -> None:
        """Wake the waiting types that have claimable work (a notification was missed)."""
        if not self._tickets:
            return
        types = sorted({operation_type for operation_type, _ in self._tickets})
        cur = await conn.execute(_CLAIMABLE_TYPES, {"types": types})
        for operation_type, any_without_cuda in await cur.fetchall():
            # Queued CUDA work alone must not wake workers without CUDA every sweep.
            self._wake(operation_type, cuda_only=not any_without_cuda)


async def wait_for_work(ticket: Ticket, hangup: asyncio.Future[Any], timeout: float) -> None:
    """Until the ticket is announced, the caller hangs up, or ``timeout`` seconds pass."""
    woken = asyncio.ensure_future(ticket.announced.wait())
    try:
        await asyncio.wait({woken, hangup}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        woken.cancel()


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
