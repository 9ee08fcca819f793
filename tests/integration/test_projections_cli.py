"""`ktrdr projections verify|rebuild` on a recorded scenario, with a tampered read model."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner, Result

from ktrdr.cli.app import app
from tests.integration.recorded import Scenario, record

runner = CliRunner()


@pytest.fixture
def scenario(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Scenario:
    monkeypatch.setenv("KTRDR_DATABASE_URL", database_url)
    monkeypatch.setenv("KTRDR_DATA_DIR", str(tmp_path))
    return asyncio.run(record(database_url, tmp_path))


def projections(command: str) -> Result:
    return runner.invoke(app, ["projections", command])


def tamper(scenario: Scenario) -> None:
    with psycopg.connect(scenario.database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE operations SET status = 'running' WHERE operation_id = %s",
            (scenario.operation_id,),
        )
        conn.execute("DELETE FROM checkpoint_history WHERE sequence = 1")
        conn.execute("INSERT INTO stream_type_counts VALUES ('ghost', 3)")


def test_verify_names_each_difference_and_rebuild_repairs_them(
    scenario: Scenario,
) -> None:
    clean = projections("verify")
    assert clean.exit_code == 0, clean.output
    assert "operations                   14 events replayed" in clean.stdout
    assert clean.stdout.splitlines()[-1] == "all read models match a rebuild"

    tamper(scenario)
    tampered = projections("verify")
    assert tampered.exit_code == 1, tampered.output
    op = scenario.operation_id
    differs = [line for line in tampered.stdout.splitlines() if line.startswith("differs: ")]
    assert sorted(differs) == [
        f"differs: checkpoint_history operation_id={op} sequence=1: missing from the live"
        " table, though the log builds it",
        f"differs: operations operation_id={op}: status live running, rebuilt completed",
        "differs: stream_type_counts stream_type=ghost: in the live table, but a rebuild from"
        " the log has no such row",
    ]
    assert tampered.stdout.splitlines()[-1] == (
        "3 row(s) differ from a rebuild: `ktrdr projections rebuild` rebuilds them"
    )

    rebuilt = projections("rebuild")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "stream_type_counts           14 events replayed" in rebuilt.stdout
    assert rebuilt.stdout.splitlines()[-1] == "rebuilt 5 read models from the event log"
    again = projections("verify")
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines()[-1] == "all read models match a rebuild"
