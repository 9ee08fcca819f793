"""The event log benchmark runs end to end (``--quick``) and prints every ratio."""

from __future__ import annotations

import pytest

from benchmarks import eventlog


def test_quick_benchmark_prints_every_ratio(
    pg_admin_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert eventlog.main(["--quick", "--database-url", pg_admin_url]) == 0

    ratio_lines = [
        line for line in capsys.readouterr().out.splitlines() if line.startswith("ratio")
    ]
    missing = [
        label for label in eventlog.RATIO_LABELS if not any(label in line for line in ratio_lines)
    ]
    assert not missing
    assert len(ratio_lines) == len(eventlog.RATIO_LABELS)
