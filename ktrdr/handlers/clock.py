"""The database's clock, read without a round trip per reading.

Liveness timestamps and verdicts must not depend on which backend replica took
them: replicas' clocks drift apart, the database's is one. The clock keeps the
offset between this host's clock and the server's, measured at each sync, and
adds it to every local reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any, LiteralString

import psycopg
from psycopg_pool import AsyncConnectionPool

from ktrdr.handlers.bus import Clock, utc_now

log = logging.getLogger(__name__)

_NOW: LiteralString = "SELECT clock_timestamp()"
SYNC_SECONDS = 10.0


class DatabaseClock:
    def __init__(self, local: Clock = utc_now) -> None:
        self._local = local
        self.offset = timedelta(0)
        """The server's time minus this host's, as of the last sync."""

    def __call__(self) -> datetime:
        return self._local() + self.offset

    async def sync(self, pool: AsyncConnectionPool[Any]) -> None:
        async with pool.connection() as conn:
            sent = self._local()
            cur = await conn.execute(_NOW)
            received = self._local()
            row = await cur.fetchone()
        assert row is not None
        # The server read its clock somewhere in the round trip: take the middle.
        self.offset = row[0] - (sent + (received - sent) / 2)

    async def keep_synced(
        self, pool: AsyncConnectionPool[Any], stop: asyncio.Event, every: float = SYNC_SECONDS
    ) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            if stop.is_set():
                return
            try:
                await self.sync(pool)
            except psycopg.Error as exc:
                log.info("clock sync skipped (the database is away): %s", exc)
