"""The training workload's other duties: stop, failure, snapshots, JSON state, params, inference."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ktrdr.artifacts import ArtifactStore
from ktrdr.domain import ValidationError
from ktrdr.workers.bars import synthetic_bars
from ktrdr.workers.checkpointing import CheckpointWriter
from ktrdr.workers.features import compute_features, feature_matrix
from ktrdr.workers.json_floats import decode_float, encode_float, json_safe
from ktrdr.workers.training import (
    CheckpointIncompatible,
    TrainingWorkload,
    load_predictor,
    parse_params,
)
from ktrdr.workers.training.data import load_dataset
from ktrdr.workers.training.snapshot import capture, checkpoint_state, restore
from ktrdr.workers.training.staging import StagingPool
from ktrdr.workers.training.trainer import InjectedFailure, Trainer, clone_tensors
from ktrdr.workers.workload import CheckpointType, OperationStopped, ResumePoint, StopReason
from tests.unit.test_training_resume import (  # the fixtures too: one run, one thread
    PARAMS,
    Outcome,
    assert_same_end,
    baseline,
    finish,
    journal,
    one_thread,
    run,
)
from tests.unit.workload_fakes import FakeContext, Journal

__all__ = ["baseline", "journal", "one_thread"]


@pytest.mark.parametrize("reason", list(StopReason))
def test_a_stop_saves_a_checkpoint_of_its_type_then_raises(
    journal: Journal, reason: StopReason
) -> None:
    with pytest.raises(OperationStopped) as caught:
        run(journal, stop_at=2, stop_reason=reason)
    assert caught.value.reason is reason
    [saved] = journal.committed
    assert saved.checkpoint_type == CheckpointType(reason.value)
    assert (saved.state["epoch"], saved.state["batch"]) == (0, 2)


def test_a_failure_in_a_step_checkpoints_the_last_consistent_state(
    baseline: Outcome, journal: Journal
) -> None:
    with pytest.raises(InjectedFailure):
        run(journal, fail_at_epoch=2)
    failure = journal.latest()
    assert failure.checkpoint_type is CheckpointType.FAILURE
    assert (failure.state["epoch"], failure.state["batch"]) == (2, 0)  # the last capture
    assert_same_end(finish(run(journal), journal), baseline)


def test_a_failure_before_any_capture_saves_nothing(journal: Journal) -> None:
    with pytest.raises(InjectedFailure):
        run(journal, fail_at_epoch=0)
    assert journal.committed == []


class FailingProgress(FakeContext):
    """Its progress call (made at a safe point, between steps) fails the 7th time."""

    def progress(self, percentage: float, current_step: str, message: str = "", **d: Any) -> None:
        super().progress(percentage, current_step, message, **d)
        if len(self.reports) == 7:
            raise ConnectionError("backend unreachable")


def test_a_failure_between_steps_checkpoints_the_current_state(
    baseline: Outcome, journal: Journal
) -> None:
    ctx = FailingProgress(journal)
    with pytest.raises(ConnectionError):
        TrainingWorkload().run(PARAMS, None, ctx)
    ctx.close()
    failure = journal.latest()
    assert failure.checkpoint_type is CheckpointType.FAILURE
    assert (failure.state["epoch"], failure.state["batch"]) == (1, 2)
    assert_same_end(finish(run(journal), journal), baseline)


def test_a_failed_failure_checkpoint_is_noted_on_the_error(journal: Journal) -> None:
    class NoDisk(FailingProgress):
        def checkpoint(self, checkpoint_type: CheckpointType, capture: Any) -> None:
            if checkpoint_type is CheckpointType.FAILURE:
                raise OSError(28, "No space left on device")
            super().checkpoint(checkpoint_type, capture)

    ctx = NoDisk(journal)
    with pytest.raises(ConnectionError) as caught:
        TrainingWorkload().run(PARAMS, None, ctx)
    ctx.close()
    assert "failure checkpoint was not saved" in "".join(caught.value.__notes__)


def test_the_capture_is_not_reached_by_later_training(tmp_path: Path) -> None:
    """Durable property 12: training mutates weights, and takes more captures from the same
    staging pool, while the slow background write runs."""
    trainer = Trainer(parse_params(PARAMS), load_dataset(parse_params(PARAMS)))
    trainer.train_batch()
    expected = clone_tensors(trainer.model.state_dict())
    expected_steps = {
        k: v["step"].clone() for k, v in trainer.optimizer.state_dict()["state"].items()
    }
    store = ArtifactStore(tmp_path, write_delay_seconds=0.2)
    saved = []
    writer = CheckpointWriter(store, "0d5c2f9e-1b3a-4c8d-9e7f-6a5b4c3d2e1f", saved.append)
    staging = StagingPool()
    writer.save(CheckpointType.PERIODIC, capture(trainer, staging), sequence=1, background=True)
    for _ in range(3):
        trainer.train_batch()  # the optimizer updates the live tensors in place
        later = capture(trainer, staging)  # must not reuse the buffers being written
    writer.close()
    assert later.state["global_step"] == 4
    files = store.load(saved[0].operation_id, 1, saved[0].manifest)
    written = torch.load(files["model.pt"], weights_only=True)["state_dict"]
    optimizer = torch.load(files["optimizer.pt"], weights_only=True)
    assert all(torch.equal(written[name], tensor) for name, tensor in expected.items())
    assert not torch.equal(written["net.0.weight"], trainer.model.state_dict()["net.0.weight"])
    assert {k: v["step"] for k, v in optimizer["state"].items()} == expected_steps
    assert saved[0].state["global_step"] == 1


def test_nan_and_infinity_are_encoded_in_the_state_and_decoded_on_resume(tmp_path: Path) -> None:
    params = parse_params(PARAMS)
    trainer = Trainer(params, load_dataset(params))
    trainer.train_batch()
    trainer.record.last = {
        "epoch": 1,
        "train_loss": math.nan,
        "train_accuracy": 0.5,
        "val_loss": math.inf,
        "val_accuracy": 0.5,
        "learning_rate": 1e-3,
    }
    snapshot = capture(trainer)
    text = json.dumps(snapshot.state, allow_nan=False)  # raises on a bare NaN
    state = json.loads(text)
    assert state["last"]["train_loss"] == "NaN" and state["val_loss"] == "Infinity"
    assert state["best_val_loss"] == "Infinity" and state["train_loss"] == "NaN"
    store = ArtifactStore(tmp_path)
    operation = "7b3e1f2a-9c8d-4e5f-a6b7-c8d9e0f1a2b3"
    manifest = store.write(operation, 1, snapshot.files)
    resumed = Trainer(params, load_dataset(params))
    restore(
        resumed, ResumePoint(1, CheckpointType.PERIODIC, state, store.load(operation, 1, manifest))
    )
    entry = resumed.record.last
    assert entry is not None
    assert math.isnan(entry["train_loss"]) and entry["val_loss"] == math.inf
    assert resumed.record.best_val_loss == math.inf
    assert checkpoint_state(resumed) == state


def test_json_floats() -> None:
    assert [encode_float(v) for v in (1.5, math.nan, math.inf, -math.inf)] == [
        1.5,
        "NaN",
        "Infinity",
        "-Infinity",
    ]
    assert math.isnan(decode_float("NaN")) and decode_float("-Infinity") == -math.inf
    assert decode_float(2) == 2.0
    with pytest.raises(ValueError):
        decode_float("nan")
    assert json_safe({"a": (1, math.nan), "b": [{"c": math.inf}]}) == {
        "a": [1, "NaN"],
        "b": [{"c": "Infinity"}],
    }


def test_a_checkpoint_of_other_params_is_refused(journal: Journal) -> None:
    with pytest.raises(OperationStopped):
        run(journal, stop_at=2)
    with pytest.raises(CheckpointIncompatible, match="other training params"):
        run(journal, params={"hidden_size": 9})
    state = {**journal.latest().state, "schema": "ktrdr.training/0"}
    resume = ResumePoint(1, CheckpointType.CANCELLATION, state, journal.files(1))
    ctx = FakeContext(journal)
    with pytest.raises(CheckpointIncompatible, match="schema"):
        TrainingWorkload().run(PARAMS, resume, ctx)
    ctx.close()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"epochs": 0}, "epochs: Input should be greater than or equal to 1"),
        ({"epochs": "3"}, "epochs: Input should be a valid integer"),
        ({"learning_rate": math.nan}, "learning_rate: Input should be a finite number"),
        ({"batch_sise": 8}, "batch_sise: Extra inputs are not permitted"),
        ({"data": {"path": "x.csv"}}, "data.csv_path: Field required"),
        ({"bars": 10}, "bars: Input should be greater than or equal to 200"),
    ],
)
def test_bad_params_are_refused_naming_the_field(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=f"invalid training params: .*{message}") as caught:
        TrainingWorkload().run(
            params, None, FakeContext(Journal(ArtifactStore(Path("/nonexistent"))))
        )
    assert caught.value.code == "VALIDATION_ERROR"


def test_defaults_and_the_cadence_passed_in(journal: Journal) -> None:
    defaults = parse_params({})
    assert (defaults.epochs, defaults.bars, defaults.threads) == (8, 2000, 1)
    workload = TrainingWorkload(checkpoint_every_epochs=2, checkpoint_interval_seconds=10_000)
    ctx = FakeContext(journal)
    params = {key: value for key, value in PARAMS.items() if key != "checkpoint_every_epochs"}
    workload.run(params, None, ctx)
    ctx.close()
    assert [c.state["epoch"] for c in journal.committed] == [2, 4]


def test_progress_reports_epochs_losses_and_eta(journal: Journal) -> None:
    ctx = FakeContext(journal)
    TrainingWorkload().run(PARAMS, None, ctx)
    ctx.close()
    percentages = [report["percentage"] for report in ctx.reports]
    assert percentages == sorted(percentages) and percentages[-1] == 100.0
    last = ctx.reports[-1]
    assert last["step"] == "epoch 4/4" and last["epoch"] == 4 and last["eta_seconds"] == 0.0
    assert isinstance(last["val_loss"], float) and isinstance(last["val_accuracy"], float)
    assert ctx.reports[0]["running_loss"] is not None and ctx.reports[0]["val_loss"] is None
    assert not torch.are_deterministic_algorithms_enabled()  # the global switch is put back


def test_the_predictor_of_the_final_model(baseline: Outcome) -> None:
    files = baseline.journal.files(baseline.journal.latest().sequence)
    predictor = load_predictor(files, expected_sha256=baseline.result["model_sha256"])
    features, _, _ = feature_matrix(synthetic_bars(PARAMS["bars"], 42))
    probabilities = predictor(features)
    assert probabilities.shape == (len(features),)
    assert ((probabilities > 0) & (probabilities < 1)).all()
    np.testing.assert_array_equal(predictor(features), probabilities)
    warm_up = predictor(compute_features(synthetic_bars(60, 1)))
    assert np.isnan(warm_up[:49]).all() and np.isfinite(warm_up[49:]).all()
    assert load_predictor(files, name="best_model.pt").feature_names == predictor.feature_names
    with pytest.raises(ValueError, match="expected"):
        load_predictor(files, expected_sha256="0" * 64)
    with pytest.raises(ValueError, match="features per row"):
        predictor(np.zeros((2, 3)))
