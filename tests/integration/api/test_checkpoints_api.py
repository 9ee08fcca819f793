"""/api/v1/checkpoints on real PostgreSQL and real artifact folders."""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from ktrdr.artifacts import ArtifactStore
from ktrdr.bootstrap.system import System
from ktrdr.domain import SaveCheckpoint
from tests.integration.api import drive
from tests.integration.api.conftest import ShiftedClock
from tests.integration.api.test_operations_api import API, assert_problem, create

pytestmark = pytest.mark.anyio
Client = AsyncTestClient[Any]


def write_blob(size: int) -> Any:
    return lambda handle: handle.write(b"w" * size)


async def checkpoint_with_artifacts(system: System, op: str, epoch: int, size: int = 1000) -> int:
    current = await system.bus.states.operation(op)
    assert current is not None and current.worker_id is not None
    sequence = current.last_sequence + 1
    manifest = system.artifacts.write(op, sequence, {"model.pt": write_blob(size)})
    await system.bus.operation(
        SaveCheckpoint(
            operation_id=op,
            at=system.bus.clock(),
            worker_id=current.worker_id,
            attempt=current.attempt,
            checkpoint_type="periodic",
            state={"epoch": epoch},
            artifacts_path=f"{op}/{sequence}",
            artifacts=manifest.files,
            artifacts_size_bytes=manifest.total_size,
            sequence=sequence,
        ),
        actor=f"worker:{current.worker_id}",
    )
    return sequence


async def test_latest_checkpoint_history_and_stats(client: Client, system: System) -> None:
    op = await create(client)
    await drive.claim(system, op)
    for epoch in (1, 2, 3):
        await checkpoint_with_artifacts(system, op, epoch)
    latest = (await client.get(f"{API}/checkpoints/{op}")).json()
    assert latest["sequence"] == 3 and latest["state"] == {"epoch": 3}
    assert latest["artifacts_path"] == f"{op}/3"
    assert [a["name"] for a in latest["artifacts"]] == ["model.pt"]
    assert latest["artifacts_size_bytes"] == 1000 and latest["state_size_bytes"] > 0

    history = (await client.get(f"{API}/checkpoints/{op}/history")).json()
    assert [c["sequence"] for c in history["items"]] == [3, 2, 1]

    listed = (await client.get(f"{API}/checkpoints")).json()
    assert listed["total"] == 1 and listed["items"][0]["operation_id"] == op
    assert (await client.get(f"{API}/checkpoints", params={"checkpoint_type": "failure"})).json()[
        "total"
    ] == 0
    assert (await client.get(f"{API}/checkpoints", params={"older_than_days": 1})).json()[
        "total"
    ] == 0

    stats = (await client.get(f"{API}/checkpoints/stats")).json()
    assert stats["total_checkpoints"] == 3 and stats["by_type"] == {"periodic": 3}
    assert stats["operations"] == 1 and stats["artifacts_size_bytes"] == 3000
    assert stats["total_size_bytes"] == stats["state_size_bytes"] + 3000
    assert stats["oldest_checkpoint"] == history["items"][-1]["created_at"]
    assert stats["database_bytes"] > stats["state_size_bytes"]
    on_disk = system.artifacts.disk_usage()  # the files and each set's manifest
    assert stats["artifacts_on_disk_bytes"] == on_disk > 3000


async def test_delete_removes_events_rows_and_files(client: Client, system: System) -> None:
    op = await create(client)
    await drive.claim(system, op)
    for epoch in (1, 2):
        await checkpoint_with_artifacts(system, op, epoch)
    assert_problem(await client.delete(f"{API}/checkpoints/{op}"), 409, "OPERATION_BUSY")
    await drive.fail(system, op)
    assert system.artifacts.sequences(op) == [1, 2]

    response = await client.delete(f"{API}/checkpoints/{op}")
    assert response.status_code == 200 and response.json()["deleted_sequences"] == [1, 2]
    assert system.artifacts.sequences(op) == []
    assert_problem(await client.get(f"{API}/checkpoints/{op}"), 404, "CHECKPOINT_NOT_FOUND")
    assert (await client.get(f"{API}/checkpoints/{op}/history")).json()["items"] == []
    operation = (await client.get(f"{API}/operations/{op}")).json()
    assert operation["resumable"] is False and operation["checkpoint"] is None
    events = (await client.get(f"{API}/operations/{op}/events")).json()["items"]
    assert events[-1]["event_type"] == "CheckpointDeleted"
    assert events[-1]["data"]["reason"] == "manual"
    assert_problem(await client.delete(f"{API}/checkpoints/{op}"), 404, "CHECKPOINT_NOT_FOUND")


