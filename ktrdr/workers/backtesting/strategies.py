"""Rule-based strategies: immutable values that turn one close into a target side.

``advance`` returns the next strategy and the side to hold after this bar; the
engine commits the new strategy only once the whole bar went through, so a
failure mid-bar leaves the last consistent state to checkpoint.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ktrdr.domain.params.backtesting import MovingAverageCrossParams, RsiParams
from ktrdr.workers.backtesting.indicators import Ema, Rsi, Sma

__all__ = [
    "MovingAverageCross",
    "RsiStrategy",
    "Side",
    "Strategy",
    "moving_average_cross",
    "rsi_strategy",
]


class Side(enum.IntEnum):
    SHORT = -1
    FLAT = 0
    LONG = 1


class Strategy(Protocol):
    @property
    def name(self) -> str: ...

    def advance(self, index: int, close: float) -> tuple[Strategy, Side]:
        """Take bar ``index`` (its close) and return the next strategy and the side to hold."""

    def state(self) -> dict[str, Any]:
        """The running indicator values, JSON-ready."""

    def restored(self, state: Mapping[str, Any]) -> Strategy:
        """This strategy (configured from params) with the running values of ``state``."""


def _bearish(allow_short: bool) -> Side:
    return Side.SHORT if allow_short else Side.FLAT


@dataclass(frozen=True, slots=True)
class RsiStrategy:
    params: RsiParams
    rsi: Rsi
    target: Side = Side.FLAT

    @property
    def name(self) -> str:
        return self.params.name

    def advance(self, index: int, close: float) -> tuple[Strategy, Side]:
        rsi = self.rsi.update(close)
        target = self._target(rsi)
        return RsiStrategy(self.params, rsi, target), target

    def _target(self, rsi: Rsi) -> Side:
        if not rsi.ready:
            return Side.FLAT
        if rsi.value < self.params.oversold:
            return Side.LONG
        if rsi.value > self.params.overbought:
            return _bearish(self.params.allow_short)
        return self.target

    def state(self) -> dict[str, Any]:
        return {"rsi": self.rsi.state(), "target": int(self.target)}

    def restored(self, state: Mapping[str, Any]) -> Strategy:
        return RsiStrategy(self.params, self.rsi.restored(state["rsi"]), Side(state["target"]))


def rsi_strategy(params: RsiParams) -> RsiStrategy:
    return RsiStrategy(params, Rsi.new(params.period))


class _Average(Protocol):
    @property
    def ready(self) -> bool: ...

    @property
    def value(self) -> float: ...

    def update(self, x: float) -> _Average: ...

    def state(self) -> dict[str, Any]: ...

    def restored(self, data: Mapping[str, Any]) -> _Average: ...


@dataclass(frozen=True, slots=True)
class MovingAverageCross:
    params: MovingAverageCrossParams
    fast: _Average
    slow: _Average

    @property
    def name(self) -> str:
        return self.params.name

    def advance(self, index: int, close: float) -> tuple[Strategy, Side]:
        nxt = MovingAverageCross(self.params, self.fast.update(close), self.slow.update(close))
        return nxt, nxt._target()

    def _target(self) -> Side:
        if not self.slow.ready or self.fast.value == self.slow.value:
            return Side.FLAT
        if self.fast.value > self.slow.value:
            return Side.LONG
        return _bearish(self.params.allow_short)

    def state(self) -> dict[str, Any]:
        return {"fast": self.fast.state(), "slow": self.slow.state()}

    def restored(self, state: Mapping[str, Any]) -> Strategy:
        fast, slow = self.fast.restored(state["fast"]), self.slow.restored(state["slow"])
        return MovingAverageCross(self.params, fast, slow)


def moving_average_cross(params: MovingAverageCrossParams) -> MovingAverageCross:
    average = Sma if params.average == "sma" else Ema.standard
    return MovingAverageCross(params, average(params.fast), average(params.slow))
