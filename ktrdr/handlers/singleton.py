"""A periodic processor of which one instance is active across backend replicas."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, LiteralString

import psycopg
from psycopg import AsyncConnection

from ktrdr.projections.runner import AdvisoryLeader

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
        self._tick = tick
        self._interval = interval
        self._first_after = first_after
        self._leader = AdvisoryLeader(
            f"processor {name}", conninfo, _TRY_LOCK, name, retry_interval=lock_retry_interval
        )

    @property
    def active(self) -> bool:
        return self._leader.active

    async def run(self, stop: asyncio.Event) -> None:
        async def loop(conn: AsyncConnection[Any]) -> None:
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

        await self._leader.run(stop, loop)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
