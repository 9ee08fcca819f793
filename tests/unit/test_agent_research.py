"""Agent research params, design and verdict: pure and deterministic."""

from __future__ import annotations

import pytest

from ktrdr.domain import ValidationError, assess, design, parse_research_params
from tests.unit.research_world import GOOD_BACKTEST

THRESHOLDS = {"min_sharpe": 0.5, "max_drawdown": 0.2, "min_trades": 5}


def test_a_seed_alone_is_valid_params_with_small_defaults() -> None:
    params = parse_research_params({"seed": 3})
    assert params.seed == 3 and params.bars == 1500
    assert params.thresholds() == {"min_sharpe": 0.0, "max_drawdown": 0.25, "min_trades": 3}
    assert parse_research_params({}).seed == 42


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"seed": -1}, "seed"),
        ({"seed": "7"}, "seed"),
        ({"sed": 7}, "sed"),
        ({"strategies": []}, "strategies"),
        ({"strategies": ["momentum"]}, "strategies.0"),
        ({"max_drawdown": 2}, "max_drawdown"),
        ({"backtesting": {"strategy": "rsi"}}, "may not override strategy"),
    ],
)
def test_bad_params_are_refused_naming_the_field(params: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError, match="invalid agent_research params") as refused:
        parse_research_params(params)
    assert field in refused.value.detail


def test_the_same_params_always_design_the_same_study() -> None:
    first = design(parse_research_params({"seed": 11}))
    again = design(parse_research_params({"seed": 11}))
    assert first == again
    assert first.strategy_name.startswith(first.strategy["name"] + "(")


def test_seeds_search_the_space() -> None:
    designs = [design(parse_research_params({"seed": seed})) for seed in range(40)]
    assert {d.strategy["name"] for d in designs} == {"rsi", "ma_crossover", "model_signal"}
    assert len({d.strategy_name for d in designs}) > 10
    assert len({d.training["hidden_size"] for d in designs}) > 1


def test_the_design_trains_small_and_both_children_see_the_same_market() -> None:
    study = design(parse_research_params({"seed": 5, "bars": 900, "csv_path": "/data/x.csv"}))
    market = {"seed": 5, "bars": 900, "data": {"csv_path": "/data/x.csv"}}
    assert study.training.items() >= market.items()
    assert study.backtesting.items() >= market.items()
    assert study.training["epochs"] <= 5 and study.training["checkpoint_every_epochs"] == 1
    assert study.backtesting["strategy"] == study.strategy


def test_overrides_win_over_the_design() -> None:
    params = {"seed": 5, "training": {"epochs": 30}, "backtesting": {"fee_bps": 0.0}}
    study = design(parse_research_params(params))
    assert study.training["epochs"] == 30 and study.backtesting["fee_bps"] == 0.0


def test_model_signal_can_be_chosen() -> None:
    study = design(parse_research_params({"seed": 1, "strategies": ["model_signal"]}))
    assert study.trades_the_model
    assert study.strategy["short_threshold"] < 0.5 < study.strategy["long_threshold"]


def test_metrics_meeting_every_threshold_are_accepted_with_every_reason() -> None:
    verdict = assess(GOOD_BACKTEST, THRESHOLDS)
    assert verdict.decision == "accepted"
    assert verdict.reasons == (
        "sharpe_ratio 1.4 >= min_sharpe 0.5",
        "max_drawdown 0.08 <= max_drawdown 0.2",
        "total_trades 12 >= min_trades 5",
    )


def test_a_rejection_names_only_the_failed_checks() -> None:
    metrics = {**GOOD_BACKTEST, "sharpe_ratio": 0.1, "max_drawdown": 0.35}
    verdict = assess(metrics, THRESHOLDS)
    assert verdict.decision == "rejected"
    assert verdict.reasons == (
        "sharpe_ratio 0.1 < min_sharpe 0.5",
        "max_drawdown 0.35 > max_drawdown 0.2",
    )


def test_a_missing_metric_is_a_rejection() -> None:
    metrics = {k: v for k, v in GOOD_BACKTEST.items() if k != "total_trades"}
    verdict = assess(metrics, THRESHOLDS)
    assert not verdict.accepted
    assert verdict.reasons == ("total_trades is missing from the backtest's metrics",)
