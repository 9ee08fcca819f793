"""Resuming a backtest from any checkpoint ends exactly as an uninterrupted run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ktrdr.workers.backtesting import BacktestingWorkload
from ktrdr.workers.backtesting.engine import InjectedFailure
from ktrdr.workers.workload import CheckpointType, StopReason
from tests.unit.backtesting.runs import Runner

BARS = 600
STRATEGIES: dict[str, dict[str, Any]] = {
    "rsi": {"name": "rsi", "period": 9, "oversold": 40, "overbought": 60},
    "sma_cross": {"name": "ma_crossover", "fast": 10, "slow": 30},
    "ema_cross": {"name": "ma_crossover", "fast": 8, "slow": 21, "average": "ema"},
}


def params_for(strategy: str, **extra: Any) -> dict[str, Any]:
    return {"bars": BARS, "seed": 11, "strategy": STRATEGIES[strategy], **extra}


@pytest.fixture
def runner(tmp_path: Path) -> Runner:
    return Runner(tmp_path)


@pytest.fixture(params=sorted(STRATEGIES))
def strategy(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def test_each_strategy_trades_throughout(runner: Runner, strategy: str) -> None:
    """Otherwise the resume tests below would prove little."""
    halfway = runner.until_stop(params_for(strategy), after=BARS // 2)
    result, _ = runner.to_end(params_for(strategy))
    assert halfway.state["trades"]["count"] >= 3
    assert result["total_trades"] - halfway.state["trades"]["count"] >= 3


@pytest.mark.parametrize("stop_after", [0, 1, 257, BARS - 1])
def test_resume_ends_as_uninterrupted(runner: Runner, strategy: str, stop_after: int) -> None:
    params = params_for(strategy)
    expected, _ = runner.to_end(params)

    stopped = runner.until_stop(params, after=stop_after)
    resumed, _ = runner.to_end(params, stopped.resume_point())

    assert stopped.checkpoint_type == CheckpointType.CANCELLATION
    assert stopped.state["bar_index"] == stop_after
    assert resumed == expected


def test_resume_of_a_resume_ends_as_uninterrupted(runner: Runner, strategy: str) -> None:
    params = params_for(strategy)
    expected, _ = runner.to_end(params)

    first = runner.until_stop(params, after=150)
    second = runner.until_stop(params, after=200, resume=first.resume_point())
    resumed, _ = runner.to_end(params, second.resume_point())

    assert second.state["bar_index"] == 350
    assert resumed == expected


def test_checkpoint_after_resumes_equals_the_uninterrupted_one(
    runner: Runner, strategy: str
) -> None:
    """Every field at bar 350, indicator state included, whatever the route there."""
    params = params_for(strategy)
    direct = runner.until_stop(params, after=350)

    first = runner.until_stop(params, after=100)
    second = runner.until_stop(params, after=120, resume=first.resume_point())
    third = runner.until_stop(params, after=130, resume=second.resume_point())

    assert third.state == direct.state
    np.testing.assert_array_equal(load_curve(third), load_curve(direct))


def test_equity_curve_has_one_point_per_processed_bar(runner: Runner) -> None:
    params = params_for("sma_cross")
    first = runner.until_stop(params, after=200)
    second = runner.until_stop(params, after=100, resume=first.resume_point())

    curve = load_curve(second)
    meta = second.state["equity_curve"]
    assert curve.shape == (300,) == (meta["length"],)
    assert meta["samples"][-1] == {"bar_index": 299, "portfolio_value": float(curve[299])}
    assert second.state["portfolio_value"] == float(curve[299])


def test_shutdown_checkpoint_resumes_exactly(runner: Runner, strategy: str) -> None:
    params = params_for(strategy)
    expected, _ = runner.to_end(params)

    stopped = runner.until_stop(params, after=333, reason=StopReason.SHUTDOWN)
    resumed, _ = runner.to_end(params, stopped.resume_point())

    assert stopped.checkpoint_type == CheckpointType.SHUTDOWN
    assert resumed == expected


def test_failure_checkpoint_holds_the_last_complete_bar(runner: Runner, strategy: str) -> None:
    params = params_for(strategy)
    expected, _ = runner.to_end(params)
    ctx = runner.context()

    with pytest.raises(InjectedFailure):
        BacktestingWorkload(fail_at_bar=410).run(params, None, ctx)
    failure = ctx.last
    resumed, _ = runner.to_end(params, failure.resume_point())

    assert failure.checkpoint_type == CheckpointType.FAILURE
    assert failure.state == runner.until_stop(params, after=410).state
    assert resumed == expected


def test_failure_after_a_resume_checkpoints_at_its_absolute_bar(runner: Runner) -> None:
    params = params_for("rsi")
    stopped = runner.until_stop(params, after=100)
    ctx = runner.context()

    with pytest.raises(InjectedFailure):
        BacktestingWorkload(fail_at_bar=250).run(params, stopped.resume_point(), ctx)

    assert ctx.last.state["bar_index"] == 250


def test_periodic_checkpoints_every_n_bars_resume_exactly(runner: Runner, strategy: str) -> None:
    params = params_for(strategy, checkpoint_every_bars=100)
    expected, ctx = runner.to_end(params)
    periodic = ctx.of_type(CheckpointType.PERIODIC)

    resumed, resumed_ctx = runner.to_end(params, periodic[2].resume_point())

    assert [saved.state["bar_index"] for saved in periodic] == [100, 200, 300, 400, 500]
    assert resumed == expected
    again = resumed_ctx.of_type(CheckpointType.PERIODIC)
    assert [saved.state["bar_index"] for saved in again] == [400, 500]


def test_time_interval_triggers_periodic_checkpoints(tmp_path: Path) -> None:
    """One fake second per clock read; the default interval comes from the runtime."""
    from ktrdr.workers.backtesting import BacktestingWorkload

    runner = Runner(tmp_path, BacktestingWorkload(checkpoint_interval_seconds=50.0))
    _, ctx = runner.to_end(params_for("rsi"), seconds_per_call=1.0)
    _, overridden = runner.to_end(
        params_for("rsi", checkpoint_interval_seconds=200.0), seconds_per_call=1.0
    )

    bars = [saved.state["bar_index"] for saved in ctx.of_type(CheckpointType.PERIODIC)]
    assert len(bars) >= 5 and np.all(np.diff(bars) < 100)
    assert 0 < len(overridden.of_type(CheckpointType.PERIODIC)) < len(bars)


def test_no_periodic_checkpoint_by_default(runner: Runner) -> None:
    _, ctx = runner.to_end(params_for("rsi"))
    assert ctx.checkpoints == []


def load_curve(saved: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
    curve: np.ndarray[Any, np.dtype[np.float64]] = np.load(
        saved.files["equity_curve.npy"], allow_pickle=False
    )
    return curve
