"""Faults the backend settles by itself (issue 10), through the API on real PostgreSQL:
checkpoint listings that tell the truth, refused saves that show, processors that say
who they are, lost workers, and one clock for every replica."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from ktrdr.bootstrap.system import System
from ktrdr.handlers import cleanup
from ktrdr.handlers.clock import DatabaseClock
from ktrdr.handlers.operations import delete_checkpoints
from ktrdr.handlers.orphans import OrphanDetector
from ktrdr.handlers.reactor import Reactor
from ktrdr.handlers.workers import heartbeat
from tests.integration.api import drive
from tests.integration.api.conftest import ShiftedClock
from tests.integration.api.test_checkpoints_api import checkpoint_with_artifacts
from tests.integration.api.test_operations_api import API, assert_problem, create
from tests.integration.api.test_workers_api import register

pytestmark = pytest.mark.anyio
Client = AsyncTestClient[Any]


async def stopped_with_checkpoints(client: Client, system: System, count: int) -> str:
    op = await create(client, "training")
    await drive.claim(system, op)
    for sequence in range(1, count + 1):
        await checkpoint_with_artifacts(system, op, sequence)
    await drive.cancel_confirmed(system, op)
    return op


async def metadata(client: Client, op: str, event_type: str) -> list[dict[str, Any]]:
    events = (await client.get(f"{API}/operations/{op}/events")).json()["items"]
    return [e["metadata"] for e in events if e["event_type"] == event_type]


async def test_fault_05_retention_deletes_by_event_and_names_itself(
    client: Client, system: System
) -> None:
    op = await stopped_with_checkpoints(client, system, 4)
    reactor = Reactor(
        "checkpoint_retention",
        system.pool,
        system.event_log,
        cleanup.retain_newest(system.bus, system.artifacts, keep=2),
    )
    assert await reactor.tick() > 0
    [deleted] = await metadata(client, op, "CheckpointDeleted")
    assert deleted["actor"] == "checkpoint-retention" and deleted["causation_id"]
    assert system.artifacts.sequences(op) == [3, 4]
    history = (await client.get(f"{API}/checkpoints/{op}/history")).json()["items"]
    assert [(h["sequence"], h["resumable"]) for h in history] == [(4, True), (3, True)]


async def test_fault_05_a_resume_from_a_deleted_checkpoint_is_refused_naming_the_live_ones(
    client: Client, system: System
) -> None:
    op = await stopped_with_checkpoints(client, system, 3)
    await delete_checkpoints(system.bus, system.artifacts, op, [1], actor="user")
    response = await client.post(f"{API}/operations/{op}/resume", json={"checkpoint_sequence": 1})
    problem = assert_problem(response, 409, "CHECKPOINT_NOT_RESUMABLE")
    assert "it was deleted; resume from one of 2, 3" in problem["detail"]
    assert (await client.get(f"{API}/operations/{op}")).json()["status"] == "cancelled"


async def test_fault_05_a_resume_never_picks_a_checkpoint_whose_files_are_gone(
    client: Client, system: System
) -> None:
    op = await stopped_with_checkpoints(client, system, 3)
    system.artifacts.delete(op, [3])  # behind the log's back: a disk that lost files
    history = (await client.get(f"{API}/checkpoints/{op}/history")).json()["items"]
    assert [(h["sequence"], h["resumable"]) for h in history] == [(3, False), (2, True), (1, True)]
    asked = await client.post(f"{API}/operations/{op}/resume", json={"checkpoint_sequence": 3})
    problem = assert_problem(asked, 409, "CHECKPOINT_NOT_RESUMABLE")
    assert "its files are missing; resume from one of 1, 2" in problem["detail"]
    resumed = await client.post(f"{API}/operations/{op}/resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["resumed_from"]["sequence"] == 2


async def test_fault_06_a_refused_checkpoint_save_shows_on_the_operation(
    client: Client, system: System
) -> None:
    op = await create(client, "training")
    await drive.claim(system, op)
    body = {
        "worker_id": drive.WORKER,
        "attempt": 1,
        "sequence": 1,
        "checkpoint_type": "periodic",
        "message": "checkpoint 1 was not saved: Refused: the request body is too large",
    }
    response = await client.post(f"{API}/operations/{op}/checkpoint-failures", json=body)
    assert response.status_code == 200 and response.json()["recorded"] is True
    shown = (await client.get(f"{API}/operations/{op}")).json()
    assert shown["checkpoint_failure"]["sequence"] == 1
    assert "too large" in shown["checkpoint_failure"]["message"]
    await checkpoint_with_artifacts(system, op, 1)
    assert (await client.get(f"{API}/operations/{op}")).json()["checkpoint_failure"] is None


async def test_fault_09_cleanup_records_its_runs_and_an_overdue_one_starts_at_once(
    system: System, clock: ShiftedClock
) -> None:
    assert await cleanup.last_cleanup(system.pool) is None
    assert await cleanup.first_run_in(system.pool, clock(), interval_seconds=3600) == 0
    await cleanup.run_cleanup(
        system.bus,
        system.pool,
        system.artifacts,
        max_age_days=30,
        now=clock(),
        actor=cleanup.CLEANUP,
    )
    ran_at = await cleanup.last_cleanup(system.pool)
    assert ran_at is not None and abs((ran_at - clock()).total_seconds()) < 5
    clock.advance(minutes=20)
    wait = await cleanup.first_run_in(system.pool, clock(), interval_seconds=3600)
    assert 2390 < wait < 2410  # the 40 minutes left of the hour, not a whole interval
    clock.advance(hours=2)  # the backend was down past the schedule: overdue, at once
    assert await cleanup.first_run_in(system.pool, clock(), interval_seconds=3600) == 0


async def test_fault_13_a_lost_worker_is_recorded_and_hidden_once_long_lost(
    client: Client, system: System, clock: ShiftedClock
) -> None:
    await register(client, "gone")
    detector = OrphanDetector(
        system.bus,
        system.pool,
        timeout_seconds=60,
        heartbeat_interval_seconds=10,
        started_at=clock() - timedelta(hours=1),
    )
    clock.advance(seconds=61)
    await detector.tick()
    workers = (await client.get(f"{API}/workers")).json()["items"]
    assert [(w["worker_id"], w["status"]) for w in workers] == [("gone", "lost")]
    clock.advance(seconds=600)
    assert (await client.get(f"{API}/workers")).json()["items"] == []
    asked = (await client.get(f"{API}/workers", params={"include_lost": "true"})).json()
    assert [w["worker_id"] for w in asked["items"]] == ["gone"]
    events = await system.event_log.read_stream("worker-gone")
    assert [e.event_type for e in events] == ["WorkerRegistered", "HeartbeatMissed"]
    assert events[-1].metadata["actor"] == "orphan-detector"


async def test_fault_14_automatic_deletions_name_their_processor_and_cause(
    client: Client, system: System, clock: ShiftedClock
) -> None:
    response = await client.post(
        f"{API}/operations", json={"operation_type": "training", "params": {}}
    )
    done = str(response.json()["operation_id"])
    await drive.claim(system, done)
    await checkpoint_with_artifacts(system, done, 1)
    await drive.complete(system, done, {})
    reactor = Reactor(
        "completion_cleanup",
        system.pool,
        system.event_log,
        cleanup.delete_on_completion(system.bus, system.artifacts),
    )
    await reactor.tick()
    completed = [e for e in await system.event_log.read_stream(f"operation-{done}")]
    by_type = {e.event_type: e for e in completed}
    deletion = by_type["CheckpointDeleted"].metadata
    assert deletion["actor"] == "completion-cleanup"
    assert deletion["causation_id"] == str(by_type["OperationCompleted"].event_id)

    expired = await stopped_with_checkpoints(client, system, 1)
    clock.advance(days=40)
    await cleanup.run_cleanup(
        system.bus,
        system.pool,
        system.artifacts,
        max_age_days=30,
        now=clock(),
        actor=cleanup.CLEANUP,
    )
    [expiry] = await metadata(client, expired, "CheckpointDeleted")
    assert expiry["actor"] == "checkpoint-cleanup"


async def test_fault_15_a_replica_with_a_slow_clock_fails_no_live_worker(
    client: Client, system: System
) -> None:
    await register(client, "w1")
    op = await create(client, "training")
    await drive.claim(system, op, "w1")
    # The heartbeat is recorded by a replica whose own clock is ten minutes slow …
    slow = DatabaseClock(local=lambda: datetime.now(UTC) - timedelta(minutes=10))
    await slow.sync(system.pool)
    async with system.pool.connection() as conn:
        row = await (await conn.execute("SELECT clock_timestamp()")).fetchone()
    assert row is not None
    off = (slow() - row[0]).total_seconds()
    print(f"a replica 10 min slow reads the database's time {off:+.3f}s off after a sync")
    assert abs(off) < 1
    system.bus.clock = slow
    await heartbeat(system.bus, system.pool, "w1", op, 1)
    # … and judged by another whose clock is right: both read the database's time.
    right = DatabaseClock()
    await right.sync(system.pool)
    system.bus.clock = right
    detector = OrphanDetector(
        system.bus,
        system.pool,
        timeout_seconds=60,
        heartbeat_interval_seconds=10,
        started_at=right() - timedelta(hours=1),
    )
    assert await detector.tick() == []
    assert (await client.get(f"{API}/operations/{op}")).json()["status"] == "running"
