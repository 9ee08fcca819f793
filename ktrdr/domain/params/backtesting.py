"""Backtest params: validated once, with errors that name the field and the fix."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, Field, field_validator, model_validator

from ktrdr.domain.errors import ValidationError
from ktrdr.domain.params.parsing import PARAMS_CONFIG, parsed

__all__ = [
    "BacktestParams",
    "DataParams",
    "InvalidBacktestParams",
    "ModelSignalParams",
    "MovingAverageCrossParams",
    "STRATEGY_NAMES",
    "RsiParams",
    "StrategyParams",
    "parse_params",
]


class InvalidBacktestParams(ValidationError):
    """The params of a backtesting operation are invalid; the message lists every problem."""


class _Frozen(BaseModel):
    model_config = PARAMS_CONFIG


class RsiParams(_Frozen):
    """Long below ``oversold``, short (or flat) above ``overbought``, else hold."""

    name: Literal["rsi"] = "rsi"
    period: int = Field(14, ge=2, le=10_000)
    oversold: float = Field(30.0, gt=0, lt=100)
    overbought: float = Field(70.0, gt=0, lt=100)
    allow_short: bool = True

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.oversold >= self.overbought:
            raise ValueError(
                f"oversold ({self.oversold}) must be below overbought ({self.overbought})"
            )
        return self


class MovingAverageCrossParams(_Frozen):
    """Long while the fast average is above the slow one, short (or flat) while below."""

    name: Literal["ma_crossover"] = "ma_crossover"
    fast: int = Field(10, ge=1, le=10_000)
    slow: int = Field(30, ge=2, le=10_000)
    average: Literal["sma", "ema"] = "sma"
    allow_short: bool = True

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be shorter than slow ({self.slow})")
        return self


class ModelSignalParams(_Frozen):
    """Long when the model's P(up) is at least ``long_threshold``, short at most
    ``short_threshold``, flat in between (and while the features warm up)."""

    name: Literal["model_signal"] = "model_signal"
    long_threshold: float = Field(0.55, ge=0, le=1)
    short_threshold: float = Field(0.45, ge=0, le=1)
    allow_short: bool = True

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.short_threshold >= self.long_threshold:
            raise ValueError(
                f"short_threshold ({self.short_threshold}) must be below "
                f"long_threshold ({self.long_threshold})"
            )
        return self


StrategyParams = Annotated[
    RsiParams | MovingAverageCrossParams | ModelSignalParams, Field(discriminator="name")
]


# Only say when to checkpoint: a resume may change them.
_CADENCE_FIELDS = ("checkpoint_every_bars", "checkpoint_interval_seconds")

STRATEGY_NAMES = ("rsi", "ma_crossover", "model_signal")


class DataParams(_Frozen):
    csv_path: str = Field(min_length=1)
    """A CSV with timestamp, open, high, low, close, volume columns."""


class BacktestParams(_Frozen):
    bars: int | None = Field(None, ge=1)
    """Bar count (synthetic: 2000 when unset; CSV: the first rows only)."""
    seed: int = 42
    """Seeds the synthetic bars."""
    data: DataParams | None = None
    """Bars from a CSV (``{"csv_path": ...}``) instead of synthetic ones."""
    strategy: StrategyParams = Field(default_factory=RsiParams)
    """``rsi``, ``ma_crossover`` or ``model_signal``: a name, or an object with its settings."""
    initial_cash: float = Field(100_000.0, gt=0)
    fee_bps: float = Field(1.0, ge=0, le=1_000)
    """Fee per trade, in basis points of its value."""
    slippage_bps: float = Field(1.0, ge=0, le=1_000)
    checkpoint_every_bars: int = Field(10_000, ge=1)
    checkpoint_interval_seconds: float | None = Field(None, gt=0)
    """… or every T seconds, whichever first (default: KTRDR_CHECKPOINT_TIME_INTERVAL_SECONDS)."""
    model_operation_id: str | None = Field(None, min_length=1)
    """A completed training operation whose model the ``model_signal`` strategy trades."""

    @field_validator("strategy", mode="before")
    @classmethod
    def _strategy_by_name(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value}
        if isinstance(value, Mapping) and "name" not in value:
            raise ValueError(f"a strategy needs a name, one of {', '.join(STRATEGY_NAMES)}")
        return value

    @model_validator(mode="after")
    def _model_given(self) -> Self:
        needs_model = isinstance(self.strategy, ModelSignalParams)
        if needs_model and self.model_operation_id is None:
            raise ValueError(
                "strategy model_signal needs model_operation_id (a training operation)"
            )
        return self

    def bar_source(self) -> dict[str, Any]:
        """The params ``ktrdr.workers.bars.bars_from_params`` reads."""
        return self.model_dump(include={"bars", "seed", "data"})

    def trajectory(self) -> dict[str, Any]:
        """The params that decide the trades; a resume must run with the same ones."""
        return self.model_dump(mode="json", exclude=set(_CADENCE_FIELDS))


def parse_params(params: Mapping[str, Any]) -> BacktestParams:
    """Validate raw operation params; the refusal lists every problem with its field."""
    return parsed(BacktestParams, "backtesting", params, InvalidBacktestParams)
