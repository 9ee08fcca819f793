"""Chaos in CI (issue 11): scripts/chaos.py, bounded, on this test's database. Workers are
SIGKILLed at random, one is SIGSTOPped past the orphan timeout, the backend is killed
once; every operation must complete by itself, exact, with clean streams."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.e2e.harness import base_env

REPO = Path(__file__).resolve().parents[2]


def test_every_operation_survives_chaos_and_ends_exact(database_url: str, tmp_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "chaos.py"),
            "--minutes",
            "0.4",
            "--database-url",
            database_url,
            "--workdir",
            str(tmp_path),
            "--json",
        ],
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=420,
    )
    print(run.stderr[-3000:])
    report = json.loads(run.stdout)
    assert run.returncode == 0, report["problems"]
    kinds = [i["kind"] for i in report["interruptions"]]
    assert kinds.count("worker killed") >= 2
    assert kinds.count("worker frozen") == 1 and kinds.count("backend killed") == 1
    assert report["interruptions_survived"] == len(kinds)
    assert report["problems"] == {"completed": [], "exact": [], "gap_free": [], "fenced": []}
    assert report["retries_scheduled"] >= kinds.count("worker killed")
    recovery = report["recovery_seconds"]
    assert recovery and sorted(recovery)[len(recovery) // 2] <= report["recovery_target_seconds"]
