"""Idle claim long-polls wait on LISTEN/NOTIFY: work wakes them at once, waiting costs no query.

The API runs under uvicorn in a thread of this process (a real port, its own event
loop), so a long-poll blocks a thread of the test while the test makes work appear:
through the API, from another System (as another replica would), or without any
announcement at all (a notification that was lost).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, LiteralString

import httpx
import psycopg
import pytest
from psycopg import AsyncConnection

from ktrdr.bootstrap.system import System
from ktrdr.domain import MANUAL, AcknowledgeClaim
from ktrdr.handlers import operations, work_board
from ktrdr.handlers import workers as use_cases
from ktrdr.handlers.bus import CommandBus
from tests.e2e.live_api import LiveApi, live_api
from tests.integration.api import drive

WAIT_SECONDS = 20.0
"""The long-poll: far longer than anything below may take."""
PROMPTLY_SECONDS = 1.0
"""A woken long-poll answers within this (the fallback sweep takes SWEEP_SECONDS)."""
IDLE_SECONDS = 1.5

_LISTENER_PIDS: LiteralString = "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
_LISTENING: LiteralString = (
    "SELECT 1 FROM pg_stat_activity WHERE application_name = %s"
    " AND state = 'idle' AND query = 'LISTEN ktrdr_work'"
)
_TERMINATE: LiteralString = "SELECT pg_terminate_backend(%s)"


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[LiveApi]:
    with live_api(database_url, tmp_path) as api:
        # Listening before any long-poll starts: its first wake-up (everyone, once) is over.
        _wait_for(lambda: _query(database_url, _LISTENING), "the work board to listen")
        yield api


@pytest.fixture
def candidate_queries(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """When the backend looked for claimable operations (every run of its candidates query)."""
    seen: list[float] = []
    execute = AsyncConnection.execute

    async def counting(self: AsyncConnection[Any], query: Any, *args: Any, **kw: Any) -> Any:
        if query == use_cases._CANDIDATES:
            seen.append(time.monotonic())
        return await execute(self, query, *args, **kw)

    monkeypatch.setattr(AsyncConnection, "execute", counting)
    return seen


def register(api: LiveApi, worker_id: str) -> None:
    body = {"worker_id": worker_id, "worker_type": "training", "host": "h", "pid": 1}
    registered = api.post("/workers", {**body, "version": "t"})
    assert registered.status_code == 201, registered.text


class LongPoll:
    """A worker's claim long-poll, in a thread; ``answered_at`` says when its answer came."""

    def __init__(self, api: LiveApi, worker_id: str, wait: float = WAIT_SECONDS) -> None:
        self.url = f"{api.url}/api/v1/workers/{worker_id}/claim"
        self.headers = api.headers
        self.wait = wait
        self.response: httpx.Response | None = None
        self.answered_at = 0.0
        self._thread = threading.Thread(target=self._claim, daemon=True)
        self._thread.start()

    def _claim(self) -> None:
        body = {"wait_seconds": self.wait}
        self.response = httpx.post(
            self.url, json=body, timeout=self.wait + 10, headers=self.headers
        )
        self.answered_at = time.monotonic()

    def answer(self) -> httpx.Response:
        self._thread.join(timeout=self.wait + 15)
        assert self.response is not None
        return self.response

    def claimed(self) -> dict[str, Any]:
        response = self.answer()
        assert response.status_code == 200, response.text
        return dict(response.json())

    @property
    def waiting(self) -> bool:
        return self._thread.is_alive()


def create(api: LiveApi) -> str:
    response = api.post("/operations", {"operation_type": "training"})
    assert response.status_code == 201, response.text
    return str(response.json()["operation_id"])


def test_an_idle_long_poll_costs_no_query_and_new_work_wakes_it_at_once(
    api: LiveApi, candidate_queries: list[float]
) -> None:
    register(api, "w1")
    poll = LongPoll(api, "w1")
    time.sleep(IDLE_SECONDS)
    assert poll.waiting
    assert len(candidate_queries) == 1  # its first look, then nothing while it waits

    created_at = time.monotonic()
    op = create(api)
    claimed = poll.claimed()

    assert claimed["operation_id"] == op and claimed["attempt"] == 1
    assert poll.answered_at - created_at < PROMPTLY_SECONDS
    assert len(candidate_queries) == 2


