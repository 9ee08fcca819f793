"""Retry policies through the API and the retry processor, on real PostgreSQL (issue 11)."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from ktrdr.bootstrap.system import System
from ktrdr.handlers.agent_research import AgentResearchManager
from ktrdr.handlers.retries import RetryProcessor
from tests.integration.api import drive
from tests.integration.api.conftest import ShiftedClock, watching_detector
from tests.integration.api.test_agent_research import Worker, children, operation
from tests.integration.api.test_operations_api import API, assert_problem

pytestmark = pytest.mark.anyio
Client = AsyncTestClient[Any]


async def create(client: Client, **body: Any) -> dict[str, Any]:
    response = await client.post(
        f"{API}/operations", json={"operation_type": "training", "params": {}, **body}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def processor(system: System) -> RetryProcessor:
    return RetryProcessor(system.bus, system.pool, system.event_log, system.artifacts)


async def orphaned(
    system: System, clock: ShiftedClock, op: str, worker: str = drive.WORKER
) -> None:
    """Claimed, checkpointed, then its worker goes silent past the timeout."""
    await drive.claim(system, op, worker)
    await drive.checkpoint(system, op, {"epoch": 1})
    detector = watching_detector(system, clock())
    clock.advance(seconds=61)
    assert await detector.tick() == [op]


async def events(client: Client, op: str) -> list[dict[str, Any]]:
    return list((await client.get(f"{API}/operations/{op}/events")).json()["items"])


async def test_a_policy_is_shown_whole_with_the_settings_defaults(client: Client) -> None:
    shown = await create(client, retry_policy={"max_attempts": 3}, timeout_seconds=600)
    assert shown["retry_policy"] == {
        "max_attempts": 3,
        "initial_interval_seconds": 1.0,
        "backoff_coefficient": 2.0,
        "maximum_interval_seconds": 60.0,
        "retry_on_error": False,
    }
    assert (shown["attempts_used"], shown["next_retry_at"]) == (0, None)
    assert shown["timeout_seconds"] == 600 and shown["deadline_at"] is None
    bad = await client.post(
        f"{API}/operations",
        json={"operation_type": "training", "retry_policy": {"max_attempts": 0}},
    )
    assert "max_attempts" in assert_problem(bad, 422, "VALIDATION_ERROR")["detail"]
    unknown = await client.post(
        f"{API}/operations", json={"operation_type": "training", "retry_policy": {"tries": 2}}
    )
    assert_problem(unknown, 422, "VALIDATION_ERROR")


async def test_an_orphaned_run_is_retried_from_its_newest_checkpoint(
    client: Client, system: System, clock: ShiftedClock
) -> None:
    op = (await create(client, retry_policy={"max_attempts": 3, "initial_interval_seconds": 5}))[
        "operation_id"
    ]
    await orphaned(system, clock, op)
    retries = processor(system)
    await retries.tick()
    waiting = await operation(client, op)
    assert waiting["status"] == "failed" and waiting["next_retry_at"] is not None
    assert waiting["attempts_used"] == 1
    await retries.tick()  # not due yet: nothing more
    clock.advance(seconds=6)
    await retries.tick()
    resumed = await operation(client, op)
    assert resumed["status"] == "resuming" and resumed["next_retry_at"] is None
    story = [e for e in await events(client, op) if e["event_type"] != "ProgressReported"]
    failed, scheduled, resume = story[-3:]
    assert [e["event_type"] for e in (failed, scheduled, resume)] == [
        "OperationFailed",
        "RetryScheduled",
        "ResumeRequested",
    ]
    assert scheduled["metadata"]["actor"] == resume["metadata"]["actor"] == "retry-processor"
    assert scheduled["metadata"]["causation_id"] == failed["event_id"]
    assert scheduled["data"]["attempt"] == 2 and resume["data"]["from_sequence"] == 1


async def test_a_restarted_backend_runs_a_scheduled_retry_once(
    client: Client, system: System, clock: ShiftedClock
) -> None:
    op = (await create(client))["operation_id"]
    await orphaned(system, clock, op)
    await processor(system).tick()  # this backend scheduled it, then died
    clock.advance(seconds=2)
    replicas = [processor(system), processor(system)]  # the schedule is in the log
    for replica in replicas:
        await replica.tick()
    types = [e["event_type"] for e in await events(client, op)]
    assert types.count("RetryScheduled") == 1 and types.count("ResumeRequested") == 1


async def test_max_attempts_1_is_the_manual_flow(
    client: Client, system: System, clock: ShiftedClock
) -> None:
    op = (await create(client, retry_policy={"max_attempts": 1}))["operation_id"]
    await orphaned(system, clock, op)
    await processor(system).tick()
    shown = await operation(client, op)
    assert shown["status"] == "failed" and shown["next_retry_at"] is None
    assert "RetryScheduled" not in [e["event_type"] for e in await events(client, op)]


async def test_a_run_past_its_timeout_fails_and_is_not_retried(
    client: Client, system: System, clock: ShiftedClock
) -> None:
    op = (await create(client, timeout_seconds=30))["operation_id"]
    await drive.claim(system, op)
    assert (await operation(client, op))["deadline_at"] is not None
    clock.advance(seconds=31)
    retries = processor(system)
    await retries.tick()
    await retries.tick()
    shown = await operation(client, op)
    assert shown["status"] == "failed" and shown["error"]["reason"] == "timeout"
    assert shown["next_retry_at"] is None
    [timed_out] = [e for e in await events(client, op) if e["event_type"] == "OperationFailed"]
    assert timed_out["metadata"]["actor"] == "retry-processor"


async def test_a_research_child_interrupted_by_infrastructure_is_retried_not_fatal(
    client: Client, system: System, clock: ShiftedClock
) -> None:
    manager = AgentResearchManager(system.bus, system.pool, system.event_log)
    trainer = await Worker(client, "training").register()
    body = {
        "operation_type": "agent_research",
        "params": {"seed": 7},
        "retry_policy": {"max_attempts": 4},
    }
    research = str((await client.post(f"{API}/operations", json=body)).json()["operation_id"])
    await manager.tick()
    [child] = await children(client, research)
    child_id = child["operation_id"]
    assert child["retry_policy"]["max_attempts"] == 4
    await drive.claim(system, child_id, trainer.worker_id)
    detector = watching_detector(system, clock())
    clock.advance(seconds=61)
    await manager.tick()  # the manager is alive; the trainer is not
    assert await detector.tick() == [child_id]
    await processor(system).tick()
    await manager.tick()
    assert (await operation(client, research))["status"] == "running"
    clock.advance(seconds=2)
    await processor(system).tick()
    await manager.tick()
    assert (await operation(client, child_id))["status"] == "resuming"
    assert (await operation(client, research))["status"] == "running"
