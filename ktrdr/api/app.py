"""The Litestar REST app under /api/v1 (OpenAPI at /schema)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, LiteralString

import psycopg
from litestar import Litestar, Response, Router, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin, RedocRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from psycopg_pool import AsyncConnectionPool

from ktrdr import __version__
from ktrdr.api.auth import authorize
from ktrdr.api.dashboard import dashboard
from ktrdr.api.deps import SystemDep, provide_system
from ktrdr.api.problems import EXCEPTION_HANDLERS
from ktrdr.api.routes.checkpoints import CheckpointsController
from ktrdr.api.routes.operation_types import OperationTypesController
from ktrdr.api.routes.operations import OperationsController
from ktrdr.api.routes.worker_writes import WorkerWritesController
from ktrdr.api.routes.workers import WorkersController
from ktrdr.bootstrap import database
from ktrdr.bootstrap.system import bootstrap, processors
from ktrdr.bootstrap.tokens import write_first_admin_token
from ktrdr.config import Settings
from ktrdr.contracts import Health
from ktrdr.handlers.bus import Clock
from ktrdr.handlers.tokens import Authenticator

MAX_BODY_BYTES = 16 * 1024 * 1024
"""Checkpoint states (histories, trade logs) are posted as JSON; weights go to artifacts."""


OPENAPI_ASSETS = Path(__file__).parent / "static" / "openapi"
OPENAPI_ASSETS_PATH = "/schema/static"

HEALTH_TIMEOUT_SECONDS = 1.5
"""The database check's budget: health answers within it even when a server hangs."""
_PING: LiteralString = "SELECT 1"


_UNHEALTHY = ResponseSpec(
    Health, description="The database cannot be reached", generate_examples=False
)


@get(
    "/health",
    tags=["health"],
    security=[{}],
    responses={HTTP_503_SERVICE_UNAVAILABLE: _UNHEALTHY},
)
async def health(system: SystemDep, state: State) -> Response[Health]:
    """200 "ok", or 503 "unavailable" while the database cannot be reached."""
    counters = state.counters
    database_ok = await _database_reachable(system.pool)
    body = Health.model_validate(
        {
            "status": "ok" if database_ok else "unavailable",
            "version": __version__,
            "database": {"reachable": database_ok},
            "processors": system.processor_states(),
            "fencing": {"stale_attempts_refused": counters["stale_attempts_refused"]},
        }
    )
    return Response(body, status_code=HTTP_200_OK if database_ok else HTTP_503_SERVICE_UNAVAILABLE)


async def _database_reachable(pool: AsyncConnectionPool[Any]) -> bool:
    ping = asyncio.create_task(_ping(pool))
    # Not awaited once cancelled: psycopg then asks the server to cancel the query and
    # waits for it (10 s in all), and a hung server never answers.
    done, _ = await asyncio.wait({ping}, timeout=HEALTH_TIMEOUT_SECONDS)
    if not done:
        ping.cancel()
        return False
    return ping.result()


async def _ping(pool: AsyncConnectionPool[Any]) -> bool:
    try:
        async with pool.connection() as conn:
            await conn.execute(_PING)
    except psycopg.Error:
        return False
    return True


def create_app(
    settings: Settings,
    *,
    database_url: str | None = None,
    run_processors: bool = True,
    clock: Clock | None = None,
    embedded_pgdata: Path | None = None,
    admin_token_file: Path | None = None,
) -> Litestar:
    """``embedded_pgdata``: the embedded PostgreSQL this process started, restarted if it dies.
    ``admin_token_file``: where to write an admin token when the database has none."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with (
            bootstrap(settings, database_url=database_url, clock=clock) as system,
            database.supervised(embedded_pgdata),
            system.work.listening(),
        ):
            app.state.system = system
            app.state.authenticator = Authenticator(system.pool, system.bus.clock)
            if admin_token_file is not None:
                await write_first_admin_token(system, admin_token_file)
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
            OperationTypesController,
            WorkerWritesController,
            CheckpointsController,
            WorkersController,
        ],
        dependencies={"system": Provide(provide_system, sync_to_thread=False)},
    )
    assets = create_static_files_router(
        path=OPENAPI_ASSETS_PATH,
        directories=[OPENAPI_ASSETS],
        include_in_schema=False,
        send_as_attachment=False,
    )
    return Litestar(
        route_handlers=[api, assets, dashboard],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        guards=[authorize],
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(
            title="ktrdr",
            version=__version__,
            path="/schema",
            render_plugins=[
                # Served from the package: the docs page must work with no network.
                RedocRenderPlugin(
                    path=["/", "/redoc"],
                    js_url=f"{OPENAPI_ASSETS_PATH}/redoc.standalone.js",
                    google_fonts=False,
                    favicon="",
                ),
                JsonRenderPlugin(),
            ],
            components=Components(
                security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")}
            ),
            security=[{"bearer": []}],
        ),
    )
