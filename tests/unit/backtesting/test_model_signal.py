"""Backtesting on a trained model's signals: the model comes from a training operation."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ktrdr.domain.params.backtesting import ModelSignalParams
from ktrdr.workers.backtesting import BacktestingWorkload, CheckpointMismatch
from ktrdr.workers.backtesting.model_signal import signals_from_probabilities
from ktrdr.workers.bars import synthetic_bars
from ktrdr.workers.features import compute_features
from ktrdr.workers.training.inference import load_predictor
from ktrdr.workers.training.workload import TrainingWorkload
from tests.unit.backtesting.fakes import FakeContext
from tests.unit.backtesting.runs import Runner

BARS = {"bars": 500, "seed": 5}
TINY_MODEL = {"epochs": 1, "bars": 300, "hidden_size": 4, "hidden_layers": 1}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Mapping[str, Path]]:
    """The final model files of two training operations (as the runtime resolves them)."""
    root = tmp_path_factory.mktemp("training")
    files: dict[str, Mapping[str, Path]] = {}
    for operation_id, seed in (("train-a", 1), ("train-b", 2)):
        ctx = FakeContext(root / operation_id)
        TrainingWorkload().run({**TINY_MODEL, "seed": seed}, None, ctx)
        files[operation_id] = ctx.last.files
    return files


@pytest.fixture
def runner(tmp_path: Path, models: dict[str, Mapping[str, Path]]) -> Runner:
    return Runner(tmp_path, BacktestingWorkload(model_loader=models.__getitem__))


def params_around_the_median(files: Mapping[str, Path]) -> dict[str, Any]:
    """Thresholds either side of the median P(up), so that a barely trained model trades."""
    probabilities = load_predictor(files)(compute_features(synthetic_bars(500, 5)))
    median = float(np.nanmedian(probabilities))
    strategy = {"name": "model_signal", "long_threshold": median, "short_threshold": median - 1e-6}
    return {**BARS, "strategy": strategy, "model_operation_id": "train-a"}


def test_signals_follow_the_thresholds() -> None:
    params = ModelSignalParams(long_threshold=0.6, short_threshold=0.4)
    probabilities = np.array([np.nan, 0.7, 0.6, 0.5, 0.4, 0.1])
    no_shorts = params.model_copy(update={"allow_short": False})

    assert signals_from_probabilities(probabilities, params).tolist() == [0, 1, 1, 0, -1, -1]
    assert signals_from_probabilities(probabilities, no_shorts).tolist() == [0, 1, 1, 0, 0, 0]


def test_model_signal_backtest_trades_and_resumes_exactly(
    runner: Runner, models: dict[str, Mapping[str, Path]]
) -> None:
    params = params_around_the_median(models["train-a"])
    expected, _ = runner.to_end(params)

    first = runner.until_stop(params, after=120)
    second = runner.until_stop(params, after=200, resume=first.resume_point())
    resumed, _ = runner.to_end(params, second.resume_point())

    assert expected["total_trades"] - second.state["trades"]["count"] >= 3
    assert second.state["trades"]["count"] >= 3
    assert second.state["bar_index"] == 320
    assert resumed == expected


def test_model_signal_is_flat_while_the_features_warm_up(
    runner: Runner, models: dict[str, Mapping[str, Path]]
) -> None:
    params = params_around_the_median(models["train-a"])
    warm_up = int(np.argmax(np.isfinite(compute_features(synthetic_bars(500, 5))).all(axis=1)))
    warming = runner.until_stop(params, after=warm_up).state
    warm = runner.until_stop(params, after=warm_up + 1).state

    assert warming["trades"]["count"] == 0 and warming["positions"] == []
    assert warm["positions"][0]["entry_bar"] == warm_up


def test_a_resume_with_another_model_is_refused(
    tmp_path: Path, models: dict[str, Mapping[str, Path]]
) -> None:
    params = params_around_the_median(models["train-a"])
    before = Runner(tmp_path / "a", BacktestingWorkload(model_loader=models.__getitem__))
    stopped = before.until_stop(params, after=200)
    swapped = Runner(tmp_path / "b", BacktestingWorkload(model_loader=lambda _: models["train-b"]))

    with pytest.raises(CheckpointMismatch, match="signals differ"):
        swapped.to_end(params, stopped.resume_point())


def test_the_model_loader_is_asked_for_the_training_operation(
    tmp_path: Path, models: dict[str, Mapping[str, Path]]
) -> None:
    asked: list[str] = []

    def loader(operation_id: str) -> Mapping[str, Path]:
        asked.append(operation_id)
        return models["train-a"]

    params = params_around_the_median(models["train-a"])
    Runner(tmp_path, BacktestingWorkload(model_loader=loader)).to_end(params)
    assert asked == ["train-a"]
