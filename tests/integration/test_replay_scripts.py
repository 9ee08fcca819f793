"""scripts/export_stream.py and scripts/replay_stream.py, run as a user runs them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from psycopg import AsyncConnection

from ktrdr.projections import views
from tests.integration.recorded import OPERATION_TYPES, Scenario, record

REPO = Path(__file__).resolve().parents[2]
ENVELOPE = ("global_position", "transaction_id", "recorded_at")


def script(
    name: str, *args: str, database_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KTRDR_DATABASE_URL"}
    if database_url:
        env["KTRDR_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / name), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )


def operation(database_url: str, operation_id: str) -> dict[str, Any] | None:
    async def read() -> dict[str, Any] | None:
        async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
            return await views.get_operation(conn, operation_id)

    return asyncio.run(read())


def exported(database_url: str, operation_id: str) -> list[dict[str, Any]]:
    done = script("export_stream.py", operation_id, database_url=database_url)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def without_envelope(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k not in ENVELOPE} for e in events]


@pytest.fixture
def scenario(database_url: str, tmp_path: Path) -> Scenario:
    return asyncio.run(record(database_url, tmp_path))


def test_export_then_replay_reproduces_the_operation(
    scenario: Scenario, empty_database_url: str, tmp_path: Path
) -> None:
    events = exported(scenario.database_url, scenario.operation_id)
    assert [e["event_type"] for e in events] == OPERATION_TYPES
    assert events[6]["metadata"] == {
        "actor": "orphan-detector",
        "attempt": 1,
        "correlation_id": scenario.operation_id,
    }
    export = tmp_path / "ops.jsonl"
    export.write_text("".join(json.dumps(e) + "\n" for e in events))

    replayed = script("replay_stream.py", str(export), "--database-url", empty_database_url)
    assert replayed.returncode == 0, replayed.stderr
    original = operation(scenario.database_url, scenario.operation_id)
    assert json.loads(replayed.stdout) == original
    assert operation(empty_database_url, scenario.operation_id) == original
    stream = f"operation-{scenario.operation_id}"
    assert f"appended 11 events of {stream}" in replayed.stderr
    assert replayed.stderr.splitlines()[-1] == "verify: all read models match a rebuild"
    again = exported(empty_database_url, scenario.operation_id)
    assert without_envelope(again) == without_envelope(events)

    twice = script("replay_stream.py", str(export), "--database-url", empty_database_url)
    assert twice.returncode == 1 and twice.stdout == ""
    assert twice.stderr.strip().splitlines() == [
        f"error: the database at {empty_database_url} already holds 11 events:"
        " replay into an empty database"
    ]


def test_replay_defaults_to_a_throwaway_database(scenario: Scenario, tmp_path: Path) -> None:
    export = tmp_path / "ops.jsonl"
    export.write_text(
        "".join(
            json.dumps(e) + "\n" for e in exported(scenario.database_url, scenario.operation_id)
        )
    )
    replayed = script("replay_stream.py", str(export))
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout) == operation(scenario.database_url, scenario.operation_id)
    assert replayed.stderr.splitlines()[-1] == "verify: all read models match a rebuild"


def test_scripts_fail_with_one_clear_line(database_url: str, tmp_path: Path) -> None:
    unknown = str(uuid.uuid4())
    missing = script("export_stream.py", unknown, database_url=database_url)
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.strip() == f"error: operation {unknown} does not exist; check the id"

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"stream_id": "operation-x"}\nnot json\n')
    refused = script("replay_stream.py", str(broken), "--database-url", database_url)
    assert refused.returncode == 1 and refused.stdout == ""
    assert (
        refused.stderr.strip()
        == "error: line 1: malformed exported event: 'stream_version' must be an integer"
    )


@pytest.mark.parametrize("name", ["export_stream.py", "replay_stream.py"])
def test_scripts_explain_themselves(name: str) -> None:
    helped = script(name, "--help")
    assert helped.returncode == 0, helped.stderr
    assert (
        "scripts/export_stream.py" in helped.stdout and "scripts/replay_stream.py" in helped.stdout
    )
