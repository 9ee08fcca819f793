"""CSV input, what a checkpoint holds, resume refusals, progress and JSON safety."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ktrdr.workers.backtesting import CheckpointMismatch
from ktrdr.workers.backtesting.digests import bars_sha256
from ktrdr.workers.bars import Bars, synthetic_bars
from ktrdr.workers.workload import ResumePoint
from tests.unit.backtesting.runs import Runner

STRATEGY = {"name": "ma_crossover", "fast": 10, "slow": 30}


@pytest.fixture
def runner(tmp_path: Path) -> Runner:
    return Runner(tmp_path)


def write_csv(path: Path, bars: Bars, iso: bool) -> Path:
    rows = ["timestamp,open,high,low,close,volume"]
    for i in range(len(bars)):
        stamp = int(bars.timestamp[i])
        when = np.datetime_as_string(np.datetime64(stamp, "s")) + "Z" if iso else str(stamp)
        prices = (bars.open[i], bars.high[i], bars.low[i], bars.close[i], bars.volume[i])
        rows.append(",".join([when, *(repr(float(p)) for p in prices)]))
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(autouse=True)
def data_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Params may name CSVs under the data roots only: here, the test's folder."""
    monkeypatch.setenv("KTRDR_DATA_ROOTS", str(tmp_path))


@pytest.mark.parametrize("iso", [False, True], ids=["epoch", "iso"])
def test_csv_bars_backtest_like_the_same_synthetic_bars(
    runner: Runner, tmp_path: Path, iso: bool
) -> None:
    csv_path = write_csv(tmp_path / "bars.csv", synthetic_bars(500, seed=11), iso)
    from_csv = {"data": {"csv_path": str(csv_path)}, "strategy": STRATEGY}

    result, _ = runner.to_end(from_csv)
    synthetic, _ = runner.to_end({"bars": 500, "seed": 11, "strategy": STRATEGY})

    assert result == synthetic
    assert result["total_trades"] > 0


def test_csv_backtest_resumes_exactly(runner: Runner, tmp_path: Path) -> None:
    csv_path = write_csv(tmp_path / "bars.csv", synthetic_bars(500, seed=11), iso=True)
    params = {"data": {"csv_path": str(csv_path)}, "bars": 450, "strategy": STRATEGY}
    expected, _ = runner.to_end(params)

    stopped = runner.until_stop(params, after=222)
    resumed, _ = runner.to_end(params, stopped.resume_point())

    assert stopped.state["current_date"] == "2020-01-10T05:00:00+00:00"  # bar 221, hourly
    assert resumed == expected
    assert resumed["total_bars"] == 450


def test_checkpoint_state_holds_the_backtest(runner: Runner) -> None:
    stopped = runner.until_stop({"bars": 400, "seed": 7, "strategy": STRATEGY}, after=250)
    state = stopped.state
    trades = json.loads(stopped.files["trades.json"].read_bytes())

    assert state["bar_index"] == 250 and state["total_bars"] == 400
    assert state["current_date"] == "2020-01-11T09:00:00+00:00"
    assert len(state["positions"]) == 1  # this crossover is always in the market once warm
    position = state["positions"][0]
    assert state["portfolio_value"] == pytest.approx(
        state["cash"] + position["side"] * position["units"] * synthetic_bars(400, 7).close[249]
    )
    assert state["trades"]["file"] == "trades.json"
    assert len(trades) == state["trades"]["count"] > 0
    assert all(trade["exit_bar"] < 250 for trade in trades)
    assert state["strategy"]["name"] == "ma_crossover"
    assert len(state["strategy"]["state"]["slow"]["window"]) == 30
    assert state["equity_curve"]["file"] == "equity_curve.npy"
    assert len(state["equity_curve"]["samples"]) <= 101
    assert state["params"]["strategy"] == {**STRATEGY, "average": "sma", "allow_short": True}
    assert state["data_sha256"] == bars_sha256(synthetic_bars(400, 7))


def test_resume_on_bars_that_changed_is_refused(runner: Runner, tmp_path: Path) -> None:
    csv_path = write_csv(tmp_path / "bars.csv", synthetic_bars(300, seed=1), iso=False)
    params = {"data": {"csv_path": str(csv_path)}}
    stopped = runner.until_stop(params, after=100)
    write_csv(csv_path, synthetic_bars(300, seed=2), iso=False)

    with pytest.raises(CheckpointMismatch, match="other bars"):
        runner.to_end(params, stopped.resume_point())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seed": 8}, "other params: seed 7 -> 8"),
        ({"fee_bps": 5.0}, "other params: fee_bps 1.0 -> 5.0"),
        ({"strategy": STRATEGY}, "other params: strategy {'name': 'rsi'"),
    ],
)
def test_resume_with_other_params_is_refused(
    runner: Runner, change: dict[str, Any], message: str
) -> None:
    stopped = runner.until_stop({"bars": 400, "seed": 7}, after=100)
    with pytest.raises(CheckpointMismatch, match=re.escape(message)):
        runner.to_end({"bars": 400, "seed": 7, **change}, stopped.resume_point())


