"""The catch-up projection runner: one active instance per projection, exactly-once output."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, LiteralString

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
        self._before_commit = before_commit
        self._tables = live_tables(projection)
        self._leader = AdvisoryLeader(
            f"projection {projection.name}",
            conninfo,
            queries.TRY_LOCK,
            projection.name,
            retry_interval=lock_retry_interval,
            prepare=self._ensure_position,
        )

    @property
    def active(self) -> bool:
        return self._leader.active

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, reconnecting after a lost connection."""

        async def follow(conn: AsyncConnection[Any]) -> None:
            async with Waker(self._conninfo) as waker:
                while not stop.is_set():
                    try:
                        applied = await self.run_once(conn)
                    except PositionMoved as exc:
                        log.warning("%s", exc)
                        continue
                    if applied < self._batch_size:
                        await waker.wait(self._poll_interval)

        await self._leader.run(stop, follow)

    async def _ensure_position(self, conn: AsyncConnection[Any]) -> None:
        await conn.execute(queries.ENSURE_POSITION, {"name": self.projection.name})

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


class AdvisoryLeader:
    """Runs ``work`` on a dedicated connection while that connection holds a session
    advisory lock: one holder across every replica, and when the holder's process or
    connection dies another instance takes over within ``retry_interval``."""

    def __init__(
        self,
        what: str,
        conninfo: str,
        try_lock: LiteralString,
        name: str,
        *,
        retry_interval: float,
        prepare: Callable[[AsyncConnection[Any]], Awaitable[None]] | None = None,
    ) -> None:
        """``try_lock``: takes ``%(name)s``, answers one boolean; ``prepare`` runs on each
        new connection before it asks for the lock."""
        self.what = what
        self._conninfo = conninfo
        self._try_lock = try_lock
        self._name = name
        self._retry = retry_interval
        self._prepare = prepare
        self.active = False

    async def run(
        self, stop: asyncio.Event, work: Callable[[AsyncConnection[Any]], Awaitable[None]]
    ) -> None:
        """Until ``stop`` is set: connect, wait for the lock, ``work``; again after a lost
        connection."""
        while not stop.is_set():
            try:
                await until_stopped(stop, self._session(stop, work))
            except psycopg.OperationalError as exc:
                log.warning("%s lost its connection: %s", self.what, exc)
            finally:
                self.active = False
            await _wait(stop, self._retry)

    async def _session(
        self, stop: asyncio.Event, work: Callable[[AsyncConnection[Any]], Awaitable[None]]
    ) -> None:
        async with await AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
            if self._prepare is not None:
                await self._prepare(conn)
            while not stop.is_set():
                cur = await conn.execute(self._try_lock, {"name": self._name})
                row = await cur.fetchone()
                if row and row[0]:
                    log.info("%s: this instance is active", self.what)
                    self.active = True
                    await work(conn)
                    return
                await _wait(stop, self._retry)


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
