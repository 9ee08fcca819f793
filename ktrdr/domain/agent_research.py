"""Agent research, the pure part: its params, phases, design, checkpoint state and verdict.

A research run goes designing → training → backtesting → assessing → completed.
Designing is a seeded choice among a small grid of strategy configurations and
training hyper-parameters, so the same params always design the same study.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ktrdr.domain.errors import ValidationError
from ktrdr.domain.params.backtesting import parse_params as parse_backtest_params
from ktrdr.domain.params.parsing import PARAMS_CONFIG, parsed
from ktrdr.domain.params.training import parse_params as parse_training_params

StrategyFamily = Literal["rsi", "ma_crossover", "model_signal"]

# The backtest params the design decides; overrides may not replace them.
_DESIGNED_BACKTEST_KEYS = frozenset({"strategy", "model_operation_id"})


class ResearchPhase(enum.StrEnum):
    DESIGNING = "designing"
    TRAINING = "training"
    BACKTESTING = "backtesting"
    ASSESSING = "assessing"
    COMPLETED = "completed"


class ResearchParams(BaseModel):
    """``{"seed": n}`` alone designs, trains and backtests a small study in seconds."""

    model_config = PARAMS_CONFIG

    seed: int = Field(42, ge=0, le=2**63 - 1)
    """Picks the design, and seeds the synthetic market both children trade."""
    bars: int = Field(1500, ge=200, le=10_000_000)
    csv_path: str | None = Field(None, min_length=1)
    """Bars from this CSV instead of the synthetic market (both children read it)."""
    strategies: tuple[StrategyFamily, ...] = Field(
        ("rsi", "ma_crossover", "model_signal"), strict=False
    )
    """The strategy families the design chooses from; model_signal trades the trained model."""
    min_sharpe: float = 0.0
    max_drawdown: float = Field(0.25, gt=0.0, le=1.0)
    min_trades: int = Field(3, ge=0)
    training: dict[str, Any] = Field(default_factory=dict)
    """Training params that override the design's (epochs, bars, test hooks…)."""
    backtesting: dict[str, Any] = Field(default_factory=dict)
    """Backtesting params that override the design's, except the strategy and model."""

    @field_validator("training")
    @classmethod
    def _training_overrides(cls, overrides: dict[str, Any]) -> dict[str, Any]:
        return _checked(parse_training_params, overrides)

    @field_validator("backtesting")
    @classmethod
    def _backtesting_overrides(cls, overrides: dict[str, Any]) -> dict[str, Any]:
        designed = _DESIGNED_BACKTEST_KEYS & set(overrides)
        return overrides if designed else _checked(parse_backtest_params, overrides)

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if not self.strategies:
            raise ValueError("strategies needs at least one of rsi, ma_crossover, model_signal")
        owned = sorted(_DESIGNED_BACKTEST_KEYS & set(self.backtesting))
        if owned:
            raise ValueError(f"backtesting may not override {', '.join(owned)}: the design does")
        return self

    def thresholds(self) -> dict[str, float]:
        return {
            "min_sharpe": self.min_sharpe,
            "max_drawdown": self.max_drawdown,
            "min_trades": self.min_trades,
        }


def _checked(
    parse: Callable[[Mapping[str, Any]], object], overrides: dict[str, Any]
) -> dict[str, Any]:
    """The overrides alone must be valid child params, so a typo is refused at create."""
    try:
        parse(overrides)
    except ValidationError as error:
        raise ValueError(error.detail) from None
    return overrides


def parse_research_params(params: Mapping[str, Any]) -> ResearchParams:
    """Validate raw params; ValidationError names every problem with its field."""
    return parsed(ResearchParams, "agent_research", params)


@dataclass(frozen=True)
class Design:
    strategy: dict[str, Any]
    training: dict[str, Any]
    """The training child's params."""
    backtesting: dict[str, Any]
    """The backtesting child's params, but for ``model_operation_id``."""

    @property
    def strategy_name(self) -> str:
        settings = ", ".join(f"{k}={v}" for k, v in sorted(self.strategy.items()) if k != "name")
        return f"{self.strategy['name']}({settings})"

    @property
    def trades_the_model(self) -> bool:
        return bool(self.strategy["name"] == "model_signal")


