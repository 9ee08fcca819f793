"""Cleanup as processors: checkpoints go on completion (unless kept), the schedule waits."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from ktrdr.bootstrap.system import System
from ktrdr.domain import CompleteOperation
from ktrdr.handlers.cleanup import delete_on_completion
from ktrdr.handlers.reactor import Reactor
from ktrdr.handlers.singleton import SingletonProcessor
from tests.integration.api import drive
from tests.integration.api.test_checkpoints_api import checkpoint_with_artifacts
from tests.integration.api.test_operations_api import API

pytestmark = pytest.mark.anyio
Client = AsyncTestClient[Any]


async def completed_with_checkpoints(client: Client, system: System, *, keep: bool) -> str:
    response = await client.post(
        f"{API}/operations",
        json={"operation_type": "training", "params": {}, "keep_checkpoints": keep},
    )
    op = str(response.json()["operation_id"])
    await drive.claim(system, op)
    await checkpoint_with_artifacts(system, op, 1)
    await checkpoint_with_artifacts(system, op, 2)
    await system.bus.operation(
        CompleteOperation(
            operation_id=op, at=system.bus.clock(), worker_id=drive.WORKER, attempt=1, result={}
        ),
        actor=f"worker:{drive.WORKER}",
    )
    return op


async def test_completion_deletes_checkpoints_unless_kept(client: Client, system: System) -> None:
    dropped = await completed_with_checkpoints(client, system, keep=False)
    kept = await completed_with_checkpoints(client, system, keep=True)
    reactor = Reactor(
        "completion_cleanup",
        system.pool,
        system.event_log,
        delete_on_completion(system.bus, system.artifacts),
    )
    assert await reactor.tick() > 0
    assert system.artifacts.sequences(dropped) == []
    events = (await client.get(f"{API}/operations/{dropped}/events")).json()["items"]
    assert events[-1]["event_type"] == "CheckpointDeleted"
    assert events[-1]["data"]["reason"] == "completed"
    assert events[-1]["data"]["sequences"] == [1, 2]
    assert system.artifacts.sequences(kept) == [1, 2]
    assert (await client.get(f"{API}/checkpoints/{kept}")).json()["sequence"] == 2

    # Replayed from the start (a crash before the position was stored): nothing twice.
    async with system.pool.connection() as conn:
        await conn.execute("DELETE FROM projection_positions WHERE name = 'completion_cleanup'")
    await reactor.tick()
    again = (await client.get(f"{API}/operations/{dropped}/events")).json()["items"]
    assert [e["event_type"] for e in again].count("CheckpointDeleted") == 1


async def test_first_scheduled_run_waits_one_interval(system: System) -> None:
    runs: list[float] = []

    async def tick() -> None:
        runs.append(asyncio.get_running_loop().time())

    processor = SingletonProcessor(
        "cleanup_test", system.database_url, tick, interval=0.2, first_after=0.6
    )
    stop = asyncio.Event()
    started = asyncio.get_running_loop().time()
    task = asyncio.create_task(processor.run(stop))
    await asyncio.sleep(0.4)
    assert processor.active and runs == []
    await asyncio.sleep(0.6)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert runs and runs[0] - started >= 0.6


async def test_completion_keeps_the_checkpoint_holding_the_trained_model(
    client: Client, system: System
) -> None:
    response = await client.post(f"{API}/operations", json={"operation_type": "training"})
    op = str(response.json()["operation_id"])
    await drive.claim(system, op)
    for epoch in (1, 2, 3):
        await checkpoint_with_artifacts(system, op, epoch)
    await system.bus.operation(
        CompleteOperation(
            operation_id=op,
            at=system.bus.clock(),
            worker_id=drive.WORKER,
            attempt=1,
            result={"model_artifact": "model.pt", "model_sha256": "x"},
        ),
        actor=f"worker:{drive.WORKER}",
    )
    reactor = Reactor(
        "completion_cleanup",
        system.pool,
        system.event_log,
        delete_on_completion(system.bus, system.artifacts),
    )
    await reactor.tick()
    assert system.artifacts.sequences(op) == [3]
    assert (await client.get(f"{API}/checkpoints/{op}")).json()["sequence"] == 3
