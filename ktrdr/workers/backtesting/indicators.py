"""Incremental indicators: immutable values that take one close at a time.

Each ``update`` returns a new indicator, so a strategy can compute a bar's
decision without touching the state it will be checkpointed from. ``state()``
and ``restored()`` carry the running values exactly through a checkpoint; the
configuration (periods) always comes from the params, never from the state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ktrdr.workers.json_floats import decode_float

__all__ = ["Ema", "Rsi", "Sma"]


@dataclass(frozen=True, slots=True)
class Ema:
    """Exponential moving average seeded with the simple mean of its first ``period`` values."""

    period: int
    alpha: float
    count: int = 0
    value: float = 0.0

    @classmethod
    def standard(cls, period: int) -> Ema:
        return cls(period, 2.0 / (period + 1))

    @classmethod
    def wilder(cls, period: int) -> Ema:
        return cls(period, 1.0 / period)

    @property
    def ready(self) -> bool:
        return self.count >= self.period

    def update(self, x: float) -> Ema:
        count = self.count + 1
        weight = 1.0 / count if count <= self.period else self.alpha
        return Ema(self.period, self.alpha, count, self.value + weight * (x - self.value))

    def state(self) -> dict[str, Any]:
        return {"count": self.count, "value": self.value}

    def restored(self, data: Mapping[str, Any]) -> Ema:
        return Ema(self.period, self.alpha, int(data["count"]), decode_float(data["value"]))


@dataclass(frozen=True, slots=True)
class Sma:
    """Simple moving average over a window of the last ``period`` values and their running sum."""

    period: int
    window: tuple[float, ...] = ()
    total: float = 0.0

    @property
    def ready(self) -> bool:
        return len(self.window) == self.period

    @property
    def value(self) -> float:
        return self.total / self.period

    def update(self, x: float) -> Sma:
        if self.ready:
            return Sma(self.period, (*self.window[1:], x), self.total - self.window[0] + x)
        return Sma(self.period, (*self.window, x), self.total + x)

    def state(self) -> dict[str, Any]:
        return {"window": list(self.window), "total": self.total}

    def restored(self, data: Mapping[str, Any]) -> Sma:
        window = tuple(decode_float(x) for x in data["window"])
        if len(window) > self.period:
            raise ValueError(f"SMA window holds {len(window)} values, period is {self.period}")
        return Sma(self.period, window, decode_float(data["total"]))


@dataclass(frozen=True, slots=True)
class Rsi:
    """Wilder's relative strength index (0–100) of a close series."""

    gains: Ema
    losses: Ema
    previous: float | None = None

    @classmethod
    def new(cls, period: int) -> Rsi:
        return cls(Ema.wilder(period), Ema.wilder(period))

    @property
    def ready(self) -> bool:
        return self.gains.ready

    @property
    def value(self) -> float:
        gain, loss = self.gains.value, self.losses.value
        if loss == 0.0:
            return 50.0 if gain == 0.0 else 100.0
        return 100.0 - 100.0 / (1.0 + gain / loss)

    def update(self, close: float) -> Rsi:
        if self.previous is None:
            return Rsi(self.gains, self.losses, close)
        change = close - self.previous
        return Rsi(
            self.gains.update(max(change, 0.0)), self.losses.update(max(-change, 0.0)), close
        )

    def state(self) -> dict[str, Any]:
        return {
            "gains": self.gains.state(),
            "losses": self.losses.state(),
            "previous": self.previous,
        }

    def restored(self, data: Mapping[str, Any]) -> Rsi:
        previous = data["previous"]
        return Rsi(
            self.gains.restored(data["gains"]),
            self.losses.restored(data["losses"]),
            None if previous is None else decode_float(previous),
        )
