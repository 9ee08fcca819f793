"""OHLCV bars: a seeded synthetic generator, a CSV loader, and the params that choose one.

Everything here is deterministic: the same ``(n, seed)`` gives bit-identical bars in
any process, and the same CSV gives the same arrays.
"""

from __future__ import annotations

import csv
import math
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ktrdr.config import Settings, load_settings

__all__ = [
    "DEFAULT_BAR_COUNT",
    "DEFAULT_SEED",
    "Bars",
    "bars_from_params",
    "load_csv_bars",
    "synthetic_bars",
]

DEFAULT_BAR_COUNT = 2000
DEFAULT_SEED = 42
COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")

_START = 1_577_836_800  # 2020-01-01T00:00:00Z
_STEP = 3600  # hourly bars
# Regimes: (drift per bar, volatility per bar, mean length in bars): bull, bear, sideways.
_REGIMES = ((0.003, 0.008, 200.0), (-0.003, 0.010, 150.0), (0.0, 0.005, 200.0))


@dataclass(frozen=True)
class Bars:
    """Bars in time order: timestamp (int64 epoch seconds) and float64 prices and volume."""

    timestamp: NDArray[np.int64]
    open: NDArray[np.float64]
    high: NDArray[np.float64]
    low: NDArray[np.float64]
    close: NDArray[np.float64]
    volume: NDArray[np.float64]

    def __post_init__(self) -> None:
        lengths = {len(getattr(self, name)) for name in COLUMNS}
        if len(lengths) != 1:
            raise ValueError(f"bars columns differ in length: {sorted(lengths)}")

    def __len__(self) -> int:
        return len(self.timestamp)


