"""A recorded scenario for the debugging tools: an operation orphaned, resumed and completed.

Worker A claims the operation, reports progress, saves two checkpoints and goes
silent; the orphan detector fails it; the user resumes it from checkpoint 2;
worker B claims attempt 2 and completes it. Domain times come from a clock that
steps ten seconds per command, so the operation's JSON is the same every run.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ktrdr.bootstrap.system import System, bootstrap
from ktrdr.config import load_settings
from ktrdr.domain import (
    MANUAL,
    ClaimOperation,
    CompleteOperation,
    FailOperation,
    RecordMissedHeartbeat,
    RegisterWorker,
    ReportProgress,
    SaveCheckpoint,
)
from ktrdr.handlers import operations as use_cases

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
WORKER_A = "gpu-a"
WORKER_B = "gpu-b"
RESULT = {"epochs": 10, "model_sha256": "ab" * 32}
OPERATION_TYPES = [
    "OperationCreated",
    "OperationClaimed",
    "ProgressReported",
    "CheckpointSaved",
    "ProgressReported",
    "CheckpointSaved",
    "OperationFailed",
    "ResumeRequested",
    "OperationClaimed",
    "ProgressReported",
    "OperationCompleted",
]
STATUS_AFTER = {
    1: "pending",
    2: "running",
    6: "running",
    7: "failed",
    8: "resuming",
    9: "running",
    11: "completed",
}


@dataclass(frozen=True)
class Scenario:
    database_url: str
    operation_id: str


class SteppingClock:
    """T0, T0 + 10 s, T0 + 20 s, …: one step per call."""

    def __init__(self) -> None:
        self._ticks: Iterator[int] = itertools.count()

    def __call__(self) -> datetime:
        return T0 + timedelta(seconds=10 * next(self._ticks))


async def record(database_url: str, data_dir: Path) -> Scenario:
    settings = load_settings(database_url=database_url, data_dir=data_dir)
    async with bootstrap(
        settings, database_url=database_url, pool_size=2, clock=SteppingClock()
    ) as system:
        operation_id = await _orphaned_then_completed(system)
    return Scenario(database_url, operation_id)


async def _orphaned_then_completed(system: System) -> str:
    bus = system.bus
    await _register(system, WORKER_A)
    created = await use_cases.create_operation(
        bus, "training", {"epochs": 10, "seed": 7}, actor="user", retry_policy=MANUAL
    )
    op = created.operation_id
    await _claim(system, op, WORKER_A)
    await _progress(system, op, WORKER_A, 1, 20.0, "epoch 2")
    await _checkpoint(system, op, WORKER_A, 1, {"epoch": 2})
    await _progress(system, op, WORKER_A, 1, 40.0, "epoch 4")
    await _checkpoint(system, op, WORKER_A, 1, {"epoch": 4})
    await bus.worker(
        RecordMissedHeartbeat(worker_id=WORKER_A, at=bus.clock(), operation_id=op, attempt=1),
        actor="orphan-detector",
    )
    await bus.operation(
        FailOperation(
            operation_id=op,
            at=bus.clock(),
            reason="orphaned",
            attempt=1,
            message=f"worker {WORKER_A} went silent",
        ),
        actor="orphan-detector",
    )
    await use_cases.resume_operation(bus, system.artifacts, op, actor="user")
    await _register(system, WORKER_B)
    await _claim(system, op, WORKER_B)
    await _progress(system, op, WORKER_B, 2, 100.0, "epoch 10")
    await bus.operation(
        CompleteOperation(
            operation_id=op, at=bus.clock(), worker_id=WORKER_B, attempt=2, result=RESULT
        ),
        actor=f"worker:{WORKER_B}",
    )
    return op


async def _register(system: System, worker: str) -> None:
    await system.bus.worker(
        RegisterWorker(
            worker_id=worker,
            at=system.bus.clock(),
            worker_type="training",
            host=f"{worker}.lab",
            pid=4242,
            version="0.1.0",
        ),
        actor=f"worker:{worker}",
    )


async def _claim(system: System, op: str, worker: str) -> None:
    await system.bus.operation(
        ClaimOperation(operation_id=op, at=system.bus.clock(), worker_id=worker),
        actor=f"worker:{worker}",
    )


async def _progress(
    system: System, op: str, worker: str, attempt: int, percentage: float, step: str
) -> None:
    await system.bus.operation(
        ReportProgress(
            operation_id=op,
            at=system.bus.clock(),
            worker_id=worker,
            attempt=attempt,
            percentage=percentage,
            current_step=step,
        ),
        actor=f"worker:{worker}",
    )


async def _checkpoint(
    system: System, op: str, worker: str, attempt: int, state: dict[str, Any]
) -> None:
    await system.bus.operation(
        SaveCheckpoint(
            operation_id=op,
            at=system.bus.clock(),
            worker_id=worker,
            attempt=attempt,
            checkpoint_type="periodic",
            state=state,
        ),
        actor=f"worker:{worker}",
    )


async def keep_reporting_progress(
    database_url: str, data_dir: Path, *, until: asyncio.Future[Any]
) -> list[float]:
    """Start another operation and report its progress every 0.1 s until ``until`` is done."""
    settings = load_settings(database_url=database_url, data_dir=data_dir)
    reported: list[float] = []
    async with bootstrap(
        settings, database_url=database_url, pool_size=2, clock=SteppingClock()
    ) as system:
        created = await use_cases.create_operation(
            system.bus, "backtesting", {}, actor="user", retry_policy=MANUAL
        )
        op = created.operation_id
        await _claim(system, op, WORKER_A)
        while not until.done() and len(reported) < 500:
            reported.append(float(len(reported) % 99))
            await _progress(system, op, WORKER_A, 1, reported[-1], "bar")
            await asyncio.wait([until], timeout=0.1)
    return reported
