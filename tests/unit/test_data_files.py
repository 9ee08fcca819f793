"""Params name data files; a worker opens only regular files under the data roots, and
its refusal reads the same whether a file is missing, elsewhere or forbidden."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ktrdr.workers.bars import DataFiles, bars_from_params

CSV = "timestamp,open,high,low,close,volume\n" + "".join(
    f"{i},1,2,0.5,1.5,10\n" for i in range(1, 6)
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    (root / "bars.csv").write_text(CSV)
    (tmp_path / "outside.csv").write_text(CSV)
    (root / "escape.csv").symlink_to(tmp_path / "outside.csv")
    (root / "sub").mkdir()
    return root


def refusal(files: DataFiles, name: str) -> str:
    with pytest.raises(ValueError) as refused:
        files.resolve(name)
    return str(refused.value).replace(repr(name[:300]), "NAME")


def test_files_under_the_roots_are_read_by_relative_or_absolute_path(root: Path) -> None:
    files = DataFiles((root,), 1 << 20)
    assert files.resolve("bars.csv") == (root / "bars.csv").resolve()
    assert files.resolve(str(root / "bars.csv")) == (root / "bars.csv").resolve()
    assert len(bars_from_params({"data": {"csv_path": "bars.csv"}}, files)) == 5


def test_everything_else_gets_one_refusal(root: Path, tmp_path: Path) -> None:
    files = DataFiles((root,), 1 << 20)
    names = [
        "missing.csv",
        str(tmp_path / "outside.csv"),
        "../outside.csv",
        "escape.csv",
        "sub",
        "/dev/zero",
        "/etc/shadow",
        "/etc/passwd",
        "/proc/self/environ",
        "bars.csv\x00.txt",
    ]
    messages = {refusal(files, name) for name in names}
    assert len(messages) == 1
    [message] = messages
    assert "KTRDR_DATA_ROOTS" in message and "No such file" not in message


def test_a_file_over_the_size_limit_is_refused(root: Path) -> None:
    with pytest.raises(ValueError, match="over the 10-byte limit"):
        DataFiles((root,), 10).resolve("bars.csv")


def test_the_roots_come_from_the_settings(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KTRDR_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("KTRDR_DATA_ROOTS", raising=False)
    assert len(bars_from_params({"data": {"csv_path": "bars.csv"}})) == 5  # $DATA_DIR/data
    other = tmp_path / "other"
    other.mkdir()
    (other / "more.csv").write_text(CSV)
    monkeypatch.setenv("KTRDR_DATA_ROOTS", os.pathsep.join([str(root), str(other)]))
    assert len(bars_from_params({"data": {"csv_path": str(other / "more.csv")}})) == 5
    with pytest.raises(ValueError, match="data roots"):
        bars_from_params({"data": {"csv_path": "/etc/hostname"}})
