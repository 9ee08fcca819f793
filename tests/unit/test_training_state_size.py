"""A training checkpoint's state holds what resume needs, not the run's history: its size
does not grow with the epochs (issue 12); per-epoch metrics go to the log instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ktrdr.artifacts import ArtifactStore
from ktrdr.domain import json_size
from ktrdr.workers.training import TrainingWorkload
from tests.unit.workload_fakes import FakeContext, Journal

TINY: dict[str, Any] = {"bars": 300, "hidden_size": 4, "batch_size": 512, "seed": 3}


def states_of(tmp_path: Path, epochs: int) -> tuple[list[int], FakeContext]:
    journal = Journal(ArtifactStore(tmp_path / str(epochs)))
    ctx = FakeContext(journal)
    params = {**TINY, "epochs": epochs, "checkpoint_every_epochs": 1}
    TrainingWorkload().run(params, None, ctx)
    ctx.close()
    return [json_size(saved.state) for saved in journal.committed], ctx


def test_the_checkpoint_state_does_not_grow_with_the_epochs(tmp_path: Path) -> None:
    short, _ = states_of(tmp_path, 3)
    long, ctx = states_of(tmp_path, 60)
    print(f"training checkpoint state: {short[-1]} bytes at epoch 3, {long[-1]} at epoch 60")
    assert max(long) <= min(short) * 1.1
    assert len(ctx.series["epochs"]) == 60  # every epoch's metrics, in the log instead
    assert [p["epoch"] for p in ctx.series["epochs"]] == list(range(1, 61))
