"""An app on this test's own database, driven through Litestar's test client.

The test client runs the app on its own event loop (in a thread); the ``system``
a test drives directly is a second composition on the test's loop, over the same
database and sharing the same clock — psycopg pools must not cross event loops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from ktrdr.api.app import create_app
from ktrdr.bootstrap.system import System, bootstrap
from ktrdr.config import Settings, load_settings
from ktrdr.domain.tokens import Role
from ktrdr.handlers.orphans import OrphanDetector
from ktrdr.handlers.tokens import issue_token


class ShiftedClock:
    """Real time plus an offset a test can move forward."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@pytest.fixture
def clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        database_url=database_url,
        data_dir=tmp_path,
        checkpoint_artifacts_path=tmp_path / "artifacts",
    )


@pytest.fixture
def app(settings: Settings, database_url: str, clock: ShiftedClock) -> Litestar:
    return create_app(settings, database_url=database_url, run_processors=False, clock=clock)


@pytest.fixture
async def admin_token(settings: Settings, database_url: str) -> str:
    return await issue(settings, database_url, "test-admin", Role.ADMIN)


async def issue(
    settings: Settings, database_url: str, name: str, role: Role, worker_id: str | None = None
) -> str:
    """A new token's secret, issued the way `ktrdr tokens create` does."""
    async with bootstrap(settings, database_url=database_url, pool_size=1) as system:
        issued = await issue_token(
            system.event_log,
            system.bus.clock,
            name=name,
            role=role,
            worker_id=worker_id,
            actor="test",
        )
    return issued.token


@pytest.fixture
async def client(app: Litestar, admin_token: str) -> AsyncIterator[AsyncTestClient[Any]]:
    """The app, called as an admin."""
    async with AsyncTestClient(app=app) as client:
        client.headers["Authorization"] = f"Bearer {admin_token}"
        yield client


@pytest.fixture
async def system(
    settings: Settings, database_url: str, clock: ShiftedClock, client: AsyncTestClient[Any]
) -> AsyncIterator[System]:
    async with bootstrap(settings, database_url=database_url, clock=clock, pool_size=4) as system:
        yield system


def watching_detector(system: System, started_at: datetime) -> OrphanDetector:
    """A detector (timeout 60 s, heartbeats every 10 s) for tests that move the clock by
    hand between its ticks: the jumps are time it watched, not stalls to forgive."""
    return OrphanDetector(
        system.bus,
        system.pool,
        timeout_seconds=60,
        heartbeat_interval_seconds=10,
        started_at=started_at,
        stall_seconds=24 * 3600,
    )
