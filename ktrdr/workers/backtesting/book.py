"""Cash, the open position and the fills that change them, with fees and slippage.

A position is long or short ``units`` of the instrument, sized to the whole
portfolio value when it opens. Fills happen at the bar's close, moved against
the trader by the slippage; fees are charged on each fill's notional.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ktrdr.workers.backtesting.strategies import Side
from ktrdr.workers.json_floats import decode_float

__all__ = ["Book", "Costs", "Fill", "OpenPosition", "Trade"]


@dataclass(frozen=True, slots=True)
class Costs:
    fee_rate: float
    slippage_rate: float

    @classmethod
    def from_bps(cls, fee_bps: float, slippage_bps: float) -> Costs:
        return cls(fee_bps / 10_000.0, slippage_bps / 10_000.0)

    def fill_price(self, price: float, buying: bool) -> float:
        return price * (1.0 + self.slippage_rate if buying else 1.0 - self.slippage_rate)


@dataclass(frozen=True, slots=True)
class Fill:
    """Where the bar being filled is: its index, time and close."""

    index: int
    timestamp: int
    price: float


@dataclass(frozen=True, slots=True)
class OpenPosition:
    side: int
    units: float
    entry_bar: int
    entry_time: int
    entry_price: float
    entry_fee: float

    def to_json(self) -> dict[str, Any]:
        return _fields_json(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OpenPosition:
        return cls(
            side=int(data["side"]),
            units=decode_float(data["units"]),
            entry_bar=int(data["entry_bar"]),
            entry_time=int(data["entry_time"]),
            entry_price=decode_float(data["entry_price"]),
            entry_fee=decode_float(data["entry_fee"]),
        )


@dataclass(frozen=True, slots=True)
class Trade:
    """A closed round trip; ``pnl`` is net of both fills' fees."""

    side: int
    units: float
    entry_bar: int
    exit_bar: int
    entry_time: int
    exit_time: int
    entry_price: float
    exit_price: float
    fees: float
    pnl: float

    def to_json(self) -> dict[str, Any]:
        return _fields_json(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Trade:
        return cls(
            side=int(data["side"]),
            units=decode_float(data["units"]),
            entry_bar=int(data["entry_bar"]),
            exit_bar=int(data["exit_bar"]),
            entry_time=int(data["entry_time"]),
            exit_time=int(data["exit_time"]),
            entry_price=decode_float(data["entry_price"]),
            exit_price=decode_float(data["exit_price"]),
            fees=decode_float(data["fees"]),
            pnl=decode_float(data["pnl"]),
        )


def _fields_json(value: OpenPosition | Trade) -> dict[str, Any]:
    # Not asdict: it deep-copies every field, several times the cost of this for the
    # tens of thousands of trades a long backtest serialises at each checkpoint.
    return {field.name: getattr(value, field.name) for field in fields(value)}


@dataclass(frozen=True, slots=True)
class Book:
    cash: float
    position: OpenPosition | None = None

    def value(self, price: float) -> float:
        if self.position is None:
            return self.cash
        return self.cash + self.position.side * self.position.units * price

    def rebalance(self, target: Side, fill: Fill, costs: Costs) -> tuple[Book, Trade | None]:
        """Close a position on the wrong side, then open one on ``target``'s side."""
        book, trade = self, None
        if book.position is not None and book.position.side != target:
            book, trade = book._close(fill, costs)
        if book.position is None and target != Side.FLAT:
            book = book._open(target, fill, costs)
        return book, trade

    def _open(self, side: Side, fill: Fill, costs: Costs) -> Book:
        if self.cash <= 0.0:
            return self
        price = costs.fill_price(fill.price, buying=side == Side.LONG)
        units = self.cash / (price * (1.0 + costs.fee_rate))
        fee = units * price * costs.fee_rate
        position = OpenPosition(int(side), units, fill.index, fill.timestamp, price, fee)
        return Book(self.cash - side * units * price - fee, position)

    def _close(self, fill: Fill, costs: Costs) -> tuple[Book, Trade]:
        position = self.position
        assert position is not None
        price = costs.fill_price(fill.price, buying=position.side == Side.SHORT)
        fee = position.units * price * costs.fee_rate
        gross = position.side * position.units * (price - position.entry_price)
        trade = Trade(
            side=position.side,
            units=position.units,
            entry_bar=position.entry_bar,
            exit_bar=fill.index,
            entry_time=position.entry_time,
            exit_time=fill.timestamp,
            entry_price=position.entry_price,
            exit_price=price,
            fees=position.entry_fee + fee,
            pnl=gross - position.entry_fee - fee,
        )
        return Book(self.cash + position.side * position.units * price - fee), trade