def synthetic_bars(n: int, seed: int) -> Bars:
    """Hourly geometric Brownian motion switching between bull, bear and sideways regimes."""
    if n < 1:
        raise ValueError(f"bar count must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    drift, vol = _regime_path(n, rng)
    log_returns = drift - 0.5 * vol**2 + vol * rng.standard_normal(n)
    close = 100.0 * np.exp(np.cumsum(log_returns))
    gaps = 0.1 * vol * rng.standard_normal(n)
    open_ = np.concatenate(([100.0], close[:-1])) * np.exp(gaps)
    wick_up = np.abs(rng.standard_normal(n)) * vol * 0.5
    wick_down = np.abs(rng.standard_normal(n)) * vol * 0.5
    high = np.maximum(open_, close) * np.exp(wick_up)
    low = np.minimum(open_, close) * np.exp(-wick_down)
    volume = 1000.0 * np.exp(0.3 * rng.standard_normal(n) + 20.0 * np.abs(log_returns))
    timestamp = _START + _STEP * np.arange(n, dtype=np.int64)
    return Bars(timestamp, open_, high, low, close, volume)


def _regime_path(
    n: int, rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    drift = np.empty(n)
    vol = np.empty(n)
    start = 0
    regime = int(rng.integers(len(_REGIMES)))
    while start < n:
        mu, sigma, mean_length = _REGIMES[regime]
        length = int(rng.geometric(1.0 / mean_length))
        drift[start : start + length] = mu
        vol[start : start + length] = sigma
        start += length
        regime = (regime + 1 + int(rng.integers(len(_REGIMES) - 1))) % len(_REGIMES)
    return drift, vol


def load_csv_bars(path: str | Path) -> Bars:
    """Bars from a CSV with a header naming timestamp, open, high, low, close, volume."""
    path = Path(path)
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
            header = rows[0].keys() if rows else set()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read bars CSV: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path}: not a readable CSV: {exc}") from None
    if not rows:
        raise ValueError(f"{path}: no bars (a header and at least one row are needed)")
    missing = [name for name in COLUMNS if name not in header]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    bars = _parse_rows(path, rows)
    _check_bars(path, bars)
    return bars


def _parse_rows(path: Path, rows: list[dict[str, Any]]) -> Bars:
    timestamps = np.empty(len(rows), dtype=np.int64)
    values = {name: np.empty(len(rows)) for name in COLUMNS[1:]}
    for index, row in enumerate(rows):
        line = index + 2  # 1-based, after the header
        timestamps[index] = _parse_timestamp(path, line, row["timestamp"])
        for name, column in values.items():
            column[index] = _parse_number(path, line, name, row[name])
    return Bars(timestamps, **values)


def _parse_timestamp(path: Path, line: int, text: str | None) -> int:
    text = (text or "").strip()
    try:
        return int(float(text)) if _is_number(text) else _parse_iso(text)
    except (ValueError, OverflowError):
        raise ValueError(
            f"{path}, line {line}: timestamp {text!r} is neither ISO 8601 nor epoch seconds"
        ) from None


def _parse_iso(text: str) -> int:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_number(path: Path, line: int, name: str, text: str | None) -> float:
    try:
        value = float((text or "").strip())
    except ValueError:
        raise ValueError(f"{path}, line {line}: {name} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{path}, line {line}: {name} is {text!r}, not a finite number")
    return value


def _check_bars(path: Path, bars: Bars) -> None:
    problems = {
        "timestamp is not after the previous row's": np.diff(bars.timestamp, prepend=-(2**62)) <= 0,
        "a price is zero or negative": np.minimum(bars.open, bars.close) <= 0,
        "high is below low": bars.high < bars.low,
        "volume is negative": bars.volume < 0,
    }
    for problem, bad in problems.items():
        if bad.any():
            line = int(np.argmax(bad)) + 2
            raise ValueError(f"{path}, line {line}: {problem}")


@dataclass(frozen=True)
class DataFiles:
    """Where params may point a workload: regular files under the configured roots, up
    to a size. A path anyone can put in an operation's params must not open /dev/zero or
    /etc/shadow, nor say whether a file exists outside the roots."""

    roots: tuple[Path, ...]
    max_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> DataFiles:
        return cls(settings.data_root_paths, settings.data_file_max_bytes)

    def resolve(self, name: str) -> Path:
        """The file ``name`` names (relative: under the first root), or a ValueError that
        reads the same whether the file is missing, elsewhere or not a file."""
        refused = ValueError(
            f"data file {name[:300]!r} is not a readable data file under the data roots"
            " (KTRDR_DATA_ROOTS; default $KTRDR_DATA_DIR/data)"
        )
        if "\x00" in name or not self.roots:
            raise refused
        try:
            path = (self.roots[0] / name).resolve(strict=True)
            inside = any(path.is_relative_to(root.resolve()) for root in self.roots)
            info = path.stat()
        except (OSError, RuntimeError):
            raise refused from None
        if not inside or not stat.S_ISREG(info.st_mode):
            raise refused
        if info.st_size > self.max_bytes:
            raise ValueError(
                f"data file {name[:300]!r} is {info.st_size} bytes, over the"
                f" {self.max_bytes}-byte limit (KTRDR_DATA_FILE_MAX_BYTES)"
            )
        return path


def bars_from_params(params: Mapping[str, Any], files: DataFiles | None = None) -> Bars:
    """Bars chosen by params: ``data.csv_path`` (first ``bars`` rows if given) or synthetic.

    ``files`` (default: from the environment's settings) says which CSVs may be read."""
    count = params.get("bars")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValueError(f"bars must be a positive integer, got {count!r}")
    data = params.get("data") or {}
    if not isinstance(data, Mapping):
        raise ValueError(f"data must be an object like {{'csv_path': ...}}, got {data!r}")
    csv_path = data.get("csv_path")
    if csv_path is None:
        seed = params.get("seed", DEFAULT_SEED)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        return synthetic_bars(count or DEFAULT_BAR_COUNT, seed)
    if not isinstance(csv_path, str):
        raise ValueError(f"data.csv_path must be a string, got {csv_path!r}")
    files = files or DataFiles.from_settings(load_settings())
    bars = load_csv_bars(files.resolve(csv_path))
    return bars if count is None else _head(bars, count)


def _head(bars: Bars, count: int) -> Bars:
    return Bars(*(getattr(bars, name)[:count] for name in COLUMNS))
