"""Params: defaults that run in seconds, and errors that say what is wrong where."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ktrdr.domain.params.backtesting import (
    STRATEGY_NAMES,
    ModelSignalParams,
    MovingAverageCrossParams,
    RsiParams,
    parse_params,
)
from ktrdr.workers.backtesting import BacktestingWorkload, InvalidBacktestParams
from tests.unit.backtesting.fakes import FakeContext


def test_defaults() -> None:
    params = parse_params({})
    assert params.strategy == RsiParams(period=14, oversold=30.0, overbought=70.0)
    assert (params.bars, params.seed, params.data) == (None, 42, None)
    assert (params.initial_cash, params.fee_bps, params.slippage_bps) == (100_000.0, 1.0, 1.0)
    assert (params.checkpoint_every_bars, params.checkpoint_interval_seconds) == (10_000, None)
    assert params.bar_source() == {"bars": None, "seed": 42, "data": None}


def test_a_strategy_can_be_named_by_a_string() -> None:
    assert parse_params({"strategy": "ma_crossover"}).strategy == MovingAverageCrossParams()


def test_model_signal_takes_its_model_from_an_operation() -> None:
    params = parse_params({"strategy": "model_signal", "model_operation_id": "op-1"})
    assert params.strategy == ModelSignalParams()
    assert params.model_operation_id == "op-1"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"strategy": {"name": "macd"}}, "strategy: Input tag 'macd' found using 'name' does not"),
        ({"strategy": {"period": 3}}, "strategy: a strategy needs a name, one of rsi, ma_crossov"),
        (
            {"strategy": {"name": "rsi", "period": 1}},
            "strategy.rsi.period: Input should be greater",
        ),
        ({"strategy": {"name": "rsi", "oversold": 80}}, "oversold (80.0) must be below overbought"),
        ({"strategy": {"name": "ma_crossover", "fast": 30, "slow": 10}}, "fast (30) must be short"),
        ({"strategy": {"name": "ma_crossover", "average": "wma"}}, "strategy.ma_crossover.average"),
        ({"strategy": "model_signal"}, "strategy model_signal needs model_operation_id"),
        ({"fee_bps": -1}, "fee_bps: Input should be greater than or equal to 0 (got -1)"),
        ({"initial_cash": float("nan")}, "initial_cash: Input should be a finite number"),
        ({"bars": 0}, "bars: Input should be greater than or equal to 1 (got 0)"),
        ({"data": {"path": "x.csv"}}, "data.csv_path: Field required"),
        ({"initail_cash": 5}, "initail_cash: Extra inputs are not permitted"),
        ({"checkpoint_every_bars": "often"}, "checkpoint_every_bars: Input should be a valid int"),
        ({"bars": "500"}, "bars: Input should be a valid integer (got '500')"),
        ({"seed": True}, "seed: Input should be a valid integer (got True)"),
    ],
)
def test_invalid_params_are_named(params: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidBacktestParams, match="^invalid backtesting params: ") as error:
        parse_params(params)
    assert message in str(error.value)


def test_every_problem_is_listed() -> None:
    with pytest.raises(InvalidBacktestParams) as error:
        parse_params({"fee_bps": -1, "slippage_bps": -2})
    assert "fee_bps:" in str(error.value) and "slippage_bps:" in str(error.value)


def test_the_workload_rejects_invalid_params_before_it_starts(tmp_path: Path) -> None:
    ctx = FakeContext(tmp_path)
    with pytest.raises(InvalidBacktestParams, match="fee_bps"):
        BacktestingWorkload().run({"fee_bps": -1}, None, ctx)
    assert ctx.checkpoints == [] and ctx.reports == []


def test_model_signal_needs_a_worker_that_can_load_models(tmp_path: Path) -> None:
    params = {"strategy": "model_signal", "model_operation_id": "op-1", "bars": 100}
    with pytest.raises(RuntimeError, match="no model_loader"):
        BacktestingWorkload().run(params, None, FakeContext(tmp_path))


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_every_strategy_name_parses(name: str) -> None:
    assert parse_params({"strategy": name, "model_operation_id": "op-1"}).strategy.name == name