def test_idle_workers_polling_again_cost_no_query(
    api: LiveApi, candidate_queries: list[float]
) -> None:
    register(api, "w1")
    register(api, "w2")
    for worker_id in ("w1", "w2", "w1", "w2"):
        assert LongPoll(api, worker_id, wait=0.3).answer().status_code == 204
    assert len(candidate_queries) == 1  # nothing was announced since the first look

    op = create(api)
    assert LongPoll(api, "w2", wait=5).claimed()["operation_id"] == op
    assert len(candidate_queries) == 2


def test_a_claim_that_will_not_wait_always_looks(
    api: LiveApi, candidate_queries: list[float]
) -> None:
    register(api, "w1")
    assert LongPoll(api, "w1", wait=0.3).answer().status_code == 204
    op = api.drive(_create_unannounced)
    # No announcement came (or it is still on its way from another replica): it looks.
    assert LongPoll(api, "w1", wait=0).claimed()["operation_id"] == op
    assert len(candidate_queries) == 2


def test_work_from_another_replica_and_a_resume_wake_the_long_poll(api: LiveApi) -> None:
    register(api, "w1")
    register(api, "w2")
    first = LongPoll(api, "w1")
    time.sleep(0.3)
    created_at = time.monotonic()
    op = api.create()  # by a System of the test's own: another replica's command bus
    assert first.claimed()["operation_id"] == op
    assert first.answered_at - created_at < PROMPTLY_SECONDS

    api.drive(lambda system: _fail_with_a_checkpoint(system, op))
    second = LongPoll(api, "w2")
    time.sleep(0.3)
    resumed_at = time.monotonic()
    resumed = api.post(f"/operations/{op}/resume")
    assert resumed.status_code == 200, resumed.text
    claimed = second.claimed()
    assert claimed["operation_id"] == op and claimed["resume_from"]["sequence"] == 1
    assert second.answered_at - resumed_at < PROMPTLY_SECONDS


async def _fail_with_a_checkpoint(system: System, op: str) -> None:
    await drive.as_its_worker(system, op, AcknowledgeClaim)
    await drive.checkpoint(system, op, {"epoch": 1})
    await drive.fail(system, op)


def test_the_listener_comes_back_after_losing_its_connection(
    api: LiveApi, database_url: str
) -> None:
    register(api, "w1")
    [[before]] = _query(database_url, _LISTENER_PIDS)
    _query(database_url, _TERMINATE, before)
    _wait_for(
        lambda: _query(database_url, _LISTENER_PIDS) not in ([], [(before,)]),
        "the work board to listen again",
    )

    poll = LongPoll(api, "w1")
    time.sleep(0.3)
    created_at = time.monotonic()
    op = create(api)
    assert poll.claimed()["operation_id"] == op
    assert poll.answered_at - created_at < PROMPTLY_SECONDS


def _query(database_url: str, query: LiteralString, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute(query, args or (work_board.APPLICATION_NAME,)).fetchall()


def _wait_for(condition: Callable[[], Any], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_work_nobody_announced_is_found_by_the_sweep_before_the_long_poll_ends(
    api: LiveApi,
) -> None:
    register(api, "w1")
    poll = LongPoll(api, "w1")
    time.sleep(0.3)
    created_at = time.monotonic()
    op = api.drive(_create_unannounced)
    claimed = poll.claimed()

    assert claimed["operation_id"] == op
    assert poll.answered_at - created_at < work_board.SWEEP_SECONDS + PROMPTLY_SECONDS


async def _create_unannounced(system: System) -> str:
    """As if its notification were lost: a command bus that announces nothing."""
    silent = CommandBus(
        system.event_log, system.bus.states, system.bus.clock, announce_work=lambda _: None
    )
    state = await operations.create_operation(
        silent, "training", {}, actor="user", retry_policy=MANUAL
    )
    return state.operation_id


def test_queued_cuda_work_wakes_a_worker_without_cuda_once_not_every_sweep(
    api: LiveApi, candidate_queries: list[float]
) -> None:
    register(api, "cpu-1")
    wait = 2 * work_board.SWEEP_SECONDS + 1
    poll = LongPoll(api, "cpu-1", wait=wait)
    time.sleep(0.3)
    response = httpx.post(
        f"{api.url}/api/v1/operations",
        json={"operation_type": "training", "params": {"device": "cuda"}},
        headers=api.headers,
    )
    assert response.status_code == 201, response.text

    assert poll.answer().status_code == 204  # it is not for this worker
    assert len(candidate_queries) == 2  # its first look, and one when the work was announced
