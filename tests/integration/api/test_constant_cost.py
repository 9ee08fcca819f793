"""Cost per event is constant (issue 12): the operation row, the events and the live
progress stay the same size however long the run, and metrics come from the log."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from ktrdr.bootstrap.system import System
from ktrdr.handlers import cleanup
from ktrdr.handlers.reactor import Reactor
from tests.integration.api import drive
from tests.integration.api.conftest import ShiftedClock
from tests.integration.api.test_operations_api import API, create

pytestmark = pytest.mark.anyio
Client = AsyncTestClient[Any]

ROW_BYTES = 16 * 1024
"""The bound issue 12 sets for an operation's row."""
OP_WRITE = "4b1f3c9e-7d2a-4e8b-9c1d-2a3b4c5d6e7f"
# What a training checkpoint's state looks like now: position, last epoch, no history.
STATE = {"schema": "ktrdr.training/2", "params_sha256": "ab" * 32, "batch": 0, "last": {}}


def write(worker: str, attempt: int, **fields: Any) -> dict[str, Any]:
    return {"worker_id": worker, "attempt": attempt, **fields}


async def row_bytes(system: System, op: str) -> tuple[int, str]:
    async with system.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT pg_column_size(o.*), o.state::text FROM operations o WHERE operation_id = %s",
            (op,),
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


async def run_epochs(
    client: Client, system: System, clock: ShiftedClock, op: str, epochs: range
) -> None:
    """What a training worker sends: a progress report and a metrics point each epoch, a
    checkpoint every ten; retention keeps two."""
    retention = Reactor(
        "checkpoint_retention",
        system.pool,
        system.event_log,
        cleanup.retain_newest(system.bus, system.artifacts, keep=2),
    )
    for epoch in epochs:
        clock.advance(seconds=1)
        body = write(drive.WORKER, 1, percentage=epoch / 10, current_step=f"epoch {epoch}")
        assert (await client.post(f"{API}/operations/{op}/progress", json=body)).status_code == 200
        point = {"epoch": epoch, "train_loss": 1 / epoch, "val_loss": "NaN"}
        metrics = write(drive.WORKER, 1, series="epochs", points=[point])
        assert (await client.post(f"{API}/operations/{op}/metrics", json=metrics)).is_success
        if epoch % 10 == 0:
            await drive.checkpoint(system, op, {**STATE, "epoch": epoch})
            await retention.tick()


async def test_the_operation_row_stays_the_same_size_however_long_the_run(
    client: Client, system: System, clock: ShiftedClock
) -> None:
    op = await create(client, "training", epochs=1000)
    await drive.claim(system, op)
    await run_epochs(client, system, clock, op, range(1, 51))
    early, _ = await row_bytes(system, op)
    await run_epochs(client, system, clock, op, range(51, 501))
    late, state = await row_bytes(system, op)
    print(f"operation row: {early} bytes after 50 epochs, {late} after 500")
    assert late <= ROW_BYTES and late <= early * 1.05
    assert '"params_sha256"' not in state  # no checkpoint state in the aggregate
    events = (await client.get(f"{API}/operations/{op}/events")).json()["items"]
    saved = [e for e in events if e["event_type"] == "CheckpointSaved"]
    first, last = (len(str(e["data"])) for e in (saved[0], saved[-1]))
    assert last <= first * 1.05  # the fiftieth checkpoint is no bigger than the first


async def test_metrics_are_served_from_the_log_one_point_per_epoch(
    client: Client, system: System, clock: ShiftedClock
) -> None:
    op = await create(client, "training", epochs=3)
    await drive.claim(system, op)
    await run_epochs(client, system, clock, op, range(1, 4))
    # A resumed attempt replays epoch 3 from a checkpoint: its point replaces the first.
    again = write(drive.WORKER, 1, series="epochs", points=[{"epoch": 3, "train_loss": 0.25}])
    await client.post(f"{API}/operations/{op}/metrics", json=again)
    shown = (await client.get(f"{API}/operations/{op}/metrics")).json()
    epochs = shown["series"]["epochs"]
    assert [p["epoch"] for p in epochs] == [1, 2, 3]
    assert epochs[2] == {"epoch": 3, "train_loss": 0.25} and epochs[0]["val_loss"] == "NaN"
    # A repeated write (its reply lost) appends nothing twice.
    body = write(drive.WORKER, 1, series="equity", points=[{"bar_index": 10}], write_id=OP_WRITE)
    for _ in range(2):
        assert (await client.post(f"{API}/operations/{op}/metrics", json=body)).is_success
    events = (await client.get(f"{API}/operations/{op}/events")).json()["items"]
    assert sum(1 for e in events if e["data"].get("series") == "equity") == 1


async def test_progress_stays_live_while_its_events_are_coalesced(
    client: Client, system: System, clock: ShiftedClock
) -> None:
    op = await create(client, "training")
    await drive.claim(system, op)
    for percentage in (10.0, 20.0, 30.0):
        clock.advance(seconds=1)  # well within the 5 s between ProgressReported events
        body = write(drive.WORKER, 1, percentage=percentage, current_step="epoch")
        await client.post(f"{API}/operations/{op}/progress", json=body)
    shown = (await client.get(f"{API}/operations/{op}")).json()
    assert shown["progress"]["percentage"] == 30.0
    listed = (await client.get(f"{API}/operations")).json()["items"][0]
    assert listed["progress"]["percentage"] == 30.0
    events = (await client.get(f"{API}/operations/{op}/events")).json()["items"]
    assert [e["data"]["percentage"] for e in events if e["event_type"] == "ProgressReported"] == [
        10.0
    ]
