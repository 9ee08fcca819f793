"""The Litestar REST app under /api/v1 (OpenAPI at /schema)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from litestar import Litestar, Router, get
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig

from ktrdr import __version__
from ktrdr.api.bootstrap import System, bootstrap, processors
from ktrdr.config import Settings


@get("/health")
async def health(state: State) -> dict[str, Any]:
    system: System = state.system
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
        "processors": {
            r.projection.name: "active" if r.active else "standby" for r in system.runners
        },
    }


def create_app(
    settings: Settings, *, database_url: str | None = None, run_processors: bool = True
) -> Litestar:
    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with bootstrap(settings, database_url=database_url) as system:
            app.state.system = system
            if run_processors:
                async with processors(system):
                    yield
            else:
                yield

    api = Router(path="/api/v1", route_handlers=[health])
    return Litestar(
        route_handlers=[api],
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(title="ktrdr", version=__version__, path="/schema"),
    )
