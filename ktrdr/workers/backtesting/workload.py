"""The backtesting workload: walk the bars, checkpoint as it goes, resume exactly."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ktrdr.config import Settings
from ktrdr.domain import CheckpointPolicy
from ktrdr.domain.params.backtesting import (
    BacktestParams,
    MovingAverageCrossParams,
    RsiParams,
    parse_params,
)
from ktrdr.workers.backtesting.book import Costs
from ktrdr.workers.backtesting.digests import bars_sha256, equity_sha256, trades_sha256
from ktrdr.workers.backtesting.engine import Backtest
from ktrdr.workers.backtesting.loop import drive
from ktrdr.workers.backtesting.metrics import performance
from ktrdr.workers.backtesting.snapshot import Origin, restore
from ktrdr.workers.backtesting.strategies import Strategy, moving_average_cross, rsi_strategy
from ktrdr.workers.bars import Bars, bars_from_params
from ktrdr.workers.json_floats import json_safe_object
from ktrdr.workers.workload import ResumePoint, WorkloadContext

__all__ = ["BacktestingWorkload", "ModelLoader"]

ModelLoader = Callable[[str], Mapping[str, Path]]
"""Resolves a training operation id to its final model files (name -> verified path)."""


class BacktestingWorkload:
    """Runs ``backtesting`` operations (params: ``BacktestParams``).

    ``model_loader`` serves the ``model_signal`` strategy; ``checkpoint_interval_seconds``
    is the default for params that name none (KTRDR_CHECKPOINT_TIME_INTERVAL_SECONDS).
    """

    operation_type = "backtesting"

    def __init__(
        self,
        *,
        model_loader: ModelLoader | None = None,
        checkpoint_interval_seconds: float = 300.0,
        fail_at_bar: int | None = None,
    ) -> None:
        """``fail_at_bar``: a test hook (``ktrdr.workers.test_hooks``)."""
        self._model_loader = model_loader
        self._checkpoint_interval_seconds = checkpoint_interval_seconds
        self._fail_at_bar = fail_at_bar

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        model_loader: ModelLoader | None = None,
        fail_at_bar: int | None = None,
    ) -> BacktestingWorkload:
        return cls(
            model_loader=model_loader,
            checkpoint_interval_seconds=settings.checkpoint_time_interval_seconds,
            fail_at_bar=fail_at_bar,
        )

    def run(
        self, params: Mapping[str, Any], resume: ResumePoint | None, ctx: WorkloadContext
    ) -> dict[str, Any]:
        parsed = parse_params(params)
        bars = bars_from_params(parsed.bar_source())
        origin = Origin(parsed.trajectory(), bars_sha256(bars))
        backtest = self._start(parsed, bars)
        if resume is not None:
            backtest = restore(backtest, resume, origin)
        drive(backtest, ctx, self._policy(parsed), origin)
        return _result(backtest, parsed.initial_cash)

    def _start(self, params: BacktestParams, bars: Bars) -> Backtest:
        costs = Costs.from_bps(params.fee_bps, params.slippage_bps)
        strategy = self._strategy(params, bars)
        return Backtest.start(bars, costs, strategy, params.initial_cash, self._fail_at_bar)

    def _strategy(self, params: BacktestParams, bars: Bars) -> Strategy:
        spec = params.strategy
        if isinstance(spec, RsiParams):
            return rsi_strategy(spec)
        if isinstance(spec, MovingAverageCrossParams):
            return moving_average_cross(spec)
        if self._model_loader is None:
            raise RuntimeError("this worker cannot load models: it has no model_loader")
        assert params.model_operation_id is not None  # checked by the params
        # Imported here: it pulls in torch, which rule-based backtests do without.
        from ktrdr.workers.backtesting.model_signal import model_signal

        return model_signal(spec, bars, self._model_loader(params.model_operation_id))

    def _policy(self, params: BacktestParams) -> CheckpointPolicy:
        interval = params.checkpoint_interval_seconds or self._checkpoint_interval_seconds
        return CheckpointPolicy(every_units=params.checkpoint_every_bars, interval_seconds=interval)


def _result(backtest: Backtest, initial_cash: float) -> dict[str, Any]:
    metrics = performance(backtest.equity, initial_cash, backtest.trades, backtest.bars.timestamp)
    return json_safe_object(
        {
            **metrics,
            "final_portfolio_value": backtest.portfolio_value,
            "total_bars": backtest.total_bars,
            "trades_sha256": trades_sha256(backtest.trades),
            "equity_sha256": equity_sha256(backtest.equity),
        }
    )