def _rsi(rng: random.Random) -> dict[str, Any]:
    oversold = rng.choice((25.0, 30.0, 35.0))
    return {
        "name": "rsi",
        "period": rng.choice((7, 14, 21)),
        "oversold": oversold,
        "overbought": 100.0 - oversold,
        "allow_short": rng.choice((True, False)),
    }


def _ma_crossover(rng: random.Random) -> dict[str, Any]:
    fast, slow = rng.choice(((5, 20), (10, 30), (20, 50)))
    average = rng.choice(("sma", "ema"))
    return {"name": "ma_crossover", "fast": fast, "slow": slow, "average": average}


def _model_signal(rng: random.Random) -> dict[str, Any]:
    edge = rng.choice((0.02, 0.05, 0.1))
    return {"name": "model_signal", "long_threshold": 0.5 + edge, "short_threshold": 0.5 - edge}


_GRIDS: Mapping[str, Callable[[random.Random], dict[str, Any]]] = {
    "rsi": _rsi,
    "ma_crossover": _ma_crossover,
    "model_signal": _model_signal,
}


def design(params: ResearchParams) -> Design:
    """The study these params call for: the same params always give the same design."""
    rng = random.Random(params.seed)
    strategy = _GRIDS[rng.choice(params.strategies)](rng)
    market: dict[str, Any] = {"seed": params.seed, "bars": params.bars}
    if params.csv_path is not None:
        market["data"] = {"csv_path": params.csv_path}
    training = {
        **market,
        "epochs": rng.choice((3, 4, 5)),
        "hidden_size": rng.choice((8, 16, 32)),
        "hidden_layers": 1,
        "learning_rate": rng.choice((1e-3, 3e-3)),
        "checkpoint_every_epochs": 1,
        **params.training,
    }
    backtesting = {**market, "strategy": strategy, **params.backtesting}
    return Design(strategy, training, backtesting)


class ResearchState(BaseModel):
    """What a research checkpoint holds: where to continue from, and its children so far."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    phase: ResearchPhase
    strategy_name: str | None = None
    strategy: dict[str, Any] | None = None
    training_operation_id: str | None = None
    training_checkpoint_epoch: int | None = None
    backtest_operation_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


METRIC_KEYS = (
    "total_return",
    "sharpe_ratio",
    "max_drawdown",
    "win_rate",
    "total_trades",
    "final_portfolio_value",
    "total_bars",
    "trades_sha256",
    "equity_sha256",
)


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reasons: tuple[str, ...]
    """The failed checks when rejected, every check when accepted."""

    @property
    def decision(self) -> Literal["accepted", "rejected"]:
        return "accepted" if self.accepted else "rejected"


@dataclass(frozen=True)
class _Check:
    metric: str
    threshold: str
    at_least: bool

    def judge(self, metrics: Mapping[str, Any], limit: float) -> tuple[bool, str]:
        value = metrics.get(self.metric)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False, f"{self.metric} is missing from the backtest's metrics"
        passed = value >= limit if self.at_least else value <= limit
        relation = (">=" if passed else "<") if self.at_least else ("<=" if passed else ">")
        return passed, f"{self.metric} {value:.4g} {relation} {self.threshold} {limit:g}"


_CHECKS = (
    _Check("sharpe_ratio", "min_sharpe", at_least=True),
    _Check("max_drawdown", "max_drawdown", at_least=False),
    _Check("total_trades", "min_trades", at_least=True),
)


def assess(metrics: Mapping[str, Any], thresholds: Mapping[str, float]) -> Verdict:
    """Accepted when every metric meets its threshold; the reasons say which did not."""
    judged = [check.judge(metrics, thresholds[check.threshold]) for check in _CHECKS]
    failed = tuple(reason for passed, reason in judged if not passed)
    if failed:
        return Verdict(False, failed)
    return Verdict(True, tuple(reason for _, reason in judged))
