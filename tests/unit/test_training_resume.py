"""Bit-exact resume: from any checkpoint, a resumed run ends exactly as an uninterrupted one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from ktrdr.artifacts import ArtifactStore
from ktrdr.workers.training import TrainingWorkload
from ktrdr.workers.workload import CheckpointType, OperationStopped, StopReason
from tests.unit.workload_fakes import FakeContext, Journal

# 5 batches per epoch, so 5 safe points per epoch: 4 after batches, 1 after the epoch.
PARAMS: dict[str, Any] = {
    "epochs": 4,
    "bars": 400,
    "hidden_size": 8,
    "batch_size": 64,
    "checkpoint_every_epochs": 1,
}
SAFE_POINTS_PER_EPOCH = 5


@dataclass(frozen=True)
class Outcome:
    result: dict[str, Any]
    journal: Journal
    weights: dict[str, torch.Tensor]
    optimizer: dict[str, Any]


def run(journal: Journal, resume_from: int | None = None, **options: Any) -> dict[str, Any]:
    params = {**PARAMS, **options.pop("params", {})}
    workload = TrainingWorkload(fail_at_epoch=options.pop("fail_at_epoch", None))
    ctx = FakeContext(journal, **options)
    resume = (
        None if resume_from is None and not journal.committed else journal.resume_point(resume_from)
    )
    try:
        return workload.run(params, resume, ctx)
    finally:
        ctx.close()


def stop(journal: Journal, resume_from: int | None = None, **options: Any) -> OperationStopped:
    with pytest.raises(OperationStopped) as caught:
        run(journal, resume_from, **options)
    return caught.value


def finish(result: dict[str, Any], journal: Journal) -> Outcome:
    files = journal.files(journal.latest().sequence)
    model = torch.load(files["model.pt"], weights_only=True)
    optimizer = torch.load(files["optimizer.pt"], weights_only=True)
    return Outcome(result, journal, model["state_dict"], optimizer)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    journal = Journal(ArtifactStore(tmp_path_factory.mktemp("baseline")))
    return finish(run(journal), journal)


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(ArtifactStore(tmp_path))


def assert_same_end(outcome: Outcome, baseline: Outcome) -> None:
    assert outcome.result == baseline.result  # model_sha256, losses
    assert outcome.journal.epochs == baseline.journal.epochs  # every epoch's metrics
    assert outcome.weights.keys() == baseline.weights.keys()
    for name, tensor in baseline.weights.items():
        assert torch.equal(outcome.weights[name], tensor), name
    for index, state in baseline.optimizer["state"].items():
        for key, tensor in state.items():
            assert torch.equal(outcome.optimizer["state"][index][key], tensor), (index, key)
    assert outcome.optimizer["param_groups"] == baseline.optimizer["param_groups"]


def test_the_uninterrupted_run_checkpoints_each_epoch(baseline: Outcome) -> None:
    committed = baseline.journal.committed
    assert [(c.sequence, c.state["epoch"], c.state["batch"]) for c in committed] == [
        (1, 1, 0),
        (2, 2, 0),
        (3, 3, 0),
        (4, 4, 0),
    ]
    assert all(c.checkpoint_type is CheckpointType.PERIODIC for c in committed)
    result, epochs = baseline.result, baseline.journal.epochs
    assert result["epochs_completed"] == 4 and sorted(epochs) == [1, 2, 3, 4]
    assert result["model_artifact"] == "model.pt" and len(result["model_sha256"]) == 64
    assert result["final_val_loss"] == epochs[4]["val_loss"]
    assert result["best_val_loss"] == min(entry["val_loss"] for entry in epochs.values())
    assert "history" not in result and "history" not in baseline.journal.latest().state


@pytest.mark.parametrize(
    ("stop_at", "position"),
    [
        (1, (0, 1)),  # after the very first batch
        (SAFE_POINTS_PER_EPOCH, (1, 0)),  # at the first epoch's end (the first checkpoint)
        (8, (1, 3)),  # in the middle of an epoch
        (3 * SAFE_POINTS_PER_EPOCH, (3, 0)),  # just before the last epoch
        (18, (3, 3)),  # in the last epoch
        (4 * SAFE_POINTS_PER_EPOCH, (4, 0)),  # after the last step
    ],
)
def test_resume_after_a_stop_ends_bit_identical(
    baseline: Outcome, journal: Journal, stop_at: int, position: tuple[int, int]
) -> None:
    stopped = stop(journal, stop_at=stop_at)
    assert stopped.reason is StopReason.CANCELLATION
    last = journal.latest()
    assert last.checkpoint_type is CheckpointType.CANCELLATION
    assert (last.state["epoch"], last.state["batch"]) == position
    assert_same_end(finish(run(journal), journal), baseline)


def test_a_resume_of_a_resume_ends_bit_identical(baseline: Outcome, journal: Journal) -> None:
    stop(journal, stop_at=3)
    stop(journal, stop_at=9, stop_reason=StopReason.SHUTDOWN)
    assert [c.checkpoint_type for c in journal.committed][-1] is CheckpointType.SHUTDOWN
    assert_same_end(finish(run(journal), journal), baseline)


def test_resume_from_an_earlier_checkpoint_ends_bit_identical(
    baseline: Outcome, journal: Journal
) -> None:
    run(journal)
    for sequence in (2, 1):
        assert_same_end(finish(run(journal, resume_from=sequence), journal), baseline)


def test_resume_from_a_time_triggered_mid_epoch_checkpoint(
    baseline: Outcome, journal: Journal
) -> None:
    run(journal, params={"checkpoint_every_epochs": 100, "checkpoint_interval_seconds": 3.5})
    mid_epoch = [c.sequence for c in journal.committed if c.state["batch"] > 0]
    assert len(mid_epoch) >= 3
    assert_same_end(finish(run(journal, resume_from=mid_epoch[1]), journal), baseline)


def test_resume_from_the_final_checkpoint_returns_the_same_result(
    baseline: Outcome, journal: Journal
) -> None:
    run(journal)
    count = len(journal.committed)
    assert run(journal) == baseline.result
    assert len(journal.committed) == count  # nothing left to train or save
