"""The bar-by-bar engine: one step per bar, committed only when the whole bar went through."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ktrdr.workers.backtesting.book import Book, Costs, Fill, Trade
from ktrdr.workers.backtesting.strategies import Side, Strategy
from ktrdr.workers.bars import Bars

__all__ = ["Backtest", "InjectedFailure"]


class InjectedFailure(RuntimeError):
    """Raised at ``fail_at_bar`` (a test hook) in the middle of a bar."""


@dataclass
class Backtest:
    """The state at a bar boundary: ``bar_index`` is the next bar to process (absolute).

    ``equity[i]`` is the portfolio value after bar ``i``; only ``equity[:bar_index]``
    is meaningful. The last bar closes any open position, so the final value is cash.
    """

    bars: Bars
    costs: Costs
    strategy: Strategy
    book: Book
    trades: list[Trade]
    equity: NDArray[np.float64]
    bar_index: int = 0
    fail_at_bar: int | None = None

    @classmethod
    def start(
        cls,
        bars: Bars,
        costs: Costs,
        strategy: Strategy,
        initial_cash: float,
        fail_at_bar: int | None = None,
    ) -> Backtest:
        equity = np.zeros(len(bars))
        return cls(bars, costs, strategy, Book(initial_cash), [], equity, 0, fail_at_bar)

    @property
    def total_bars(self) -> int:
        return len(self.bars)

    @property
    def finished(self) -> bool:
        return self.bar_index >= self.total_bars

    @property
    def portfolio_value(self) -> float:
        if self.bar_index == 0:
            return self.book.cash
        return float(self.equity[self.bar_index - 1])

    def step(self) -> None:
        """Process bar ``bar_index``; on an exception nothing has changed."""
        index = self.bar_index
        close = float(self.bars.close[index])  # a Python float: exact, and fast
        strategy, target = self.strategy.advance(index, close)
        if index == self.total_bars - 1:
            target = Side.FLAT
        if index == self.fail_at_bar:
            raise InjectedFailure(f"injected failure at bar {index}")
        fill = Fill(index, int(self.bars.timestamp[index]), close)
        book, trade = self.book.rebalance(target, fill, self.costs)
        value = book.value(close)
        self.strategy, self.book = strategy, book
        if trade is not None:
            self.trades.append(trade)
        self.equity[index] = value
        self.bar_index = index + 1
