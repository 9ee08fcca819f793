"""Incremental indicators match their batch definitions and carry over a checkpoint exactly."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from ktrdr.workers.backtesting.indicators import Ema, Rsi, Sma
from ktrdr.workers.bars import synthetic_bars
from ktrdr.workers.features import rolling_mean

CLOSES = synthetic_bars(300, seed=3).close.tolist()


def walk(indicator: Any, values: list[float]) -> tuple[Any, list[float | None]]:
    seen: list[float | None] = []
    for value in values:
        indicator = indicator.update(value)
        seen.append(indicator.value if indicator.ready else None)
    return indicator, seen


def reference_ema(values: list[float], period: int, alpha: float) -> list[float | None]:
    out: list[float | None] = [None] * (period - 1)
    level = sum(values[:period]) / period
    out.append(level)
    for value in values[period:]:
        level += alpha * (value - level)
        out.append(level)
    return out


def test_sma_is_the_rolling_mean() -> None:
    _, seen = walk(Sma(20), CLOSES)
    expected = rolling_mean(np.asarray(CLOSES), 20)
    assert seen[:19] == [None] * 19
    np.testing.assert_allclose(np.asarray(seen[19:], dtype=float), expected[19:], rtol=1e-12)


@pytest.mark.parametrize("period", [5, 12])
def test_ema_is_seeded_with_the_mean_then_smoothed(period: int) -> None:
    _, seen = walk(Ema.standard(period), CLOSES)
    expected = reference_ema(CLOSES, period, 2.0 / (period + 1))
    assert [s is None for s in seen] == [e is None for e in expected]
    np.testing.assert_allclose(
        [s for s in seen if s is not None], [e for e in expected if e is not None], rtol=1e-12
    )


def test_rsi_is_wilders() -> None:
    period = 14
    changes = np.diff(CLOSES)
    gains = reference_ema(np.maximum(changes, 0.0).tolist(), period, 1.0 / period)
    losses = reference_ema(np.maximum(-changes, 0.0).tolist(), period, 1.0 / period)
    expected = [None] + [
        None if gain is None or loss is None else 100.0 - 100.0 / (1.0 + gain / loss)
        for gain, loss in zip(gains, losses, strict=True)
    ]

    _, seen = walk(Rsi.new(period), CLOSES)

    assert [s is None for s in seen] == [e is None for e in expected]
    np.testing.assert_allclose(
        [s for s in seen if s is not None], [e for e in expected if e is not None], rtol=1e-12
    )


def test_rsi_of_a_flat_series_is_neutral_and_of_a_rising_one_is_100() -> None:
    assert walk(Rsi.new(3), [5.0] * 6)[0].value == 50.0
    assert walk(Rsi.new(3), [1.0, 2.0, 3.0, 4.0, 5.0])[0].value == 100.0


@pytest.mark.parametrize(
    "fresh", [Sma(20), Ema.standard(20), Ema.wilder(14), Rsi.new(14)], ids=repr
)
def test_state_through_json_continues_exactly(fresh: Any) -> None:
    halfway, _ = walk(fresh, CLOSES[:150])
    state = json.loads(json.dumps(halfway.state()))

    _, continued = walk(halfway, CLOSES[150:])
    _, restored = walk(fresh.restored(state), CLOSES[150:])

    assert restored == continued


@pytest.mark.parametrize("fresh", [Ema.standard(20), Rsi.new(14)], ids=repr)
def test_rewarming_on_recent_bars_is_not_exact(fresh: Any) -> None:
    """Why the running values are checkpointed: these averages remember every bar."""
    _, continued = walk(walk(fresh, CLOSES[:150])[0], CLOSES[150:])
    _, rewarmed = walk(walk(fresh, CLOSES[100:150])[0], CLOSES[150:])
    assert rewarmed != continued


def test_restoring_a_window_longer_than_the_period_fails() -> None:
    with pytest.raises(ValueError, match="period is 2"):
        Sma(2).restored({"window": [1.0, 2.0, 3.0], "total": 6.0})
