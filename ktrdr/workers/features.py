"""Pure-numpy indicators on bars, and the labelled feature matrix the training workload learns.

Every function is deterministic and causal: row ``t`` uses bars ``0..t`` only, so a
backtest can compute the same features bar by bar. Warm-up rows are NaN.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from ktrdr.workers.bars import Bars

__all__ = [
    "FEATURE_NAMES",
    "compute_features",
    "feature_matrix",
    "log_returns",
    "moving_average_ratio",
    "rolling_mean",
    "rolling_volatility",
    "rsi",
]

Array = NDArray[np.float64]

FEATURE_NAMES = (
    "return_1",
    "return_1_lag_1",
    "return_1_lag_2",
    "return_5",
    "return_20",
    "ma_ratio_5",
    "ma_ratio_10",
    "ma_ratio_20",
    "ma_ratio_50",
    "rsi_14",
    "volatility_10",
    "volatility_20",
    "bar_range",
    "volume_ratio_20",
)


def log_returns(close: Array, periods: int = 1) -> Array:
    """``log(close[t] / close[t - periods])``; NaN for the first ``periods`` rows."""
    return _shift(np.log(close), 0) - _shift(np.log(close), periods)


def rolling_mean(values: Array, window: int) -> Array:
    """Mean of the last ``window`` values (NaN until ``window`` values exist)."""
    out = np.full(len(values), np.nan)
    if len(values) >= window:
        out[window - 1 :] = sliding_window_view(values, window).mean(axis=1)
    return out


def moving_average_ratio(close: Array, window: int) -> Array:
    """How far the close is above its ``window``-bar simple moving average (0 = on it)."""
    return close / rolling_mean(close, window) - 1.0


def rsi(close: Array, window: int = 14) -> Array:
    """Relative strength index (0–100) with simple averages of gains and losses (Cutler's RSI)."""
    delta = np.diff(close, prepend=np.nan)
    gains = rolling_mean(np.where(delta > 0, delta, 0.0), window)
    losses = rolling_mean(np.where(delta < 0, -delta, 0.0), window)
    total = gains + losses
    out = np.full(len(close), 50.0)
    np.divide(100.0 * gains, total, out=out, where=total > 0)
    out[: min(window, len(close))] = np.nan  # the first delta has no previous close
    return out


def rolling_volatility(close: Array, window: int) -> Array:
    """Standard deviation of the last ``window`` one-bar log returns."""
    returns = log_returns(close)
    out = np.full(len(close), np.nan)
    if len(close) >= window:
        out[window - 1 :] = sliding_window_view(returns, window).std(axis=1)
    return out


def compute_features(bars: Bars) -> Array:
    """One row per bar, one column per FEATURE_NAMES entry; NaN during warm-up."""
    close = bars.close
    one_bar = log_returns(close)
    columns = [
        one_bar,
        _shift(one_bar, 1),
        _shift(one_bar, 2),
        log_returns(close, 5),
        log_returns(close, 20),
        *(moving_average_ratio(close, window) for window in (5, 10, 20, 50)),
        (rsi(close, 14) - 50.0) / 50.0,
        rolling_volatility(close, 10),
        rolling_volatility(close, 20),
        (bars.high - bars.low) / close,
        np.log(np.maximum(bars.volume, 1e-12) / np.maximum(rolling_mean(bars.volume, 20), 1e-12)),
    ]
    matrix: Array = np.column_stack(columns)
    return matrix


def feature_matrix(bars: Bars) -> tuple[Array, NDArray[np.int64], NDArray[np.int64]]:
    """``(X, y, valid_index)``: complete feature rows, y = 1 if the next bar closes higher."""
    features = compute_features(bars)
    labels = np.zeros(len(bars), dtype=np.int64)
    labels[:-1] = bars.close[1:] > bars.close[:-1]
    has_next = np.arange(len(bars)) < len(bars) - 1
    valid_index = np.flatnonzero(np.isfinite(features).all(axis=1) & has_next).astype(np.int64)
    return features[valid_index], labels[valid_index], valid_index


def _shift(values: Array, periods: int) -> Array:
    out = np.full(len(values), np.nan)
    if periods < len(values):
        out[periods:] = values[: len(values) - periods]
    return out
