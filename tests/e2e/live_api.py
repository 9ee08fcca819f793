"""A real ktrdr API on a real port, for CLI tests, and a way to drive its operations.

The server runs under uvicorn in a background thread (its own event loop). Tests
move operations through their lifecycle with real commands on a short-lived
System of their own (``LiveApi.drive``), as workers would; the read models are
written inline, so the server sees each change as soon as the command returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from litestar import Litestar

from ktrdr.api.app import create_app
from ktrdr.bootstrap.system import System, bootstrap
from ktrdr.config import Settings, load_settings
from ktrdr.domain import MANUAL
from ktrdr.domain.tokens import Role
from ktrdr.handlers import operations as use_cases
from ktrdr.handlers.tokens import issue_token

T = TypeVar("T")


@dataclass
class LiveApi:
    url: str
    app: Litestar
    settings: Settings
    database_url: str
    token: str = ""
    """An admin token, also in $KTRDR_DATA_DIR/admin-token as `ktrdr serve` writes it."""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def drive(self, action: Callable[[System], Awaitable[T]]) -> T:
        """Run ``action`` on a System of this test's own, in a fresh event loop."""

        async def run() -> T:
            async with bootstrap(
                self.settings, database_url=self.database_url, pool_size=2
            ) as system:
                return await action(system)

        return asyncio.run(run())

    def create(self, operation_type: str = "training", **kwargs: Any) -> str:
        async def create(system: System) -> str:
            state = await use_cases.create_operation(
                system.bus, operation_type, {}, actor="user", retry_policy=MANUAL, **kwargs
            )
            return state.operation_id

        return self.drive(create)

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}/api/v1{path}", timeout=10, headers=self.headers)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("timeout", 10)
        return httpx.post(f"{self.url}/api/v1{path}", json=json, headers=self.headers, **kwargs)

    def issue_admin_token(self) -> None:
        async def issue(system: System) -> str:
            issued = await issue_token(
                system.event_log, system.bus.clock, name="test-admin", role=Role.ADMIN, actor="test"
            )
            return issued.token

        self.token = self.drive(issue)
        self.settings.admin_token_path.write_text(self.token + "\n")


def settings_for(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        database_url=database_url,
        data_dir=tmp_path,
        checkpoint_artifacts_path=tmp_path / "artifacts",
    )


def _wait_until_healthy(url: str, thread: threading.Thread) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and thread.is_alive():
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"the test API at {url} never answered /api/v1/health")


@contextlib.contextmanager
def live_api(database_url: str, tmp_path: Path) -> Iterator[LiveApi]:
    """Serve the app on a free 127.0.0.1 port until the block ends."""
    settings = settings_for(database_url, tmp_path)
    app = create_app(settings, database_url=database_url, run_processors=False)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(app, log_level="warning", ws="none", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        _wait_until_healthy(url, thread)
        live = LiveApi(url, app, settings, database_url)
        live.issue_admin_token()
        yield live
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
