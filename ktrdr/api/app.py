"""The Litestar REST app under /api/v1 (OpenAPI at /schema)."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from litestar import Litestar, Router, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from ktrdr import __version__
from ktrdr.api.bootstrap import bootstrap, processors
from ktrdr.api.deps import SystemDep, provide_system
from ktrdr.api.problems import EXCEPTION_HANDLERS
from ktrdr.api.routes.checkpoints import CheckpointsController
from ktrdr.api.routes.operations import OperationsController
from ktrdr.api.routes.worker_writes import WorkerWritesController
from ktrdr.api.routes.workers import WorkersController
from ktrdr.config import Settings
from ktrdr.handlers.bus import Clock, utc_now

MAX_BODY_BYTES = 16 * 1024 * 1024
"""Checkpoint states (histories, trade logs) are posted as JSON; weights go to artifacts."""


@get("/health", tags=["health"])
async def health(system: SystemDep, state: State) -> dict[str, Any]:
    counters = state.counters
    try:
        async with system.pool.connection(timeout=5) as conn:
            await conn.execute("SELECT 1")
        database_ok = True
    except (psycopg.Error, TimeoutError):
        database_ok = False
    return {
        "status": "ok" if database_ok else "degraded",
        "version": __version__,
        "database": {"reachable": database_ok},
        "processors": system.processor_states(),
        "fencing": {"stale_attempts_refused": counters["stale_attempts_refused"]},
    }


def create_app(
    settings: Settings,
    *,
    database_url: str | None = None,
    run_processors: bool = True,
    clock: Clock = utc_now,
) -> Litestar:
    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with bootstrap(settings, database_url=database_url, clock=clock) as system:
            app.state.system = system
            app.state.counters = Counter({"stale_attempts_refused": 0})
            if run_processors:
                async with processors(system):
                    yield
            else:
                yield

    api = Router(
        path="/api/v1",
        route_handlers=[
            health,
            OperationsController,
            WorkerWritesController,
            CheckpointsController,
            WorkersController,
        ],
        dependencies={"system": Provide(provide_system, sync_to_thread=False)},
    )
    return Litestar(
        route_handlers=[api],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(title="ktrdr", version=__version__, path="/schema"),
    )
