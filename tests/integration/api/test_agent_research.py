"""The agent research process manager on real PostgreSQL, driven through the REST API.

The test plays the workers over the same HTTP endpoints real workers use, and
ticks the manager itself (as the backend's processor would), so a whole study,
a cancel and resume, a backend restart and a failure each run in about a second.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from ktrdr.api.app import create_app
from ktrdr.bootstrap.system import System
from ktrdr.domain import MANAGER_ID
from ktrdr.handlers.agent_research import NAME, AgentResearchManager
from tests.integration.api.conftest import ShiftedClock, watching_detector
from tests.integration.api.test_operations_api import API, assert_problem
from tests.unit.research_world import GOOD_BACKTEST, TRAINED

pytestmark = pytest.mark.anyio
Client = AsyncTestClient[Any]


@dataclass
class Worker:
    """A worker of one type, played over the worker endpoints."""

    client: Client
    worker_type: str

    @property
    def worker_id(self) -> str:
        return f"{self.worker_type}-test"

    async def register(self) -> Worker:
        body = {"worker_id": self.worker_id, "worker_type": self.worker_type}
        response = await self.client.post(
            f"{API}/workers", json={**body, "host": "h", "pid": 1, "version": "test"}
        )
        assert response.status_code == 201, response.text
        return self

    async def claim(self) -> dict[str, Any]:
        response = await self.client.post(
            f"{API}/workers/{self.worker_id}/claim", json={"wait_seconds": 0}
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def write(self, claim: dict[str, Any], what: str, **fields: Any) -> None:
        body = {"worker_id": self.worker_id, "attempt": claim["attempt"], **fields}
        response = await self.client.post(
            f"{API}/operations/{claim['operation_id']}/{what}", json=body
        )
        assert response.status_code in (200, 201), response.text

    async def checkpoint(self, claim: dict[str, Any], kind: str = "periodic", **state: Any) -> None:
        await self.write(claim, "checkpoints", checkpoint_type=kind, state=state)

    async def run(self, result: dict[str, Any], **state: Any) -> str:
        claim = await self.claim()
        await self.checkpoint(claim, **state)
        await self.write(claim, "complete", result=result)
        return str(claim["operation_id"])


@pytest.fixture
def manager(system: System) -> AgentResearchManager:
    return AgentResearchManager(system.bus, system.pool, system.event_log)


async def start(client: Client, **params: Any) -> str:
    body = {"operation_type": "agent_research", "params": {"seed": 7, **params}}
    response = await client.post(f"{API}/operations", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["operation_id"])


async def operation(client: Client, op: str) -> dict[str, Any]:
    return dict((await client.get(f"{API}/operations/{op}")).json())


async def children(client: Client, op: str) -> list[dict[str, Any]]:
    page = (await client.get(f"{API}/operations", params={"parent_operation_id": op})).json()
    return sorted(page["items"], key=lambda o: o["created_at"])


async def event_types(client: Client, op: str) -> list[str]:
    items = (await client.get(f"{API}/operations/{op}/events")).json()["items"]
    return [e["event_type"] for e in items]


async def checkpoint_phases(client: Client, op: str) -> list[tuple[str, str]]:
    items = (await client.get(f"{API}/checkpoints/{op}/history")).json()["items"]
    return [(c["checkpoint_type"], c["state"]["phase"]) for c in reversed(items)]


async def test_a_full_run_designs_trains_backtests_and_assesses(
    client: Client, system: System, manager: AgentResearchManager
) -> None:
    trainer = await Worker(client, "training").register()
    tester = await Worker(client, "backtesting").register()
    op = await start(client, min_sharpe=1.0)
    await manager.tick()
    [training] = await children(client, op)
    assert training["status"] == "pending" and training["params"]["seed"] == 7
    running = await operation(client, op)
    assert (running["status"], running["worker_id"]) == ("running", MANAGER_ID)
    assert running["checkpoint"]["summary"] == "phase training"
    assert running["progress"]["current_step"] == "training"

    await trainer.run(TRAINED, epoch=4)
    await manager.tick()
    await tester.run(GOOD_BACKTEST, bar_index=1500)
    await manager.tick()

    done = await operation(client, op)
    assert done["status"] == "completed" and done["progress"]["current_step"] == "completed"
    result = done["result"]
    assert result["verdict"] == "accepted" and len(result["reasons"]) == 3
    assert result["metrics"] == GOOD_BACKTEST
    kids = await children(client, op)
    assert [(k["operation_type"], k["status"]) for k in kids] == [
        ("training", "completed"),
        ("backtesting", "completed"),
    ]
    assert result["training_operation_id"] == kids[0]["operation_id"]
    assert result["backtest_operation_id"] == kids[1]["operation_id"]
    assert await checkpoint_phases(client, op) == [
        ("periodic", "training"),
        ("periodic", "backtesting"),
        ("periodic", "assessing"),
    ]
    workers = (await client.get(f"{API}/workers")).json()["items"]
    assert MANAGER_ID in {w["worker_id"] for w in workers}


async def test_cancel_during_training_then_resume_continues_the_child(
    client: Client, system: System, manager: AgentResearchManager
) -> None:
    trainer = await Worker(client, "training").register()
    op = await start(client)
    await manager.tick()
    claim = await trainer.claim()
    await trainer.checkpoint(claim, epoch=2)

    assert (await client.post(f"{API}/operations/{op}/cancel")).status_code == 200
    await manager.tick()
    assert (await children(client, op))[0]["cancellation_requested"]
    await trainer.checkpoint(claim, "cancellation", epoch=3)
    await trainer.write(claim, "cancelled", reason="cancellation")
    await manager.tick()
    cancelled = await operation(client, op)
    assert cancelled["status"] == "cancelled" and cancelled["resumable"]
    history = (await client.get(f"{API}/checkpoints/{op}/history")).json()["items"]
    assert history[0]["checkpoint_type"] == "cancellation"
    assert history[0]["state"]["training_checkpoint_epoch"] == 3

    assert (await client.post(f"{API}/operations/{op}/resume")).status_code == 200
    await manager.tick()
    assert (await operation(client, op))["attempt"] == 2
    again = await trainer.claim()
    assert again["operation_id"] == claim["operation_id"] and again["attempt"] == 2
    assert again["resume_from"]["checkpoint_type"] == "cancellation"
    assert again["resume_from"]["state"]["epoch"] == 3
    await trainer.write(again, "complete", result=TRAINED)
    await manager.tick()
    await (await Worker(client, "backtesting").register()).run(GOOD_BACKTEST, bar_index=9)
    await manager.tick()
    assert (await operation(client, op))["status"] == "completed"
    assert len(await children(client, op)) == 2


async def test_a_restarted_backend_continues_without_running_a_phase_twice(
    client: Client, system: System, manager: AgentResearchManager
) -> None:
    await Worker(client, "training").register()
    op = await start(client)
    await manager.tick()
    await Worker(client, "training").run(TRAINED, epoch=4)
    await manager.tick()
    tester = await Worker(client, "backtesting").register()
    claim = await tester.claim()
    before = await event_types(client, op)

    # A new backend: a fresh manager, and a position that lost its last batch.
    async with system.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT global_position FROM projection_positions WHERE name = %s", (NAME,)
        )
        assert (await cur.fetchone() or (0,))[0] > 0
        await conn.execute("DELETE FROM projection_positions WHERE name = %s", (NAME,))
    restarted = AgentResearchManager(system.bus, system.pool, system.event_log)
    await restarted.tick()
    assert await event_types(client, op) == before
    await tester.write(claim, "complete", result=GOOD_BACKTEST)
    await restarted.tick()

    assert (await operation(client, op))["status"] == "completed"
    kids = await children(client, op)
    assert sorted(k["operation_type"] for k in kids) == ["backtesting", "training"]
    assert all(k["attempt"] == 1 for k in kids)
    assert [p for _, p in await checkpoint_phases(client, op)] == [
        "training",
        "backtesting",
        "assessing",
    ]


async def test_two_replicas_reacting_at_once_do_each_thing_once(
    client: Client, system: System
) -> None:
    replicas = [AgentResearchManager(system.bus, system.pool, system.event_log) for _ in "ab"]
    op = await start(client)
    for _ in range(3):
        await asyncio.gather(*(r.advance(op) for r in replicas))
    await (await Worker(client, "training").register()).run(TRAINED, epoch=4)
    for _ in range(3):
        await asyncio.gather(*(r.advance(op) for r in replicas))
    kids = await children(client, op)
    assert [k["operation_type"] for k in kids] == ["training", "backtesting"]
    assert [p for _, p in await checkpoint_phases(client, op)] == ["training", "backtesting"]
    assert (await event_types(client, op)).count("OperationClaimed") == 1


async def test_a_failed_child_fails_the_research_resumably(
    client: Client, system: System, manager: AgentResearchManager
) -> None:
    trainer = await Worker(client, "training").register()
    op = await start(client)
    await manager.tick()
    claim = await trainer.claim()
    await trainer.checkpoint(claim, "failure", epoch=1)
    await trainer.write(claim, "fail", message="fail_at_epoch 1 reached")
    await manager.tick()

    failed = await operation(client, op)
    assert failed["status"] == "failed" and failed["resumable"]
    assert failed["error"]["reason"] == "error"
    child = claim["operation_id"]
    assert failed["error"]["message"] == (
        f"training operation {child} failed (error): fail_at_epoch 1 reached"
    )
    assert (await client.post(f"{API}/operations/{op}/resume")).status_code == 200
    await manager.tick()
    assert (await operation(client, child))["status"] == "resuming"
    assert (await trainer.claim())["attempt"] == 2


async def test_the_orphan_detector_judges_research_by_the_managers_liveness(
    client: Client, system: System, manager: AgentResearchManager, clock: ShiftedClock
) -> None:
    op = await start(client)
    await manager.tick()
    detector = watching_detector(system, clock() - timedelta(hours=1))
    for _ in range(3):
        clock.advance(seconds=45)
        await manager.tick()  # each tick touches the manager's liveness row
        assert await detector.tick() == []
    clock.advance(seconds=61)  # no tick: the backend running the manager is gone
    assert await detector.tick() == [op]
    assert (await operation(client, op))["error"]["reason"] == "orphaned"


async def test_bad_params_are_refused_when_the_research_is_created(client: Client) -> None:
    response = await client.post(
        f"{API}/operations",
        json={"operation_type": "agent_research", "params": {"seed": -1, "epochs": 3}},
    )
    assert_problem(response, 422, "VALIDATION_ERROR")
    assert "seed" in response.json()["detail"] and "epochs" in response.json()["detail"]


async def test_the_backend_runs_the_manager_and_health_shows_it(
    system: System, admin_token: str
) -> None:
    app = create_app(system.settings, database_url=system.database_url)
    async with AsyncTestClient(app=app) as served:
        served.headers["Authorization"] = f"Bearer {admin_token}"
        op = await start(served)
        for _ in range(100):
            if (await operation(served, op))["status"] == "running":
                break
            await asyncio.sleep(0.05)
        assert (await operation(served, op))["worker_id"] == MANAGER_ID
        health = (await served.get(f"{API}/health")).json()
        assert health["processors"][NAME] == "active"
