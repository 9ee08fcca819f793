from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ktrdr.workers.bars import Bars, bars_from_params, load_csv_bars, synthetic_bars
from ktrdr.workers.features import (
    FEATURE_NAMES,
    compute_features,
    feature_matrix,
    moving_average_ratio,
    rsi,
)

CSV_HEADER = "timestamp,open,high,low,close,volume\n"


def _digest(bars: Bars) -> str:
    import hashlib

    digest = hashlib.sha256()
    for name in ("timestamp", "open", "high", "low", "close", "volume"):
        digest.update(getattr(bars, name).tobytes())
    return digest.hexdigest()


def test_synthetic_bars_are_deterministic_across_processes() -> None:
    code = (
        "from ktrdr.workers.bars import synthetic_bars;"
        "from tests.unit.test_bars_features import _digest;"
        "print(_digest(synthetic_bars(500, 7)))"
    )
    root = Path(__file__).resolve().parents[2]
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert other.stdout.strip() == _digest(synthetic_bars(500, 7))
    assert _digest(synthetic_bars(500, 8)) != _digest(synthetic_bars(500, 7))


def test_synthetic_bars_are_well_formed() -> None:
    bars = synthetic_bars(1000, 1)
    assert len(bars) == 1000
    assert bars.timestamp.dtype == np.int64 and bars.close.dtype == np.float64
    assert (np.diff(bars.timestamp) > 0).all()
    assert (bars.high >= np.maximum(bars.open, bars.close)).all()
    assert (bars.low <= np.minimum(bars.open, bars.close)).all()
    assert (bars.low > 0).all() and (bars.volume > 0).all()


def test_synthetic_bars_carry_a_learnable_signal() -> None:
    features, labels, _ = feature_matrix(synthetic_bars(3000, 3))
    trend = features[:, FEATURE_NAMES.index("ma_ratio_50")] > 0
    assert ((trend == labels.astype(bool)).mean()) > 0.55


def test_bars_refuse_columns_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        Bars(np.zeros(2, np.int64), *(np.zeros(2) for _ in range(4)), np.zeros(3))


def test_csv_with_iso_and_epoch_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text(
        CSV_HEADER
        + "2024-01-01T00:00:00Z,1,2,0.5,1.5,10\n"
        + "2024-01-01T01:00:00,1.5,2,1,1.8,11\n"
        + "1704074400,1.8,2.2,1.7,2.0,12\n"
    )
    bars = load_csv_bars(path)
    assert bars.timestamp.tolist() == [1704067200, 1704070800, 1704074400]
    assert bars.close.tolist() == [1.5, 1.8, 2.0]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "no bars"),
        (CSV_HEADER, "no bars"),
        ("timestamp,open,high,low,close\n1,1,1,1,1\n", "missing column.*volume"),
        (CSV_HEADER + "yesterday,1,1,1,1,1\n", "line 2: timestamp 'yesterday'"),
        (CSV_HEADER + "1,1,1,1,abc,1\n", "line 2: close 'abc' is not a number"),
        (CSV_HEADER + "1,1,1,1,nan,1\n", "line 2: close is 'nan', not a finite number"),
        (CSV_HEADER + "5,1,1,1,1,1\n5,1,1,1,1,1\n", "line 3: timestamp is not after"),
        (CSV_HEADER + "1,1,0.5,1,1,1\n", "line 2: high is below low"),
        (CSV_HEADER + "1,-1,1,-2,1,1\n", "line 2: a price is zero or negative"),
        (CSV_HEADER + "1,1,1,1,1,-3\n", "line 2: volume is negative"),
    ],
)
def test_bad_csv_is_refused_with_the_problem(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=problem):
        load_csv_bars(path)


def test_missing_csv_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read bars CSV"):
        load_csv_bars(tmp_path / "absent.csv")


def test_bars_from_params(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTRDR_DATA_ROOTS", str(tmp_path))
    assert len(bars_from_params({})) == 2000
    assert _digest(bars_from_params({"bars": 300, "seed": 5})) == _digest(synthetic_bars(300, 5))
    path = tmp_path / "bars.csv"
    path.write_text(CSV_HEADER + "".join(f"{i},1,2,0.5,1.5,10\n" for i in range(1, 6)))
    assert len(bars_from_params({"data": {"csv_path": str(path)}})) == 5
    assert len(bars_from_params({"data": {"csv_path": str(path)}, "bars": 3})) == 3
    for bad in ({"bars": 0}, {"bars": True}, {"seed": "x"}, {"data": "file.csv"}):
        with pytest.raises(ValueError):
            bars_from_params(bad)


def test_features_are_causal_and_labelled_by_the_next_bar() -> None:
    bars = synthetic_bars(400, 2)
    full = compute_features(bars)
    prefix = compute_features(Bars(*(getattr(bars, n)[:300] for n in Bars.__dataclass_fields__)))
    np.testing.assert_array_equal(full[:300], prefix)
    features, labels, index = feature_matrix(bars)
    assert features.shape == (len(index), len(FEATURE_NAMES))
    assert np.isfinite(features).all()
    assert index[-1] == len(bars) - 2
    assert (labels == (bars.close[index + 1] > bars.close[index])).all()


def test_indicators_on_known_values() -> None:
    close = np.array([1.0, 2.0, 3.0, 2.0, 3.0])
    expected = [2 / 1.5 - 1, 3 / 2.5 - 1, 2 / 2.5 - 1, 3 / 2.5 - 1]
    np.testing.assert_allclose(moving_average_ratio(close, 2)[1:], expected)
    np.testing.assert_allclose(rsi(close, 4)[4], 100 * 3 / 4)
    assert np.isnan(rsi(close, 4)[:4]).all()
    assert rsi(np.ones(6), 3)[5] == 50.0
