"""/api/v1/workers and the fenced worker writes, and the orphan detector, on real PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from ktrdr.bootstrap.system import System
from tests.integration.api.conftest import ShiftedClock, watching_detector
from tests.integration.api.test_operations_api import API, assert_problem, create

pytestmark = pytest.mark.anyio
Client = AsyncTestClient[Any]


async def register(client: Client, worker_id: str, **extra: Any) -> dict[str, Any]:
    body = {
        "worker_id": worker_id,
        "worker_type": "training",
        "host": "h",
        "pid": 1,
        "version": "test",
        **extra,
    }
    response = await client.post(f"{API}/workers", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def claim(
    client: Client, worker_id: str, wait: float = 0, *, ack: bool = True
) -> dict[str, Any] | None:
    """Claim as a worker does: long-poll, then acknowledge what it got (unless ``ack``
    is False: a worker that never received its claim)."""
    response = await client.post(f"{API}/workers/{worker_id}/claim", json={"wait_seconds": wait})
    if response.status_code == 204:
        return None
    assert response.status_code == 200, response.text
    claimed = dict(response.json())
    if ack:
        acked = await client.post(
            f"{API}/operations/{claimed['operation_id']}/acknowledge",
            json=write(worker_id, claimed["attempt"]),
        )
        assert acked.status_code == 200, acked.text
    return claimed


def write(worker_id: str, attempt: int, **fields: Any) -> dict[str, Any]:
    return {"worker_id": worker_id, "attempt": attempt, **fields}


async def test_register_claim_progress_checkpoint_complete(client: Client) -> None:
    registered = await register(client, "w1")
    assert registered["status"] == "registered" and registered["current_operation"] is None
    assert registered["heartbeat_interval_seconds"] > 0
    assert await claim(client, "w1") is None

    op = await create(client, "training", epochs=2)
    await create(client, "backtesting")
    claimed = await claim(client, "w1")
    assert claimed is not None
    assert claimed["operation_id"] == op and claimed["attempt"] == 1
    assert claimed["resume_from"] is None and claimed["next_checkpoint_sequence"] == 1

    progress = await client.post(
        f"{API}/operations/{op}/progress",
        json=write("w1", 1, percentage=50, current_step="epoch 1"),
    )
    assert progress.json() == {"recorded": True, "cancellation_requested": False}
    saved = await client.post(
        f"{API}/operations/{op}/checkpoints",
        json=write("w1", 1, sequence=1, checkpoint_type="periodic", state={"epoch": 1}),
    )
    assert saved.status_code == 201 and saved.json()["sequence"] == 1
    done = await client.post(
        f"{API}/operations/{op}/complete", json=write("w1", 1, result={"model_sha256": "abc"})
    )
    assert done.json()["status"] == "completed"
    fetched = (await client.get(f"{API}/operations/{op}")).json()
    assert fetched["result"] == {"model_sha256": "abc"} and fetched["worker_id"] == "w1"

    workers = (await client.get(f"{API}/workers")).json()["items"]
    assert [(w["worker_id"], w["status"]) for w in workers] == [("w1", "available")]


async def test_stale_attempt_is_refused_and_changes_nothing(client: Client, system: System) -> None:
    await register(client, "w1")
    await register(client, "w2")
    op = await create(client)
    first = await claim(client, "w1")
    assert first is not None
    await client.post(
        f"{API}/operations/{op}/checkpoints",
        json=write("w1", 1, sequence=1, checkpoint_type="periodic", state={"epoch": 1}),
    )
    await client.post(f"{API}/operations/{op}/fail", json=write("w1", 1, message="boom"))
    await client.post(f"{API}/operations/{op}/resume")
    second = await claim(client, "w2")
    assert second is not None and second["attempt"] == 2
    assert second["resume_from"]["sequence"] == 1
    assert second["next_checkpoint_sequence"] == 2
    before = (await client.get(f"{API}/operations/{op}/events")).json()["items"]

    stale_writes = [
        ("progress", write("w1", 1, percentage=90)),
        ("checkpoints", write("w1", 1, sequence=2, checkpoint_type="periodic", state={})),
        ("complete", write("w1", 1, result={})),
        ("fail", write("w1", 1, message="late")),
        ("cancelled", write("w1", 1, reason="shutdown")),
        ("progress", write("w1", 2, percentage=90)),  # right attempt, wrong worker
    ]
    for path, body in stale_writes:
        assert_problem(
            await client.post(f"{API}/operations/{op}/{path}", json=body), 409, "STALE_ATTEMPT"
        )
    assert (await client.get(f"{API}/operations/{op}/events")).json()["items"] == before
    wrong_sequence = await client.post(
        f"{API}/operations/{op}/checkpoints",
        json=write("w2", 2, sequence=5, checkpoint_type="periodic", state={}),
    )
    assert_problem(wrong_sequence, 409, "CHECKPOINT_SEQUENCE_MISMATCH")


async def test_heartbeat_carries_cancellation_and_standing(client: Client) -> None:
    await register(client, "w1")
    op = await create(client)
    await claim(client, "w1")
    beat = await client.post(f"{API}/workers/w1/heartbeat", json={"operation_id": op, "attempt": 1})
    assert beat.json() == {
        "current_operation": {
            "operation_id": op,
            "attempt": 1,
            "action": "continue",
            "reason": "attempt is current",
        },
        "cancellation_requested": False,
    }
    await client.post(f"{API}/operations/{op}/cancel")
    beat = await client.post(f"{API}/workers/w1/heartbeat", json={"operation_id": op, "attempt": 1})
    assert beat.json()["cancellation_requested"] is True
    assert_problem(
        await client.post(f"{API}/workers/ghost/heartbeat", json={}), 404, "WORKER_NOT_FOUND"
    )
    assert_problem(
        await client.post(f"{API}/workers/ghost/claim", json={}), 404, "WORKER_NOT_FOUND"
    )


async def test_reregistration_keeps_a_current_attempt_and_drops_a_stale_one(
    client: Client,
) -> None:
    await register(client, "w1")
    op = await create(client)
    await claim(client, "w1")
    again = await register(client, "w1", current_operation_id=op, current_attempt=1)
    assert again["current_operation"]["action"] == "continue"
    stale = await register(client, "w1", current_operation_id=op, current_attempt=7)
    assert stale["current_operation"]["action"] == "drop"
    # It holds attempt 1 no more (it reports another): that run is gone.
    events = (await client.get(f"{API}/operations/{op}/events")).json()["items"]
    assert [e["event_type"] for e in events] == [
        "OperationCreated",
        "OperationClaimed",
        "ClaimAcknowledged",
        "OperationFailed",
    ]
    assert events[-1]["data"]["reason"] == "orphaned"
    assert events[-1]["metadata"]["actor"] == "orphan-detector"


async def test_deregistered_worker_is_listed_only_on_request(client: Client) -> None:
    await register(client, "w1")
    response = await client.delete(f"{API}/workers/w1")
    assert response.json() == {"worker_id": "w1", "status": "deregistered"}
    assert (await client.get(f"{API}/workers")).json()["items"] == []
    everyone = (await client.get(f"{API}/workers", params={"include_deregistered": "true"})).json()
    assert [w["status"] for w in everyone["items"]] == ["deregistered"]


async def test_orphan_detector_fails_silent_workers_after_its_grace(
    client: Client, system: System, clock: ShiftedClock
) -> None:
    await register(client, "w1")
    await register(client, "w2")
    silent = await create(client)
    await claim(client, "w1")
    await client.post(
        f"{API}/operations/{silent}/checkpoints",
        json=write("w1", 1, sequence=1, checkpoint_type="periodic", state={"epoch": 1}),
    )
    alive = await create(client)
    await claim(client, "w2")
    detector = watching_detector(system, clock())

    clock.advance(seconds=59)
    assert await detector.tick() == []
    await client.post(f"{API}/workers/w2/heartbeat", json={"operation_id": alive, "attempt": 1})
    clock.advance(seconds=2)
    assert await detector.tick() == [silent]
    assert await detector.tick() == []

    orphaned = (await client.get(f"{API}/operations/{silent}")).json()
    assert orphaned["status"] == "failed" and orphaned["error"]["reason"] == "orphaned"
    assert orphaned["resumable"] is True
    assert (await client.get(f"{API}/operations/{alive}")).json()["status"] == "running"
    workers = {
        w["worker_id"]: w["status"] for w in (await client.get(f"{API}/workers")).json()["items"]
    }
    assert workers["w1"] == "lost"


async def test_no_operation_is_failed_before_workers_could_reregister(
    client: Client, system: System, clock: ShiftedClock
) -> None:
    await register(client, "w1")
    op = await create(client)
    await claim(client, "w1")
    # The backend restarts long after the last heartbeat: the worker still gets a full timeout.
    clock.advance(seconds=600)
    detector = watching_detector(system, clock())
    clock.advance(seconds=30)
    assert await detector.tick() == []
    await register(client, "w1", current_operation_id=op, current_attempt=1)
    clock.advance(seconds=31)
    assert await detector.tick() == []
    assert (await client.get(f"{API}/operations/{op}")).json()["status"] == "running"
