"""Fifty concurrent resume requests for one operation, against a real server on real PostgreSQL:
exactly one 200, the rest 409, one `ResumeRequested` event in the stream."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ktrdr import ADMIN_TOKEN_FILE
from ktrdr.bootstrap.system import bootstrap
from ktrdr.domain import MANUAL
from ktrdr.handlers.operations import create_operation
from tests.e2e.live_api import settings_for
from tests.e2e.test_db_cli import KTRDR, clean_env, free_port
from tests.integration.api import drive

REQUESTS = 50


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[str]:
    """`ktrdr serve` as a process of its own; yields its base URL."""
    port = free_port()
    env = clean_env(KTRDR_DATABASE_URL=database_url, KTRDR_DATA_DIR=str(tmp_path))
    proc = subprocess.Popen(
        [*KTRDR, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _healthy(url):
            assert proc.poll() is None and time.monotonic() < deadline, "server never started"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


async def failed_with_a_checkpoint(database_url: str, tmp_path: Path) -> str:
    settings = settings_for(database_url, tmp_path)
    async with bootstrap(settings, database_url=database_url, pool_size=2) as system:
        state = await create_operation(
            system.bus, "training", {"epochs": 10}, actor="user", retry_policy=MANUAL
        )
        await drive.failed_with_checkpoints(system, state.operation_id, [1, 2])
        return state.operation_id


def admin(tmp_path: Path) -> dict[str, str]:
    """The token the server wrote into its data dir on first start."""
    return {"Authorization": "Bearer " + (tmp_path / ADMIN_TOKEN_FILE).read_text().strip()}


async def resume_all_at_once(url: str, op: str, headers: dict[str, str]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=REQUESTS)
    async with httpx.AsyncClient(
        base_url=url, limits=limits, timeout=60, headers=headers
    ) as client:
        return await asyncio.gather(
            *(client.post(f"/api/v1/operations/{op}/resume") for _ in range(REQUESTS))
        )


def test_fifty_concurrent_resumes_one_wins(server: str, database_url: str, tmp_path: Path) -> None:
    op = asyncio.run(failed_with_a_checkpoint(database_url, tmp_path))
    headers = admin(tmp_path)
    responses = asyncio.run(resume_all_at_once(server, op, headers))

    assert Counter(r.status_code for r in responses) == {200: 1, 409: REQUESTS - 1}
    [winner] = [r.json() for r in responses if r.status_code == 200]
    assert winner["status"] == "resuming" and winner["resumed_from"]["sequence"] == 2
    losers = Counter(r.json()["code"] for r in responses if r.status_code == 409)
    assert losers == {"OPERATION_NOT_RESUMABLE": REQUESTS - 1}

    events = httpx.get(
        f"{server}/api/v1/operations/{op}/events", timeout=10, headers=headers
    ).json()["items"]
    assert [e["event_type"] for e in events].count("ResumeRequested") == 1
    assert events[-1]["event_type"] == "ResumeRequested"
    operation = httpx.get(f"{server}/api/v1/operations/{op}", timeout=10, headers=headers).json()
    assert operation["status"] == "resuming" and operation["resumable"] is False
