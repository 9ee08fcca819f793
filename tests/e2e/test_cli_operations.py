"""`ktrdr operations …` against a live API on real PostgreSQL, as a person runs it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer

from ktrdr.bootstrap.system import System
from ktrdr.cli import checkpoints as cli_checkpoints
from ktrdr.cli import operations as cli_operations
from tests.e2e.cli_helpers import (
    failed_with_epochs,
    json_of,
    ktrdr,
    one_error_line,
    runner,
    unused_url,
)
from tests.e2e.live_api import LiveApi, live_api
from tests.integration.api import drive
from tests.integration.api.drive import complete, progress

ID_SHAPE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture
def live(database_url: str, tmp_path: Path) -> Iterator[LiveApi]:
    with live_api(database_url, tmp_path) as api:
        yield api


def running(live: LiveApi, operation_type: str = "training", **checkpoint: int) -> str:
    op = live.create(operation_type)

    async def run(system: System) -> None:
        await drive.claim(system, op)
        if checkpoint:
            await drive.checkpoint(system, op, dict(checkpoint))

    live.drive(run)
    return op


def test_start_reads_params_as_json_when_they_parse(live: LiveApi) -> None:
    created = json_of(
        ktrdr(
            live,
            *("operations", "start", "training", "--json"),
            *("--params-json", '{"epochs": 1, "symbol": "EURUSD"}'),
            *("--param", "epochs=3", "--param", "lr=0.01", "--param", "shuffle=true"),
            *("-p", "name=run 7", "-p", 'layers={"hidden": [64, 32]}', "-p", "empty="),
        )
    )
    assert created["status"] == "pending" and created["operation_type"] == "training"
    assert created["params"] == {
        "epochs": 3,
        "symbol": "EURUSD",
        "lr": 0.01,
        "shuffle": True,
        "name": "run 7",
        "layers": {"hidden": [64, 32]},
        "empty": "",
    }
    assert live.get(f"/operations/{created['operation_id']}").json() == created

    human = ktrdr(live, "operations", "start", "backtesting", "--param", "bars=100")
    assert human.exit_code == 0, human.output
    assert human.stdout.startswith("created ") and "(backtesting, pending)" in human.stdout


@pytest.mark.parametrize(
    "bad",
    [
        ["--param", "epochs"],
        ["--param", "=3"],
        ["--params-json", "[1, 2]"],
        ["--params-json", "{epochs: 3}"],
    ],
)
def test_malformed_params_are_a_usage_error_and_create_nothing(
    live: LiveApi, bad: list[str]
) -> None:
    result = ktrdr(live, "operations", "start", "training", *bad)
    assert result.exit_code == 2
    assert bad[0] in result.stderr and "Traceback" not in result.output
    assert live.get("/operations").json()["total"] == 0


def test_start_refused_by_the_api_is_one_line_and_exit_1(live: LiveApi) -> None:
    result = ktrdr(live, "operations", "start", "dancing")
    assert result.exit_code == 1
    assert one_error_line(result).endswith("(VALIDATION_ERROR)")


def test_list_is_one_request_and_shows_checkpoints(live: LiveApi) -> None:
    failed = failed_with_epochs(live, [1, 2])
    backtest = running(live, "backtesting", bar_index=5400)
    pending = live.create("agent_research")
    seen: list[httpx.Request] = []
    with httpx.Client(event_hooks={"request": [seen.append]}) as http:
        result = ktrdr(live, "operations", "list", http=http)
    assert result.exit_code == 0, result.output
    assert len(seen) == 1 and seen[0].url.path == "/api/v1/operations"
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.strip()}
    assert rows["ID"] == ["ID", "TYPE", "STATUS", "PROGRESS", "CHECKPOINT", "AGE"]
    assert rows[failed][1:3] == ["training", "failed"] and "epoch 2" in " ".join(rows[failed])
    assert rows[backtest][1:3] == ["backtesting", "running"]
    assert "bar 5400" in " ".join(rows[backtest])
    assert rows[pending][1:5] == ["agent_research", "pending", "0%", "-"]
    assert all(rows[op][-1] in ("0s", "1s", "2s") for op in (failed, backtest, pending))


def test_list_filters_limits_and_json(live: LiveApi) -> None:
    failed = failed_with_epochs(live, [1])
    other = live.create("backtesting")
    live.create("training")

    def ids(*args: str) -> list[str]:
        return [
            o["operation_id"] for o in json_of(ktrdr(live, "operations", "list", *args))["items"]
        ]

    assert ids("--json", "--status", "failed") == [failed]
    assert ids("--json", "--resumable") == [failed]
    assert ids("--json", "--type", "backtesting") == [other]
    page = json_of(ktrdr(live, "operations", "list", "--json", "--limit", "1"))
    assert page["total"] == 3 and len(page["items"]) == 1
    assert "1 of 3" in ktrdr(live, "operations", "list", "--limit", "1").stdout
    assert ktrdr(live, "operations", "list", "--status", "cancelled").stdout == "no operations\n"
    refused = ktrdr(live, "operations", "list", "--status", "sleeping")
    assert refused.exit_code == 1 and "(VALIDATION_ERROR)" in one_error_line(refused)
    assert ktrdr(live, "operations", "list", "--limit", "0").exit_code == 2


def test_show_prints_the_fields_a_person_needs(live: LiveApi) -> None:
    op = failed_with_epochs(live, [1, 2])
    result = ktrdr(live, "operations", "show", op)
    assert result.exit_code == 0, result.output
    lines = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert lines["operation"] == op and lines["type"] == "training"
    assert lines["status"] == "failed, resumable"
    assert lines["attempt"] == "1" and lines["worker"] == drive.WORKER
    assert lines["error"] == "boom (error)"
    assert lines["checkpoint"].startswith("epoch 2 (#2, periodic, ")
    assert lines["progress"] == "0%" and lines["result"] == "-"
    assert lines["created"].endswith(")") and lines["finished"] != "-"
    assert (
        json_of(ktrdr(live, "operations", "show", op, "--json"))
        == live.get(f"/operations/{op}").json()
    )


def test_show_a_completed_operation_summarises_its_result(live: LiveApi) -> None:
    op = running(live)

    async def finish(system: System) -> None:
        await progress(system, op, 100, "epoch 10/10", "done")
        await complete(system, op, {"accuracy": 0.93, "epochs": 10})

    live.drive(finish)
    lines = dict(
        line.split(None, 1) for line in ktrdr(live, "operations", "show", op).stdout.splitlines()
    )
    assert lines["status"] == "completed"
    assert lines["result"] == '{"accuracy": 0.93, "epochs": 10}'
    assert lines["progress"] == "100% · epoch 10/10 · done"


def test_unknown_and_malformed_ids(live: LiveApi) -> None:
    missing = str(uuid.uuid4())
    for command in ("show", "cancel", "resume", "watch"):
        result = ktrdr(live, "operations", command, missing)
        assert result.exit_code == 1, (command, result.output)
        line = one_error_line(result)
        assert line.endswith("(OPERATION_NOT_FOUND)") and missing in line
        malformed = ktrdr(live, "operations", command, "not-an-id")
        assert malformed.exit_code == 2
        assert "'not-an-id' is not an operation id" in malformed.stderr


def test_server_down_says_how_to_start_it() -> None:
    url = unused_url()
    result = runner.invoke(cli_operations.app, ["list", "--url", url])
    assert result.exit_code == 1
    line = one_error_line(result)
    assert f"cannot reach the ktrdr API at {url}: is it running?" in line
    assert "ktrdr serve" in line and "KTRDR_API_URL" in line
    via_env = runner.invoke(cli_checkpoints.app, ["stats"], env={"KTRDR_API_URL": url})
    assert via_env.exit_code == 1 and url in one_error_line(via_env)


def test_api_url_from_the_environment(live: LiveApi) -> None:
    op = live.create()
    result = runner.invoke(
        cli_operations.app,
        ["show", op, "--json"],
        env={"KTRDR_API_URL": live.url + "/", "KTRDR_API_TOKEN": live.token},
    )
    assert json_of(result)["operation_id"] == op


def test_cancel_pending_at_once_running_by_request(live: LiveApi) -> None:
    pending = live.create()
    result = ktrdr(live, "operations", "cancel", pending)
    assert result.exit_code == 0 and result.stdout == f"cancelled {pending}\n"
    busy = running(live)
    asked = ktrdr(live, "operations", "cancel", busy)
    assert asked.exit_code == 0 and "cancellation requested" in asked.stdout
    assert live.get(f"/operations/{busy}").json()["cancellation_requested"] is True
    raw = json_of(ktrdr(live, "operations", "cancel", busy, "--json"))
    assert raw == live.get(f"/operations/{busy}").json() and raw["status"] == "running"
    assert ktrdr(live, "operations", "cancel", pending).stdout == f"cancelled {pending}\n"
    failed = failed_with_epochs(live, [1])
    again = ktrdr(live, "operations", "cancel", failed, "--json")
    assert again.exit_code == 1
    assert one_error_line(again).endswith("(OPERATION_NOT_CANCELLABLE)")


def test_resume_from_a_chosen_checkpoint_then_refused(live: LiveApi) -> None:
    op = failed_with_epochs(live, [1, 2, 3])
    result = ktrdr(live, "operations", "resume", op, "--from-checkpoint", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"resuming {op} from checkpoint #2 (epoch 2)\n"
    assert live.get(f"/operations/{op}").json()["status"] == "resuming"
    again = ktrdr(live, "operations", "resume", op)
    assert again.exit_code == 1
    assert one_error_line(again).endswith("(OPERATION_NOT_RESUMABLE)")
    other = failed_with_epochs(live, [4])
    body = json_of(ktrdr(live, "operations", "resume", other, "--json"))
    assert body["status"] == "resuming" and body["resumed_from"]["summary"] == "epoch 4"
    assert ktrdr(live, "operations", "resume", other, "--from-checkpoint", "0").exit_code == 2


def worker_picks_up(live: LiveApi, op: str, outcome: str) -> threading.Thread:
    """A worker, in the background, that claims the resumed operation and finishes it."""

    async def work(system: System) -> None:
        while (state := await system.bus.states.operation(op)) and state.status != "resuming":
            await asyncio.sleep(0.02)
        await drive.claim(system, op)
        await progress(system, op, 60, "epoch 6/10", "training")
        if outcome == "completed":
            await complete(system, op, {"accuracy": 0.9})
        else:
            await drive.fail(system, op, "out of memory")

    thread = threading.Thread(target=live.drive, args=(work,))
    thread.start()
    return thread


@pytest.mark.parametrize(("outcome", "code"), [("completed", 0), ("failed", 1)])
def test_resume_follow_shows_progress_until_it_finishes(
    live: LiveApi, outcome: str, code: int
) -> None:
    op = failed_with_epochs(live, [1])
    worker = worker_picks_up(live, op, outcome)
    result = ktrdr(
        live, "operations", "resume", op, "--follow", "--interval", "0.05", "--timeout", "20"
    )
    worker.join()
    assert result.exit_code == code, result.output
    final = result.stdout.splitlines()[-1]
    expected = f"{op} completed" if code == 0 else f"{op} failed: out of memory (error)"
    assert final == expected
    assert f"status: {outcome}" in result.stderr


def test_watch_exit_codes_and_json(live: LiveApi) -> None:
    done = running(live)
    live.drive(lambda system: complete(system, done, {"ok": True}))
    ok = ktrdr(live, "operations", "watch", done)
    assert ok.exit_code == 0 and ok.stdout == f"{done} completed\n"
    assert "status: completed" in ok.stderr

    failed = failed_with_epochs(live, [1])
    bad = ktrdr(live, "operations", "watch", failed, "--json")
    assert bad.exit_code == 1
    final = json.loads(bad.stdout)
    assert final["status"] == "failed" and final["error"]["message"] == "boom"
    assert final == live.get(f"/operations/{failed}").json()


def test_watch_stops_by_itself_at_the_timeout(live: LiveApi) -> None:
    op = running(live)
    live.drive(lambda system: progress(system, op, 42, "epoch 4/10", "loss 0.31"))
    started = time.monotonic()
    result = ktrdr(live, "operations", "watch", op, "--interval", "0.05", "--timeout", "0.3")
    assert time.monotonic() - started < 3
    assert result.exit_code == 1
    assert f"{op} is still running" in result.stderr
    assert "42%" in result.stderr and "epoch 4/10 · loss 0.31" in result.stderr


def _commands(group: typer.Typer) -> dict[str, Any]:
    commands: dict[str, Any] = typer.main.get_command(group).commands  # type: ignore[attr-defined]
    return commands


@pytest.mark.parametrize("group", [cli_operations.app, cli_checkpoints.app])
def test_every_command_and_option_explains_itself(group: typer.Typer) -> None:
    commands = _commands(group)
    assert commands
    for name, command in commands.items():
        assert command.help, name
        for param in command.params:
            assert getattr(param, "help", None), f"{name} {param.name}"


def test_operations_help_lists_every_command() -> None:
    result = runner.invoke(cli_operations.app, [])
    assert result.exit_code in (0, 2)
    for name in ("start", "list", "show", "cancel", "resume", "watch"):
        assert name in result.output
