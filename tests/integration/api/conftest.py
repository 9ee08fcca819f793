"""An app on this test's own database, driven through Litestar's test client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from ktrdr.api.app import create_app
from ktrdr.api.bootstrap import System
from ktrdr.config import load_settings


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Litestar:
    settings = load_settings(
        database_url=database_url,
        data_dir=tmp_path,
        checkpoint_artifacts_path=tmp_path / "artifacts",
    )
    return create_app(settings, database_url=database_url, run_processors=False)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(app=app) as client:
        yield client


@pytest.fixture
def system(app: Litestar, client: AsyncTestClient[Any]) -> System:
    found: System = app.state.system
    return found
