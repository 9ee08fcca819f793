"""Canonical sha256 digests: the same bars, trades or equity curve give the same hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from ktrdr.workers.backtesting.book import Trade
from ktrdr.workers.bars import Bars
from ktrdr.workers.json_floats import json_safe_object

__all__ = ["bars_sha256", "equity_sha256", "trades_json", "trades_sha256"]


def bars_sha256(bars: Bars) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(bars.timestamp, dtype="<i8").tobytes())
    for column in (bars.open, bars.high, bars.low, bars.close, bars.volume):
        digest.update(np.ascontiguousarray(column, dtype="<f8").tobytes())
    return digest.hexdigest()


def equity_sha256(curve: NDArray[np.float64]) -> str:
    """Hash of the curve as little-endian float64s, one per processed bar."""
    return hashlib.sha256(np.ascontiguousarray(curve, dtype="<f8").tobytes()).hexdigest()


def trades_json(trades: Sequence[Trade]) -> bytes:
    """The trades as compact JSON with sorted keys (floats in their exact repr)."""
    text = json.dumps(
        [json_safe_object(trade.to_json()) for trade in trades],
        sort_keys=True,
        separators=(",", ":"),
        allow_nan=False,
    )
    return text.encode()


def trades_sha256(trades: Sequence[Trade]) -> str:
    """Hash of ``trades_json(trades)``."""
    return hashlib.sha256(trades_json(trades)).hexdigest()
