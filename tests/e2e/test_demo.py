"""The README's first command tells the whole story and leaves no process behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.e2e.harness import base_env


def test_demo_runs_the_whole_story(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "ktrdr.cli.app", "demo", "--data-dir", str(data)],
        env=base_env(COLUMNS="160"),
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    for line in (
        "worker trainer-1 killed (SIGKILL)",
        "orphan detector: failed/orphaned",
        "retry processor: attempt 2 scheduled",
        "completed on trainer-2 (attempt 2)",
        "identical: resume is bit-exact",
        "backtester-1 exited 0; backtest cancelled with a shutdown checkpoint",
        "backtest completed on backtester-2",
        "agent research completed: verdict",
        "OperationClaimed",
        "ktrdr serve",
    ):
        assert line in out, f"missing {line!r} in:\n{out}"
    leftovers = subprocess.run(["pgrep", "-f", str(data)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", "the demo left processes behind"
