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
from ktrdr.handlers import agent_research
from ktrdr.handlers.bus import Clock, CommandBus, utc_now
from ktrdr.handlers.cleanup import CleanupReport, delete_on_completion, run_cleanup
from ktrdr.handlers.orphans import OrphanDetector
from ktrdr.handlers.reactor import Reactor
from ktrdr.handlers.singleton import SingletonProcessor
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
    processors: list[SingletonProcessor] = field(default_factory=list)
    orphans: OrphanDetector | None = None

    def processor_states(self) -> dict[str, str]:
        states = {r.projection.name: "active" if r.active else "standby" for r in self.runners}
        states.update({p.name: "active" if p.active else "standby" for p in self.processors})
        return states


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
    # work opens an explicit one with conn.transaction(). Each checkout is checked, so
    # connections broken by a database restart are replaced instead of failing requests.
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        url,
        min_size=1,
        max_size=pool_size,
        kwargs={"autocommit": True, "connect_timeout": database.CONNECT_TIMEOUT_SECONDS},
        timeout=database.POOL_TIMEOUT_SECONDS,
        reconnect_timeout=database.RECONNECT_TIMEOUT_SECONDS,
        check=AsyncConnectionPool.check_connection,
        open=False,
    )
    await pool.open(wait=True, timeout=30)
    try:
        event_log = PostgresEventLog(
            pool, inline_projections=[BoundInline(p) for p in inline_projections()]
        )
        bus = CommandBus(event_log, ReadModelStates(event_log, pool), clock)
        try:
            yield System(
                settings, url, pool, event_log, bus, ArtifactStore(settings.artifacts_path)
            )
        finally:
            await event_log.aclose()
    finally:
        await pool.close()


ORPHAN_CHECK_SECONDS = 0.5
"""How often the orphan detector looks: detection lands within timeout + this + a commit."""
RESEARCH_TICK_SECONDS = 0.5
"""How often the agent research manager reads the log (and touches its liveness row)."""


async def scheduled_cleanup(system: System) -> CleanupReport:
    report = await run_cleanup(
        system.bus,
        system.pool,
        system.artifacts,
        max_age_days=system.settings.checkpoint_max_age_days,
        now=system.bus.clock(),
    )
    log.info("checkpoint cleanup: %s", report.as_json())
    return report


@contextlib.asynccontextmanager
async def processors(system: System, *, poll_interval: float = 1.0) -> AsyncIterator[None]:
    """Run the catch-up projections and the processors for the lifetime of the block.

    Each processor is active in one backend replica at a time (advisory locks).
    """
    stop = asyncio.Event()
    settings = system.settings
    system.runners = [
        CatchUpRunner(system.database_url, p, poll_interval=poll_interval)
        for p in catch_up_projections()
    ]
    system.orphans = OrphanDetector(
        system.bus,
        system.pool,
        timeout_seconds=settings.orphan_timeout_seconds,
        started_at=system.bus.clock(),
    )
    completion = Reactor(
        "completion_cleanup",
        system.pool,
        system.event_log,
        delete_on_completion(system.bus, system.artifacts),
    )
    cleanup_every = settings.checkpoint_cleanup_interval_hours * 3600
    system.processors = [
        SingletonProcessor(
            "orphan_detector",
            system.database_url,
            system.orphans.tick,
            interval=min(ORPHAN_CHECK_SECONDS, settings.orphan_timeout_seconds / 4),
        ),
        SingletonProcessor(
            "completion_cleanup", system.database_url, completion.tick, interval=poll_interval
        ),
        # The first cleanup runs one interval after start, not at once (unlike the reference).
        SingletonProcessor(
            "checkpoint_cleanup",
            system.database_url,
            lambda: scheduled_cleanup(system),
            interval=cleanup_every,
            first_after=cleanup_every,
        ),
    ]
    research = agent_research.AgentResearchManager(system.bus, system.pool, system.event_log)
    # Its tick also keeps the manager's liveness row fresh, well within the orphan timeout.
    research_every = min(RESEARCH_TICK_SECONDS, settings.orphan_timeout_seconds / 4)
    system.processors.append(
        SingletonProcessor(
            agent_research.NAME, system.database_url, research.tick, interval=research_every
        )
    )
    tasks = [asyncio.create_task(r.run(stop), name=r.projection.name) for r in system.runners]
    tasks += [asyncio.create_task(p.run(stop), name=p.name) for p in system.processors]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
