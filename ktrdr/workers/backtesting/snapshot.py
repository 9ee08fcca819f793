"""Checkpoint state of a backtest, and the restore that continues it exactly.

The state stays small however long the run: the equity curve and the trades,
which grow with it, travel as artifact files (``equity_curve.npy``,
``trades.json``) named in the state with their length and sha256; the state also
keeps about a hundred sampled points of the curve for people to look at.
``trades.json`` is the canonical JSON that ``trades_sha256`` hashes, so its
sha256 is the trades' ``trades_sha256``. ``bar_index`` is always absolute: the
next bar to process.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from ktrdr.workers.backtesting.book import Book, OpenPosition, Trade
from ktrdr.workers.backtesting.digests import equity_sha256, trades_json
from ktrdr.workers.backtesting.engine import Backtest
from ktrdr.workers.backtesting.errors import CheckpointMismatch
from ktrdr.workers.json_floats import decode_float, json_safe_object
from ktrdr.workers.workload import Capture, ResumePoint, Writer

__all__ = ["EQUITY_FILE", "TRADES_FILE", "CheckpointMismatch", "Origin", "capture", "restore"]

EQUITY_FILE = "equity_curve.npy"
TRADES_FILE = "trades.json"
_SAMPLES = 100


@dataclass(frozen=True)
class Origin:
    """What a backtest runs on: the params that decide its trades, and its bars' sha256."""

    params: dict[str, Any]
    data_sha256: str


def capture(backtest: Backtest, origin: Origin) -> Capture:
    """A consistent copy of ``backtest`` at its bar boundary; nothing in it is shared."""
    curve = backtest.equity[: backtest.bar_index].copy()
    trades = trades_json(backtest.trades)
    position = backtest.book.position
    state = {
        "bar_index": backtest.bar_index,
        "total_bars": backtest.total_bars,
        "current_date": _current_date(backtest),
        "cash": backtest.book.cash,
        "positions": [] if position is None else [position.to_json()],
        "trades": {
            "file": TRADES_FILE,
            "count": len(backtest.trades),
            "sha256": hashlib.sha256(trades).hexdigest(),
        },
        "portfolio_value": backtest.portfolio_value,
        "equity_curve": {
            "file": EQUITY_FILE,
            "length": len(curve),
            "sha256": equity_sha256(curve),
            "samples": _samples(curve),
        },
        "strategy": {"name": backtest.strategy.name, "state": backtest.strategy.state()},
        "params": origin.params,
        "data_sha256": origin.data_sha256,
    }
    files = {EQUITY_FILE: _npy_writer(curve), TRADES_FILE: _bytes_writer(trades)}
    return Capture(state=json_safe_object(state), files=files)


def restore(fresh: Backtest, resume: ResumePoint, origin: Origin) -> Backtest:
    """``fresh`` (a backtest at bar 0, built from the params) moved to the checkpoint."""
    state = resume.state
    _check(state, fresh, origin)
    bar_index = int(state["bar_index"])
    equity = np.zeros(fresh.total_bars)
    equity[:bar_index] = _load_curve(resume.files, state["equity_curve"], bar_index)
    positions = [OpenPosition.from_json(item) for item in state["positions"]]
    return Backtest(
        bars=fresh.bars,
        costs=fresh.costs,
        strategy=fresh.strategy.restored(state["strategy"]["state"]),
        book=Book(decode_float(state["cash"]), positions[0] if positions else None),
        trades=_load_trades(resume.files, state["trades"]),
        equity=equity,
        bar_index=bar_index,
        fail_at_bar=fresh.fail_at_bar,
    )


def _check(state: Mapping[str, Any], fresh: Backtest, origin: Origin) -> None:
    changed = sorted(
        f"{key} {state['params'].get(key)!r} -> {value!r}"
        for key, value in origin.params.items()
        if state["params"].get(key) != value
    )
    if changed:
        raise CheckpointMismatch(f"the checkpoint ran with other params: {'; '.join(changed)}")
    if state["data_sha256"] != origin.data_sha256:
        raise CheckpointMismatch("the checkpoint was taken on other bars than these params give")
    if state["total_bars"] != fresh.total_bars:
        raise CheckpointMismatch(
            f"the checkpoint covers {state['total_bars']} bars, the params give {fresh.total_bars}"
        )
    if not 0 <= state["bar_index"] <= fresh.total_bars:
        raise CheckpointMismatch(f"bar_index {state['bar_index']} is outside the bars")
    if len(state["positions"]) > 1:
        raise CheckpointMismatch(f"{len(state['positions'])} open positions; at most 1 is held")


def _load_curve(
    files: Mapping[str, Path], meta: Mapping[str, Any], bar_index: int
) -> NDArray[np.float64]:
    if meta["length"] != bar_index:
        raise CheckpointMismatch(f"equity curve has {meta['length']} points, bar_index {bar_index}")
    path = _artifact(files, meta["file"])
    curve: NDArray[np.float64] = np.load(path, allow_pickle=False)
    if curve.shape != (bar_index,) or equity_sha256(curve) != meta["sha256"]:
        raise CheckpointMismatch(f"{path}: equity curve does not match its checkpoint state")
    return curve


def _load_trades(files: Mapping[str, Path], meta: Mapping[str, Any]) -> list[Trade]:
    path = _artifact(files, meta["file"])
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise CheckpointMismatch(f"{path}: trades do not match their checkpoint state")
    trades = [Trade.from_json(item) for item in json.loads(data)]
    if len(trades) != meta["count"]:
        raise CheckpointMismatch(f"{path}: {len(trades)} trades, the state says {meta['count']}")
    return trades


def _artifact(files: Mapping[str, Path], name: str) -> Path:
    path = files.get(name)
    if path is None:
        raise CheckpointMismatch(f"checkpoint artifact {name!r} is missing")
    return path


def _npy_writer(curve: NDArray[np.float64]) -> Writer:
    def write(out: IO[bytes]) -> None:
        buffer = io.BytesIO()
        np.save(buffer, curve, allow_pickle=False)
        out.write(buffer.getvalue())

    return write


def _bytes_writer(data: bytes) -> Writer:
    def write(out: IO[bytes]) -> None:
        out.write(data)

    return write


def _current_date(backtest: Backtest) -> str | None:
    if backtest.bar_index == 0:
        return None
    timestamp = int(backtest.bars.timestamp[backtest.bar_index - 1])
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def _samples(curve: NDArray[np.float64]) -> list[dict[str, Any]]:
    if len(curve) == 0:
        return []
    step = -(-len(curve) // _SAMPLES)  # ceiling: at most _SAMPLES points, plus the last
    indexes = [*range(0, len(curve) - 1, step), len(curve) - 1]
    return [{"bar_index": i, "portfolio_value": float(curve[i])} for i in indexes]
