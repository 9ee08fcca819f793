"""The composition root: one bootstrap for the app, the CLI, the workers and the tests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from ktrdr.artifacts import ArtifactStore
from ktrdr.bootstrap import database
from ktrdr.config import Settings
from ktrdr.eventlog import PostgresEventLog
from ktrdr.handlers import agent_research, cleanup
from ktrdr.handlers.bus import Clock, CommandBus
from ktrdr.handlers.cleanup import CleanupReport, run_cleanup
from ktrdr.handlers.clock import DatabaseClock
from ktrdr.handlers.orphans import OrphanDetector
from ktrdr.handlers.reactor import Reactor
from ktrdr.handlers.retries import RetryProcessor
from ktrdr.handlers.singleton import SingletonProcessor
from ktrdr.handlers.states import ReadModelStates
from ktrdr.handlers.work_board import WorkBoard
from ktrdr.projections.base import BoundInline
from ktrdr.projections.registry import catch_up_projections, inline_projections
from ktrdr.projections.runner import CatchUpRunner, until_stopped

log = logging.getLogger(__name__)


@dataclass
class System:
    settings: Settings
    database_url: str
    pool: AsyncConnectionPool[Any]
    event_log: PostgresEventLog
    bus: CommandBus
    artifacts: ArtifactStore
    work: WorkBoard
    runners: list[CatchUpRunner] = field(default_factory=list)
    processors: list[SingletonProcessor] = field(default_factory=list)

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
    clock: Clock | None = None,
) -> AsyncIterator[System]:
    """Open the pool and build the event log; close everything on the way out.

    ``clock`` (tests move one by hand) defaults to the database's clock."""
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
        check=_check_connection,
        open=False,
    )
    await pool.open(wait=True, timeout=30)
    try:
        event_log = PostgresEventLog(
            pool, inline_projections=[BoundInline(p) for p in inline_projections()]
        )
        try:
            async with _clock(pool, clock) as now:
                work = WorkBoard(event_log)
                states = ReadModelStates(event_log, pool)
                bus = CommandBus(event_log, states, now, announce_work=work.announce)
                artifacts = ArtifactStore(settings.artifacts_path)
                yield System(settings, url, pool, event_log, bus, artifacts, work)
        finally:
            await event_log.aclose()
    finally:
        await pool.close()


async def _check_connection(conn: AsyncConnection[Any]) -> None:
    """A round trip only when the server spoke first: an idle connection's socket stays
    silent until the server closes it (a restart, a crash, a terminated backend). A round
    trip on every checkout was a seventh of a heartbeat's time in the backend."""
    poller = select.poll()
    poller.register(conn.pgconn.socket, select.POLLIN)
    if poller.poll(0):
        await AsyncConnectionPool.check_connection(conn)


@contextlib.asynccontextmanager
async def _clock(pool: AsyncConnectionPool[Any], given: Clock | None) -> AsyncIterator[Clock]:
    """The clock every timestamp and verdict uses: the database's, kept in sync."""
    if given is not None:
        yield given
        return
    clock = DatabaseClock()
    await clock.sync(pool)
    stop = asyncio.Event()
    syncing = asyncio.create_task(
        until_stopped(stop, clock.keep_synced(pool, stop)), name="database_clock"
    )
    try:
        yield clock
    finally:
        stop.set()
        await syncing


ORPHAN_CHECK_SECONDS = 0.5
"""How often the orphan detector looks (at most): detection lands within timeout + this."""
RESEARCH_TICK_SECONDS = 0.5
"""How often the agent research manager reads the log (and touches its liveness rows)."""
RETRY_POLL_SECONDS = 0.1
"""How often the retry processor looks for stops, due retries and passed deadlines."""
RETENTION_POLL_SECONDS = 0.1
"""How soon after a checkpoint is saved the ones it supersedes are deleted."""


async def scheduled_cleanup(system: System) -> CleanupReport:
    report = await run_cleanup(
        system.bus,
        system.pool,
        system.artifacts,
        max_age_days=system.settings.checkpoint_max_age_days,
        now=system.bus.clock(),
        actor=cleanup.CLEANUP,
    )
    log.info("checkpoint cleanup: %s", report.as_json())
    return report


def orphan_check_seconds(settings: Settings) -> float:
    """Often enough that an unacknowledged claim is back in the queue within two heartbeat
    intervals, and an orphan failed within its timeout plus a fraction."""
    return min(
        ORPHAN_CHECK_SECONDS,
        settings.orphan_timeout_seconds / 4,
        settings.heartbeat_interval_seconds / 4,
    )


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
    check_every = orphan_check_seconds(settings)
    orphans = OrphanDetector(
        system.bus,
        system.pool,
        timeout_seconds=settings.orphan_timeout_seconds,
        heartbeat_interval_seconds=settings.heartbeat_interval_seconds,
        started_at=system.bus.clock(),
        tick_seconds=check_every,
    )
    completion = Reactor(
        "completion_cleanup",
        system.pool,
        system.event_log,
        cleanup.delete_on_completion(system.bus, system.artifacts),
    )
    retention = Reactor(
        "checkpoint_retention",
        system.pool,
        system.event_log,
        cleanup.retain_newest(system.bus, system.artifacts, settings.checkpoint_keep),
    )
    cleanup_every = settings.checkpoint_cleanup_interval_hours * 3600

    async def cleanup_due_in() -> float:
        return await cleanup.first_run_in(
            system.pool, system.bus.clock(), interval_seconds=cleanup_every
        )

    system.processors = [
        SingletonProcessor(
            "orphan_detector", system.database_url, orphans.tick, interval=check_every
        ),
        SingletonProcessor(
            "completion_cleanup", system.database_url, completion.tick, interval=poll_interval
        ),
        SingletonProcessor(
            "checkpoint_retention",
            system.database_url,
            retention.tick,
            interval=min(poll_interval, RETENTION_POLL_SECONDS),
        ),
        SingletonProcessor(
            "retry_processor",
            system.database_url,
            RetryProcessor(system.bus, system.pool, system.event_log, system.artifacts).tick,
            interval=min(poll_interval, RETRY_POLL_SECONDS),
        ),
        # Scheduled from the last run the log records: an overdue cleanup starts at once.
        SingletonProcessor(
            "checkpoint_cleanup",
            system.database_url,
            lambda: scheduled_cleanup(system),
            interval=cleanup_every,
            first_after=cleanup_due_in,
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
