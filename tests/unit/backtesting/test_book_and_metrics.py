"""Fills with fees and slippage, and the performance metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ktrdr.workers.backtesting.book import Book, Costs, Fill, Trade
from ktrdr.workers.backtesting.metrics import performance
from ktrdr.workers.backtesting.strategies import Side

COSTS = Costs.from_bps(fee_bps=10.0, slippage_bps=5.0)


def test_long_round_trip_pays_slippage_and_fees_both_ways() -> None:
    book, none = Book(10_000.0).rebalance(Side.LONG, Fill(3, 300, 100.0), COSTS)
    flat, trade = book.rebalance(Side.FLAT, Fill(9, 900, 110.0), COSTS)

    units = 10_000.0 / (100.05 * 1.001)
    assert none is None and book.position is not None
    assert book.position.units == pytest.approx(units, rel=1e-12)
    assert book.cash == pytest.approx(0.0, abs=1e-9)
    assert book.value(110.0) == pytest.approx(units * 110.0, rel=1e-12)
    assert trade is not None and flat.position is None
    assert (trade.entry_bar, trade.exit_bar, trade.entry_time, trade.exit_time) == (3, 9, 300, 900)
    assert (trade.entry_price, trade.exit_price) == pytest.approx((100.05, 109.945), rel=1e-12)
    fees = units * (100.05 + 109.945) * 0.001
    assert trade.fees == pytest.approx(fees, rel=1e-12)
    assert trade.pnl == pytest.approx(units * (109.945 - 100.05) - fees, rel=1e-12)
    assert flat.cash == pytest.approx(10_000.0 + trade.pnl, rel=1e-12)


def test_short_profits_when_the_price_falls() -> None:
    book, _ = Book(10_000.0).rebalance(Side.SHORT, Fill(0, 0, 100.0), COSTS)
    flat, trade = book.rebalance(Side.FLAT, Fill(1, 60, 90.0), COSTS)

    assert book.position is not None and book.position.side == -1
    assert book.position.entry_price == pytest.approx(99.95)
    assert trade is not None and trade.exit_price == pytest.approx(90.045)
    assert trade.pnl > 0
    assert flat.cash == pytest.approx(10_000.0 + trade.pnl, rel=1e-12)


def test_flipping_closes_then_opens_on_the_same_bar() -> None:
    long, _ = Book(10_000.0).rebalance(Side.LONG, Fill(0, 0, 100.0), COSTS)
    short, trade = long.rebalance(Side.SHORT, Fill(1, 60, 101.0), COSTS)

    assert trade is not None and trade.side == 1
    assert short.position is not None and short.position.side == -1
    assert short.position.entry_bar == 1


def test_holding_the_same_side_trades_nothing() -> None:
    long, _ = Book(10_000.0).rebalance(Side.LONG, Fill(0, 0, 100.0), COSTS)
    assert long.rebalance(Side.LONG, Fill(1, 60, 120.0), COSTS) == (long, None)


def trade(pnl: float) -> Trade:
    return Trade(1, 1.0, 0, 1, 0, 60, 1.0, 1.0, 0.0, pnl)


def test_metrics_of_a_known_curve() -> None:
    equity = np.array([110.0, 99.0, 120.0])
    hourly = np.array([0, 3600, 7200])

    metrics = performance(equity, 100.0, [trade(5.0), trade(-1.0), trade(0.0)], hourly)

    returns = np.array([0.1, 99.0 / 110.0 - 1.0, 120.0 / 99.0 - 1.0])
    sharpe = returns.mean() / returns.std() * math.sqrt(365.25 * 24)
    assert metrics == {
        "total_return": pytest.approx(0.2),
        "sharpe_ratio": pytest.approx(sharpe),
        "max_drawdown": pytest.approx(0.1),
        "win_rate": pytest.approx(1 / 3),
        "total_trades": 3,
    }


def test_metrics_of_a_flat_curve_without_trades() -> None:
    metrics = performance(np.full(5, 100.0), 100.0, [], np.arange(5))
    assert metrics == {
        "total_return": 0.0,
        "sharpe_ratio": 0.0,
        "max_drawdown": 0.0,
        "win_rate": 0.0,
        "total_trades": 0,
    }
