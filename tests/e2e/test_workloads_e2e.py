"""Real training and backtesting on real worker processes: kill -9, orphaned, resumed, exact."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Cluster, cluster

TRAINING = {"epochs": 60, "bars": 3000, "seed": 7, "checkpoint_every_epochs": 5}
BACKTEST = {"bars": 300_000, "seed": 5, "checkpoint_every_bars": 20_000}


@pytest.fixture
def c(database_url: str, tmp_path: Path) -> Iterator[Cluster]:
    yield from cluster(database_url, tmp_path, orphan_timeout=3.0)


def run_to_end(c: Cluster, operation_type: str, params: dict[str, Any]) -> dict[str, Any]:
    op = c.start(operation_type, **params)
    done = c.wait_status(op, {"completed", "failed"}, timeout=120)
    assert done["status"] == "completed", done["error"]
    return {**done["result"], "operation_id": op}


def kill_resume_finish(
    c: Cluster, operation_type: str, params: dict[str, Any], first: str, second: str
) -> dict[str, Any]:
    op = c.start(operation_type, **params)
    c.wait_checkpoint(op, 2, timeout=120)
    c.signal(first, signal.SIGKILL)
    failed = c.wait_status(op, {"failed", "completed"}, timeout=c.orphan_timeout + 10)
    assert failed["status"] == "failed", "finished before the kill: make the run longer"
    assert failed["error"]["reason"] == "orphaned"
    assert c.post(f"/operations/{op}/resume").status_code == 200
    c.start_worker(second, operation_type, workload=None)
    done = c.wait_status(op, {"completed", "failed"}, timeout=120)
    assert done["status"] == "completed", done["error"]
    assert done["attempt"] == 2 and done["worker_id"] == second
    return {**done["result"], "operation_id": op}


def epochs(c: Cluster, result: dict[str, Any]) -> list[dict[str, Any]]:
    series = c.get(f"/operations/{result['operation_id']}/metrics")["series"]
    return list(series["epochs"])


def test_training_killed_and_resumed_ends_bit_identical(c: Cluster) -> None:
    c.start_server()
    c.start_worker("t1", "training", workload=None)
    expected = run_to_end(c, "training", TRAINING)
    resumed = kill_resume_finish(c, "training", TRAINING, "t1", "t2")
    assert resumed["model_sha256"] == expected["model_sha256"]
    # The per-epoch metrics of the resumed run (MetricsRecorded, some sent twice by the
    # killed attempt and again after the resume) are the uninterrupted run's, one per epoch.
    assert epochs(c, resumed) == epochs(c, expected)
    assert len(epochs(c, expected)) == TRAINING["epochs"]
    assert resumed["epochs_completed"] == TRAINING["epochs"]


def test_backtest_killed_and_resumed_gives_the_same_trades(c: Cluster) -> None:
    c.start_server()
    c.start_worker("b1", "backtesting", workload=None)
    expected = run_to_end(c, "backtesting", BACKTEST)
    resumed = kill_resume_finish(c, "backtesting", BACKTEST, "b1", "b2")
    for key in (
        "trades_sha256",
        "equity_sha256",
        "final_portfolio_value",
        "total_trades",
        "sharpe_ratio",
        "max_drawdown",
    ):
        assert resumed[key] == expected[key], key


def test_backtest_on_a_trained_models_signals(c: Cluster) -> None:
    c.start_server()
    c.start_worker("t1", "training", workload=None)
    c.start_worker("b1", "backtesting", workload=None)
    model = c.start("training", epochs=6, bars=3000, seed=3)
    trained = c.wait_status(model, "completed", timeout=120)
    assert trained["result"]["model_artifact"] == "model.pt"
    # Completion cleanup keeps the checkpoint that holds the trained model.
    c.wait_status(model, "completed")
    result = run_to_end(
        c,
        "backtesting",
        {
            "bars": 3000,
            "seed": 3,
            "strategy": {"name": "model_signal"},
            "model_operation_id": model,
        },
    )
    assert result["total_trades"] > 0
    again = run_to_end(
        c,
        "backtesting",
        {
            "bars": 3000,
            "seed": 3,
            "strategy": {"name": "model_signal"},
            "model_operation_id": model,
        },
    )
    assert again["trades_sha256"] == result["trades_sha256"]
