"""The composition root: one bootstrap for the app, the CLI, the workers and the tests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from psycopg_pool import AsyncConnectionPool

from ktrdr.api import database
from ktrdr.artifacts import ArtifactStore
from ktrdr.config import Settings
from ktrdr.eventlog import PostgresEventLog
from ktrdr.handlers.bus import Clock, CommandBus, utc_now
from ktrdr.handlers.states import ReadModelStates
from ktrdr.projections.base import BoundInline
from ktrdr.projections.registry import catch_up_projections, inline_projections
from ktrdr.projections.runner import CatchUpRunner

log = logging.getLogger(__name__)


@dataclass
class System:
    settings: Settings
    database_url: str
    pool: AsyncConnectionPool[Any]
    event_log: PostgresEventLog
    bus: CommandBus
    artifacts: ArtifactStore
    runners: list[CatchUpRunner] = field(default_factory=list)


def prepare_database(settings: Settings, *, migrate: bool = True) -> str:
    """Resolve (start the embedded server if needed) and migrate the database; returns its URL."""
    url = database.resolve_url(settings)
    if migrate:
        database.migrate(url)
    else:
        database.check_reachable(url)
    return url


@contextlib.asynccontextmanager
async def bootstrap(
    settings: Settings,
    *,
    database_url: str | None = None,
    pool_size: int = 10,
    clock: Clock = utc_now,
) -> AsyncIterator[System]:
    """Open the pool and build the event log; close everything on the way out."""
    url = database_url
    if url is None:
        url = await asyncio.to_thread(prepare_database, settings)
    # Autocommit: a single-statement append is its own transaction; multi-statement
    # work opens an explicit one with conn.transaction().
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        url, min_size=1, max_size=pool_size, kwargs={"autocommit": True}, open=False
    )
    await pool.open(wait=True, timeout=30)
    try:
        event_log = PostgresEventLog(
            pool, inline_projections=[BoundInline(p) for p in inline_projections()]
        )
        bus = CommandBus(event_log, ReadModelStates(event_log, pool), clock)
        yield System(settings, url, pool, event_log, bus, ArtifactStore(settings.artifacts_path))
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def processors(system: System, *, poll_interval: float = 1.0) -> AsyncIterator[None]:
    """Run the catch-up projections (and later the processors) for the lifetime of the block."""
    stop = asyncio.Event()
    system.runners = [
        CatchUpRunner(system.database_url, p, poll_interval=poll_interval)
        for p in catch_up_projections()
    ]
    tasks = [asyncio.create_task(r.run(stop), name=r.projection.name) for r in system.runners]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
