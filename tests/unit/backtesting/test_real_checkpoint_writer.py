"""The backtest through the real checkpoint path: background writes, manifest, verified load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ktrdr.artifacts import ArtifactStore
from ktrdr.workers.backtesting import BacktestingWorkload
from ktrdr.workers.workload import CheckpointType, OperationStopped, ResumePoint, StopReason
from tests.unit.workload_fakes import FakeContext, Journal

PARAMS = {
    "bars": 800,
    "seed": 11,
    "strategy": {"name": "rsi", "period": 9, "oversold": 40, "overbought": 60},
    "checkpoint_every_bars": 150,
}


def run(journal: Journal, resume: ResumePoint | None, **options: Any) -> dict[str, Any]:
    ctx = FakeContext(journal, **options)
    try:
        return BacktestingWorkload().run(PARAMS, resume, ctx)
    finally:
        ctx.close()


def test_resume_from_written_and_verified_artifacts(tmp_path: Path) -> None:
    expected = run(Journal(ArtifactStore(tmp_path / "uninterrupted")), None)
    journal = Journal(ArtifactStore(tmp_path / "interrupted"))

    with pytest.raises(OperationStopped):
        run(journal, None, stop_at=400, stop_reason=StopReason.SHUTDOWN)
    with pytest.raises(OperationStopped):
        run(journal, journal.resume_point(2), stop_at=300)  # from the periodic one at bar 300
    resumed = run(journal, journal.resume_point())

    kinds = [(saved.checkpoint_type, saved.state["bar_index"]) for saved in journal.committed]
    assert kinds == [
        (CheckpointType.PERIODIC, 150),
        (CheckpointType.PERIODIC, 300),
        (CheckpointType.SHUTDOWN, 399),
        (CheckpointType.PERIODIC, 450),
        (CheckpointType.CANCELLATION, 599),
        (CheckpointType.PERIODIC, 749),
    ]
    assert resumed == expected
