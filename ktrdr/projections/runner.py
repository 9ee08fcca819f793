"""The catch-up projection runner: one active instance per projection, exactly-once output."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import psycopg
from psycopg import AsyncConnection

from ktrdr.eventlog.postgres import Waker, read_all_on
from ktrdr.projections import queries
from ktrdr.projections.base import Projection, live_tables
from ktrdr.projections.positions import advance_position, read_position

log = logging.getLogger(__name__)

BeforeCommit = Callable[[int], Awaitable[None]]

STOP_GRACE_SECONDS = 1.0
"""Once stopped, how long a session may take to end on its own before it is cancelled."""


async def _noop(_: int) -> None:
    return None


class CatchUpRunner:
    """Applies events to a catch-up projection and stores its position in the same transaction.

    It works on one connection that holds a session advisory lock: a second
    runner waits for the lock, and takes over as soon as the first one's
    connection dies (process killed, backend terminated).
    """

    def __init__(
        self,
        conninfo: str,
        projection: Projection,
        *,
        batch_size: int = 1000,
        poll_interval: float = 1.0,
        lock_retry_interval: float = 0.5,
        before_commit: BeforeCommit = _noop,
    ) -> None:
        self.projection = projection
        self._conninfo = conninfo
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._lock_retry = lock_retry_interval
        self._before_commit = before_commit
        self._tables = live_tables(projection)
        self.active = False

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, reconnecting after a lost connection."""
        while not stop.is_set():
            try:
                await until_stopped(stop, self._run_connected(stop))
            except psycopg.OperationalError as exc:
                self.active = False
                log.warning("projection %s lost its connection: %s", self.projection.name, exc)
                await _wait(stop, self._lock_retry)

    async def _run_connected(self, stop: asyncio.Event) -> None:
        async with await AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
            if not await self._acquire(conn, stop):
                return
            self.active = True
            try:
                async with Waker(self._conninfo) as waker:
                    while not stop.is_set():
                        try:
                            applied = await self.run_once(conn)
                        except PositionMoved as exc:
                            log.warning("%s", exc)
                            continue
                        if applied < self._batch_size:
                            await waker.wait(self._poll_interval)
            finally:
                self.active = False

    async def _acquire(self, conn: AsyncConnection[Any], stop: asyncio.Event) -> bool:
        name = {"name": self.projection.name}
        await conn.execute(queries.ENSURE_POSITION, name)
        while not stop.is_set():
            cur = await conn.execute(queries.TRY_LOCK, name)
            row = await cur.fetchone()
            if row and row[0]:
                log.info("projection %s: this runner is active", self.projection.name)
                return True
            await _wait(stop, self._lock_retry)
        return False

    async def run_once(self, conn: AsyncConnection[Any]) -> int:
        """Apply one batch; returns how many events it applied."""
        name = self.projection.name
        async with conn.transaction():
            position = await read_position(conn, name)
            events = await read_all_on(conn, position, self._batch_size)
            if not events:
                return 0
            await self.projection.apply(conn, events, self._tables)
            if not await advance_position(conn, name, position, events[-1].position):
                raise PositionMoved(name)
            await self._before_commit(len(events))
        return len(events)


class PositionMoved(RuntimeError):
    def __init__(self, name: str) -> None:
        super().__init__(f"projection {name}: position moved under the runner; batch rolled back")


async def until_stopped(stop: asyncio.Event, session: Coroutine[Any, Any, None]) -> None:
    """Run ``session``; once ``stop`` is set, give it STOP_GRACE_SECONDS, then cancel it.

    A session notices ``stop`` between statements, but a connect or a query to a database
    that is gone or hung can wait for minutes: that must not hold up shutdown.
    """
    task = asyncio.create_task(session)
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        await asyncio.wait({task}, timeout=STOP_GRACE_SECONDS)
    finally:
        stopping.cancel()
        await _cancel(task)
    if not task.cancelled():
        task.result()


async def _cancel(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait until its connections are closed."""
    task.cancel()
    if not (await asyncio.wait({task}, timeout=STOP_GRACE_SECONDS))[0]:
        # psycopg answers a cancelled query by asking the server to cancel it, then waits
        # for it (10 s in all); a hung server never answers. Cancelled again, it drops
        # the connection at once.
        task.cancel()
        await asyncio.wait({task})


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