async def test_unknown_operation_errors(client: Client) -> None:
    missing = uuid.uuid4()
    for path in (f"/checkpoints/{missing}", f"/checkpoints/{missing}/history"):
        assert_problem(await client.get(API + path), 404, "OPERATION_NOT_FOUND")
    assert_problem(await client.delete(f"{API}/checkpoints/{missing}"), 404, "OPERATION_NOT_FOUND")
    assert_problem(await client.get(f"{API}/checkpoints/nope"), 400, "VALIDATION_ERROR")
    assert_problem(
        await client.post(f"{API}/checkpoints/cleanup", params={"max_age_days": 0}),
        400,
        "VALIDATION_ERROR",
    )


async def test_cleanup_expires_old_checkpoints_and_orphan_folders(
    client: Client, system: System, clock: ShiftedClock
) -> None:
    old = await create(client)
    await drive.claim(system, old)
    await checkpoint_with_artifacts(system, old, 1, size=500)
    await drive.fail(system, old)
    clock.advance(days=40)
    fresh = await create(client)
    await drive.claim(system, fresh)
    await checkpoint_with_artifacts(system, fresh, 1, size=700)
    await drive.fail(system, fresh)
    orphan = str(uuid.uuid4())
    system.artifacts.write(orphan, 1, {"model.pt": write_blob(300)})
    aged = time.time() - 7200
    os.utime(system.artifacts.path(orphan, 1), (aged, aged))

    response = await client.post(f"{API}/checkpoints/cleanup", params={"max_age_days": 30})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["checkpoints_deleted"] == 1
    assert report["orphan_artifacts_removed"] == 1
    assert report["bytes_freed"] >= 500 + 300
    assert system.artifacts.sequences(old) == []
    assert system.artifacts.sequences(fresh) == [1]
    assert not (system.artifacts.root / orphan).exists()
    events = (await client.get(f"{API}/operations/{old}/events")).json()["items"]
    assert events[-1]["data"]["reason"] == "expired"


async def test_store_is_the_configured_root(system: System) -> None:
    assert isinstance(system.artifacts, ArtifactStore)
    assert system.artifacts.root == system.settings.artifacts_path


async def test_read_models_rebuild_to_the_same_rows(client: Client, system: System) -> None:
    from psycopg import AsyncConnection

    from ktrdr.projections import replay
    from ktrdr.projections.registry import all_projections

    first = await create(client)
    await drive.claim(system, first)
    await checkpoint_with_artifacts(system, first, 1)
    await checkpoint_with_artifacts(system, first, 2)
    await drive.fail(system, first)
    await client.post(f"{API}/operations/{first}/resume", json={"checkpoint_sequence": 1})
    second = await create(client, "backtesting")
    await drive.claim(system, second)
    await checkpoint_with_artifacts(system, second, 5)
    await drive.cancel_confirmed(system, second)
    await client.delete(f"{API}/checkpoints/{second}")
    await create(client, "agent_research")

    async with await AsyncConnection.connect(system.database_url, autocommit=True) as conn:
        report = await replay.verify(conn, all_projections())
        assert report.ok, [(d.table, d.side, sorted(d.row.items())[:6]) for d in report.differences]
        before = (await client.get(f"{API}/operations")).json()
        await replay.rebuild(conn, all_projections())
        assert (await replay.verify(conn, all_projections())).ok
    assert (await client.get(f"{API}/operations")).json() == before


async def test_cleanup_removes_old_crash_leftovers_but_not_a_save_in_flight(
    client: Client, system: System
) -> None:
    op = await create(client)
    await drive.claim(system, op)
    await checkpoint_with_artifacts(system, op, 1)
    folder = system.artifacts.root / op
    old = folder / f".tmp-2-{uuid.uuid4().hex}"
    young = folder / f".tmp-3-{uuid.uuid4().hex}"
    unreferenced_young = system.artifacts.path(op, 4)
    for leftover in (old, young, unreferenced_young):
        leftover.mkdir()
        (leftover / "model.pt").write_bytes(b"partial")
    aged = time.time() - 7200
    os.utime(old, (aged, aged))

    report = (await client.post(f"{API}/checkpoints/cleanup")).json()
    assert report["orphan_artifacts_removed"] == 1 and report["checkpoints_deleted"] == 0
    assert not old.exists() and young.exists() and unreferenced_young.exists()
    assert system.artifacts.sequences(op) == [1, 4]


async def test_cleanup_never_deletes_what_a_resume_is_reading(
    client: Client, system: System, clock: ShiftedClock
) -> None:
    op = await create(client)
    await drive.claim(system, op)
    await checkpoint_with_artifacts(system, op, 1)
    await drive.fail(system, op)
    clock.advance(days=45)
    assert (await client.post(f"{API}/operations/{op}/resume")).status_code == 200

    report = (await client.post(f"{API}/checkpoints/cleanup")).json()
    assert report["checkpoints_deleted"] == 0 and report["skipped_busy"] == 1
    assert system.artifacts.sequences(op) == [1]
    claimed = await drive.claim(system, op)
    assert claimed.resumed_from == 1 and 1 in claimed.checkpoints
