"""Performance metrics of a finished backtest, from its equity curve and trades."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ktrdr.workers.backtesting.book import Trade

__all__ = ["performance"]

_SECONDS_PER_YEAR = 365.25 * 24 * 3600


def performance(
    equity: NDArray[np.float64],
    initial_cash: float,
    trades: Sequence[Trade],
    timestamps: NDArray[np.int64],
) -> dict[str, Any]:
    """Total return, annualised Sharpe ratio (bar returns, no risk-free rate), maximum
    drawdown (a fraction of the peak), win rate (share of trades with pnl > 0) and the
    number of trades."""
    values = np.concatenate(([initial_cash], equity))
    return {
        "total_return": float(values[-1] / initial_cash - 1.0),
        "sharpe_ratio": _sharpe(values, timestamps),
        "max_drawdown": _max_drawdown(values),
        "win_rate": sum(trade.pnl > 0 for trade in trades) / len(trades) if trades else 0.0,
        "total_trades": len(trades),
    }


def _sharpe(values: NDArray[np.float64], timestamps: NDArray[np.int64]) -> float:
    previous = values[:-1]
    if len(previous) < 2 or (previous <= 0).any():
        return 0.0
    returns = values[1:] / previous - 1.0
    deviation = float(returns.std())
    if deviation == 0.0:
        return 0.0
    return float(returns.mean()) / deviation * math.sqrt(_bars_per_year(timestamps))


def _bars_per_year(timestamps: NDArray[np.int64]) -> float:
    spacing = float(np.median(np.diff(timestamps)))
    return _SECONDS_PER_YEAR / spacing if spacing > 0 else 1.0


def _max_drawdown(values: NDArray[np.float64]) -> float:
    peaks = np.maximum.accumulate(values)
    if (peaks <= 0).any():
        return 1.0
    return float(np.max(1.0 - values / peaks))
