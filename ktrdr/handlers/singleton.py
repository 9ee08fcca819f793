"""A periodic processor of which one instance is active across backend replicas."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, LiteralString

import psycopg
from psycopg import AsyncConnection

from ktrdr.projections.runner import until_stopped

log = logging.getLogger(__name__)

_TRY_LOCK: LiteralString = (
    "SELECT pg_try_advisory_lock(hashtextextended('ktrdr.processor.' || %(name)s, 0))"
)


class SingletonProcessor:
    """Runs ``tick`` every ``interval`` seconds while it holds the processor's advisory lock.

    The lock is a session lock on a dedicated connection: when this process or
    its connection dies, another replica's instance takes over within its
    lock retry interval.
    """

    def __init__(
        self,
        name: str,
        conninfo: str,
        tick: Callable[[], Awaitable[Any]],
        *,
        interval: float,
        lock_retry_interval: float = 1.0,
        first_after: float | Callable[[], Awaitable[float]] = 0.0,
    ) -> None:
        """``first_after``: seconds between taking the lock and the first tick, or what
        says how many when the lock is taken (a schedule kept elsewhere)."""
        self.name = name
        self._conninfo = conninfo
        self._tick = tick
        self._interval = interval
        self._lock_retry = lock_retry_interval
        self._first_after = first_after
        self.active = False

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await until_stopped(stop, self._session(stop))
            except psycopg.OperationalError as exc:
                log.warning("processor %s lost its connection: %s", self.name, exc)
            finally:
                self.active = False
            await _sleep(stop, self._lock_retry)

    async def _session(self, stop: asyncio.Event) -> None:
        async with await AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
            if await self._acquire(conn, stop):
                await self._loop(conn, stop)

    async def _acquire(self, conn: AsyncConnection[Any], stop: asyncio.Event) -> bool:
        while not stop.is_set():
            cur = await conn.execute(_TRY_LOCK, {"name": self.name})
            row = await cur.fetchone()
            if row and row[0]:
                log.info("processor %s: this instance is active", self.name)
                return True
            await _sleep(stop, self._lock_retry)
        return False

    async def _loop(self, conn: AsyncConnection[Any], stop: asyncio.Event) -> None:
        self.active = True
        first = self._first_after
        await _sleep(stop, first if isinstance(first, int | float) else await first())
        while not stop.is_set():
            await conn.execute("SELECT 1")  # still holding the lock: the session is alive
            try:
                await self._tick()
            except psycopg.OperationalError:
                raise
            except Exception:
                # A failing processor is logged and retried; it never takes the backend down.
                log.exception("processor %s failed; retrying next tick", self.name)
            await _sleep(stop, self._interval)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