def test_resume_may_change_the_checkpoint_cadence(runner: Runner) -> None:
    expected, _ = runner.to_end({"bars": 400, "seed": 7})
    stopped = runner.until_stop({"bars": 400, "seed": 7}, after=100)
    cadence = {"checkpoint_every_bars": 50, "checkpoint_interval_seconds": 9.0}

    resumed, ctx = runner.to_end({"bars": 400, "seed": 7, **cadence}, stopped.resume_point())

    assert resumed == expected
    assert len(ctx.checkpoints) == 5


def test_resume_with_a_corrupt_equity_curve_is_refused(runner: Runner) -> None:
    stopped = runner.until_stop({"bars": 400, "seed": 7}, after=100)
    path = stopped.files["equity_curve.npy"]
    curve = np.load(path)
    curve[50] += 1.0
    np.save(path, curve)
    with pytest.raises(CheckpointMismatch, match="does not match"):
        runner.to_end({"bars": 400, "seed": 7}, stopped.resume_point())


def test_resume_without_the_equity_curve_is_refused(runner: Runner) -> None:
    stopped = runner.until_stop({"bars": 400, "seed": 7}, after=100)
    point = ResumePoint(stopped.sequence, stopped.checkpoint_type, stopped.state, {})
    with pytest.raises(CheckpointMismatch, match="missing"):
        runner.to_end({"bars": 400, "seed": 7}, point)


def test_resume_with_corrupt_trades_is_refused(runner: Runner) -> None:
    stopped = runner.until_stop({"bars": 400, "seed": 7}, after=300)
    path = stopped.files["trades.json"]
    path.write_bytes(path.read_bytes().replace(b'"side":1', b'"side":-1', 1))
    with pytest.raises(CheckpointMismatch, match="trades do not match"):
        runner.to_end({"bars": 400, "seed": 7}, stopped.resume_point())


def test_resume_without_the_trades_is_refused(runner: Runner) -> None:
    stopped = runner.until_stop({"bars": 400, "seed": 7}, after=100)
    files = {name: path for name, path in stopped.files.items() if name != "trades.json"}
    point = ResumePoint(stopped.sequence, stopped.checkpoint_type, stopped.state, files)
    with pytest.raises(CheckpointMismatch, match="'trades.json' is missing"):
        runner.to_end({"bars": 400, "seed": 7}, point)


def test_progress_is_reported_about_every_percent(runner: Runner) -> None:
    result, ctx = runner.to_end({"bars": 1000, "seed": 7, "strategy": STRATEGY})
    reports = ctx.reports

    assert len(reports) == 100
    assert [r["bar_index"] for r in reports] == list(range(10, 1001, 10))
    assert reports[-1]["percentage"] == 100.0
    assert reports[-1]["current_step"] == "bar 1000 of 1000"
    assert reports[-1]["portfolio_value"] == result["final_portfolio_value"]
    assert reports[-1]["trades"] == result["total_trades"]


def test_progress_after_a_resume_counts_absolute_bars(runner: Runner) -> None:
    stopped = runner.until_stop({"bars": 1000, "seed": 7}, after=600)
    _, ctx = runner.to_end({"bars": 1000, "seed": 7}, stopped.resume_point())
    assert ctx.reports[0]["bar_index"] == 610
    assert ctx.reports[0]["percentage"] == 61.0


def test_result_is_strict_json(runner: Runner) -> None:
    result, _ = runner.to_end({"bars": 300, "seed": 7})
    assert json.loads(json.dumps(result, allow_nan=False)) == result
    assert set(result) == {
        "total_return",
        "sharpe_ratio",
        "max_drawdown",
        "win_rate",
        "total_trades",
        "final_portfolio_value",
        "total_bars",
        "trades_sha256",
        "equity_sha256",
    }


def test_the_last_bar_closes_the_open_position(runner: Runner) -> None:
    params = {"bars": 400, "seed": 7, "strategy": STRATEGY}
    before_last = runner.until_stop(params, after=399)
    resumed, _ = runner.to_end(params, before_last.resume_point())

    assert len(before_last.state["positions"]) == 1
    assert resumed["total_trades"] == before_last.state["trades"]["count"] + 1
