"""`ktrdr events tail|stream|replay` on a recorded scenario, straight on the event log."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from typer.testing import CliRunner, Result

from ktrdr.api.app import create_app
from ktrdr.cli.app import app
from ktrdr.config import load_settings
from tests.conftest import create_database, drop_database
from tests.e2e.cli_helpers import one_error_line
from tests.integration.recorded import (
    OPERATION_TYPES,
    RESULT,
    STATUS_AFTER,
    WORKER_A,
    WORKER_B,
    Scenario,
    keep_reporting_progress,
    record,
)

runner = CliRunner()
Ktrdr = Callable[..., Result]


@pytest.fixture(scope="module")
def scenario(
    pg_admin_url: str, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    """Recorded once: these tests only read it."""
    name, url = create_database(pg_admin_url, template_database)
    try:
        yield asyncio.run(record(url, tmp_path_factory.mktemp("recorded")))
    finally:
        drop_database(pg_admin_url, name)


@pytest.fixture
def ktrdr(scenario: Scenario, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Ktrdr:
    monkeypatch.setenv("KTRDR_DATABASE_URL", scenario.database_url)
    monkeypatch.setenv("KTRDR_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("COLUMNS", raising=False)
    return lambda *args: runner.invoke(app, ["events", *args])


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def table_rows(stdout: str) -> list[list[str]]:
    """The rows of a Rich table whose first column is a version number."""
    rows = [line.split() for line in stdout.splitlines()]
    return [row for row in rows if row and row[0].isdigit()]


def recorded_at(ktrdr: Ktrdr, operation_id: str) -> dict[int, datetime]:
    events = json.loads(ok(ktrdr("stream", operation_id, "--json")))
    return {e["stream_version"]: datetime.fromisoformat(e["recorded_at"]) for e in events}


# ---- stream ---------------------------------------------------------------------------


def test_stream_reads_as_a_timeline(ktrdr: Ktrdr, scenario: Scenario) -> None:
    stdout = ok(ktrdr("stream", scenario.operation_id))
    assert stdout.startswith(f"operation {scenario.operation_id}: 11 events, ")
    rows = table_rows(stdout)
    assert [row[0] for row in rows] == [str(v) for v in range(1, 12)]
    assert [row[2] for row in rows] == OPERATION_TYPES
    attempts = [row[3] for row in rows]
    assert attempts == ["-", "1", "1", "1", "1", "1", "1", "-", "2", "2", "2"]
    workers = [row[4] for row in rows]
    assert workers[1:6] == [WORKER_A] * 5 and workers[8:] == [WORKER_B] * 3
    assert workers[6] == "-"  # the orphan detector failed it, not a worker
    lines = {row[0]: " ".join(row) for row in rows}
    assert 'params={"epochs":10,"seed":7}' in lines["1"] and "by=user" in lines["1"]
    assert 'sequence=2 checkpoint_type=periodic state={"epoch":4}' in lines["6"]
    assert "reason=orphaned message=worker gpu-a went silent by=orphan-detector" in lines["7"]
    assert "from_sequence=2 checkpoint_type=periodic previous_status=failed" in lines["8"]
    assert "percentage=100 current_step=epoch 10" in lines["10"]


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("command", ["stream", "replay"])
def test_tables_fit_the_terminal(
    ktrdr: Ktrdr, scenario: Scenario, monkeypatch: pytest.MonkeyPatch, command: str, columns: int
) -> None:
    monkeypatch.setenv("COLUMNS", "1000")
    # The details shorten long values themselves (a sha256 ends in "…"); the table adds none.
    shortened = ok(ktrdr(command, scenario.operation_id)).count("…")
    monkeypatch.setenv("COLUMNS", str(columns))
    stdout = ok(ktrdr(command, scenario.operation_id[:12]))
    lines = stdout.splitlines()
    assert all(len(line) <= columns for line in lines), stdout
    assert stdout.count("…") == shortened, stdout
    last = "DETAILS" if command == "stream" else "NOTE"
    header = next(line.split() for line in lines if line.split()[:2] == ["V", "TIME"])
    assert header[-1] == last, stdout
    rows = [line.split() for line in lines if line[:5].strip().isdigit()]  # not wrapped ones
    assert [row[0] for row in rows] == [str(v) for v in range(1, 12)]
    assert [row[2] for row in rows] == OPERATION_TYPES
    if command == "stream":
        squeezed = "".join(stdout.split())  # the details wrap, nothing of them is lost
        assert "reason=orphanedmessage=workergpu-awentsilentby=orphan-detector" in squeezed


def test_stream_json_is_the_raw_events(ktrdr: Ktrdr, scenario: Scenario) -> None:
    events = json.loads(ok(ktrdr("stream", scenario.operation_id, "--json")))
    assert [e["event_type"] for e in events] == OPERATION_TYPES
    assert [e["stream_version"] for e in events] == list(range(1, 12))
    assert {e["stream_id"] for e in events} == {f"operation-{scenario.operation_id}"}
    assert len({uuid.UUID(e["event_id"]) for e in events}) == 11
    assert events[6]["metadata"]["actor"] == "orphan-detector"
    assert events[6]["data"]["reason"] == "orphaned"
    assert events[10]["data"]["result"] == RESULT
    positions = [e["global_position"] for e in events]
    assert positions == sorted(positions)


def test_stream_of_an_unknown_operation_is_one_error_line(ktrdr: Ktrdr) -> None:
    unknown = str(uuid.uuid4())
    line = one_error_line(ktrdr("stream", unknown))
    assert line == f"error: operation {unknown} does not exist; check the id"


# ---- replay ---------------------------------------------------------------------------


def test_replay_shows_the_state_after_each_event(ktrdr: Ktrdr, scenario: Scenario) -> None:
    rows = table_rows(ok(ktrdr("replay", scenario.operation_id)))
    assert [row[2] for row in rows] == OPERATION_TYPES
    statuses = {int(row[0]): row[3] for row in rows}
    assert {v: statuses[v] for v in STATUS_AFTER} == STATUS_AFTER
    attempts = [row[4] for row in rows]
    assert attempts == ["0", "1", "1", "1", "1", "1", "1", "1", "2", "2", "2"]
    text = {int(row[0]): " ".join(row) for row in rows}
    assert "#1 periodic epoch 2" in text[4] and "#2 periodic epoch 4" in text[6]
    assert "orphaned: worker gpu-a went silent; resumable" in text[7]
    assert "100% · epoch 10" in text[11] and "result" in text[11]


def test_replay_until_a_version_shows_that_state(ktrdr: Ktrdr, scenario: Scenario) -> None:
    stdout = ok(ktrdr("replay", scenario.operation_id, "--until", "7"))
    lines = stdout.splitlines()
    assert lines[0] == f"operation {scenario.operation_id} (training) as of version 7 of 11"
    shown = dict(line.split(None, 1) for line in lines[1:])
    assert shown["event"].startswith("OperationFailed, recorded ")
    assert shown["status"] == "failed"
    assert shown["attempt"] == f"1 (worker {WORKER_A})"
    assert shown["progress"] == "40% · epoch 4"
    assert shown["checkpoint"] == "#2 periodic epoch 4"
    assert shown["resumable"] == "yes"
    assert shown["error"] == "orphaned: worker gpu-a went silent"
    assert shown["result"] == "-"


def test_replay_json_is_the_api_answer_as_of_each_version(
    ktrdr: Ktrdr, scenario: Scenario, tmp_path: Path
) -> None:
    lines = ok(ktrdr("replay", scenario.operation_id, "--json")).splitlines()
    states = [json.loads(line) for line in lines]
    assert [s["version"] for s in states] == list(range(1, 12))
    single = json.loads(ok(ktrdr("replay", scenario.operation_id, "--until", "8", "--json")))
    assert single == states[7]
    with api_client(scenario, tmp_path) as client:
        path = f"/api/v1/operations/{scenario.operation_id}"
        for state in states:
            answer = client.get(path, params={"as_of_version": state.pop("version")})
            assert answer.status_code == 200, answer.text
            assert answer.json() == state
        assert client.get(path).json() == states[-1]
    assert states[-1]["status"] == "completed" and states[-1]["result"] == RESULT
    assert states[0]["status"] == "pending" and states[0]["attempt"] == 0


def api_client(scenario: Scenario, tmp_path: Path) -> TestClient[Any]:
    # What is compared is the answer, not who may ask: authentication is off.
    settings = load_settings(database_url=scenario.database_url, data_dir=tmp_path, auth="off")
    litestar = create_app(settings, database_url=scenario.database_url, run_processors=False)
    return TestClient(app=litestar)


def test_replay_at_a_time_is_the_last_event_recorded_at_or_before_it(
    ktrdr: Ktrdr, scenario: Scenario
) -> None:
    times = recorded_at(ktrdr, scenario.operation_id)
    assert times[7] < times[8]

    def version_at(moment: str) -> int:
        stdout = ok(ktrdr("replay", scenario.operation_id, "--at", moment, "--json"))
        version: int = json.loads(stdout)["version"]
        return version

    assert version_at(times[7].isoformat()) == 7
    assert version_at((times[8] - timedelta(microseconds=1)).isoformat()) == 7
    assert version_at(times[8].isoformat()) == 8
    naive_utc = times[8].replace(tzinfo=None).isoformat()
    assert version_at(naive_utc) == 8
    assert version_at((times[11] + timedelta(days=1)).isoformat()) == 11
    before = (times[1] - timedelta(seconds=1)).isoformat()
    line = one_error_line(ktrdr("replay", scenario.operation_id, "--at", before))
    assert "has no event recorded at or before" in line and "its first was recorded at" in line


@pytest.mark.parametrize("version", ["0", "12", "-3"])
def test_replay_until_a_version_outside_the_stream_fails_clearly(
    ktrdr: Ktrdr, scenario: Scenario, version: str
) -> None:
    line = one_error_line(ktrdr("replay", scenario.operation_id, "--until", version))
    assert line == (
        f"error: version {version} is not in the stream of operation {scenario.operation_id},"
        " which has versions 1 to 11"
    )


def test_replay_refuses_bad_arguments(ktrdr: Ktrdr, scenario: Scenario) -> None:
    unknown = str(uuid.uuid4())
    line = one_error_line(ktrdr("replay", unknown, "--until", "3"))
    assert line == f"error: operation {unknown} does not exist; check the id"
    both = ktrdr("replay", scenario.operation_id, "--until", "3", "--at", "2025-06-01")
    assert both.exit_code == 2 and "give --until or --at, not both" in both.stderr
    bad_time = ktrdr("replay", scenario.operation_id, "--at", "yesterday")
    assert bad_time.exit_code == 2 and "is not an ISO time" in bad_time.stderr
    bad_id = ktrdr("replay", "not-an-id")
    assert bad_id.exit_code == 2 and "is not an operation id" in bad_id.stderr


# ---- tail -----------------------------------------------------------------------------

ALL_TYPES = [
    "WorkerRegistered",
    *OPERATION_TYPES[:6],
    "HeartbeatMissed",
    *OPERATION_TYPES[6:8],
    "WorkerRegistered",
    *OPERATION_TYPES[8:],
]


def tail_types(stdout: str) -> list[str]:
    return [line.split()[3] for line in stdout.splitlines()]


def test_tail_prints_the_global_log_in_order(ktrdr: Ktrdr, scenario: Scenario) -> None:
    stdout = ok(ktrdr("tail"))
    assert tail_types(stdout) == ALL_TYPES
    lines = stdout.splitlines()
    positions = [int(line.split()[1].lstrip("#")) for line in lines]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    failed = lines[ALL_TYPES.index("OperationFailed")].split()
    assert failed[2] == f"operation-{scenario.operation_id}"
    assert "reason=orphaned" in failed and "by=orphan-detector" in failed
    assert tail_types(ok(ktrdr("tail", "--limit", "3"))) == ALL_TYPES[-3:]


def test_tail_filters_by_type_and_stream(ktrdr: Ktrdr, scenario: Scenario) -> None:
    claims = ok(ktrdr("tail", "--type", "OperationClaimed", "-t", "OperationFailed"))
    assert tail_types(claims) == ["OperationClaimed", "OperationFailed", "OperationClaimed"]
    workers = ok(ktrdr("tail", "--stream", "worker"))
    assert tail_types(workers) == ["WorkerRegistered", "HeartbeatMissed", "WorkerRegistered"]
    assert tail_types(ok(ktrdr("tail", "--stream", "worker-"))) == tail_types(workers)
    gpu_a = ok(ktrdr("tail", "--stream", f"worker-{WORKER_A}"))
    assert tail_types(gpu_a) == ["WorkerRegistered", "HeartbeatMissed"]
    by_id = ok(ktrdr("tail", "--stream", scenario.operation_id))
    assert tail_types(by_id) == OPERATION_TYPES
    by_stream = ok(ktrdr("tail", "-s", f"operation-{scenario.operation_id}", "-n", "2"))
    assert tail_types(by_stream) == OPERATION_TYPES[-2:]
    assert ok(ktrdr("tail", "--stream", f"operation-{uuid.uuid4()}")) == ""


def test_tail_json_is_one_event_per_line(ktrdr: Ktrdr, scenario: Scenario) -> None:
    events = [json.loads(line) for line in ok(ktrdr("tail", "--json")).splitlines()]
    assert [e["event_type"] for e in events] == ALL_TYPES
    assert events[0]["stream_id"] == f"worker-{WORKER_A}"
    assert events[0]["data"]["host"] == f"{WORKER_A}.lab"
    assert set(events[0]) >= {"global_position", "stream_version", "event_id", "recorded_at"}


def test_tail_follow_stops_quietly_on_ctrl_c(scenario: Scenario, tmp_path: Path) -> None:
    env = os.environ | {
        "KTRDR_DATABASE_URL": scenario.database_url,
        "KTRDR_DATA_DIR": str(tmp_path),
    }
    command = [sys.executable, "-m", "ktrdr.cli.app", "events", "tail", "--follow", "-n", "1"]
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # A shell without job control starts background jobs with SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    ) as tailing:
        assert tailing.stdout is not None
        first = tailing.stdout.readline()  # printed: it is following now
        tailing.send_signal(signal.SIGINT)
        rest, errors = tailing.communicate(timeout=30)
    assert tail_types(first) == ["OperationCompleted"]
    assert (tailing.returncode, rest, errors) == (0, "", "")


def test_events_on_an_unmigrated_database_fail_without_migrating_it(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KTRDR_DATABASE_URL", empty_database_url)
    monkeypatch.setenv("KTRDR_DATA_DIR", str(tmp_path))
    line = one_error_line(runner.invoke(app, ["events", "tail"]))
    assert "is at migration none" in line and "run `ktrdr db migrate` first" in line
    again = one_error_line(runner.invoke(app, ["events", "tail"]))
    assert again == line  # still not migrated


@pytest.mark.anyio
async def test_tail_follow_prints_events_appended_while_it_runs(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KTRDR_DATABASE_URL", database_url)
    monkeypatch.setenv("KTRDR_DATA_DIR", str(tmp_path))
    await record(database_url, tmp_path)
    follow = ["events", "tail", "--follow", "--limit", "1", "--type", "ProgressReported"]
    follow += ["--max-events", "2", "--timeout", "60", "--poll-interval", "5"]
    tailing = asyncio.ensure_future(asyncio.to_thread(runner.invoke, app, follow))
    # It may start reading after some of these appends: it shows the newest one it
    # finds, then follows, so keep appending until it has seen two live ones.
    percentages = await keep_reporting_progress(database_url, tmp_path, until=tailing)
    result = await tailing
    lines = ok(result).splitlines()
    assert len(lines) == 3 and tail_types("\n".join(lines)) == ["ProgressReported"] * 3
    positions = [int(line.split()[1].lstrip("#")) for line in lines]
    assert positions == sorted(positions) and len(set(positions)) == 3
    live = [float(line.split("percentage=")[1].split()[0]) for line in lines[1:]]
    assert live[0] < live[1] and set(live) <= set(percentages)
