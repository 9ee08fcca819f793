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

from ktrdr import __version__
from ktrdr.bootstrap.system import System
from ktrdr.cli import checkpoints as cli_checkpoints
from ktrdr.cli import operations as cli_operations
from ktrdr.cli.app import app
from ktrdr.cli.metrics import TICKS
from ktrdr.domain import RecordMetrics, ReportProgress
from tests.e2e.cli_helpers import (
    failed_with_epochs,
    json_of,
    ktrdr,
    one_error_line,
    runner,
    table_fits,
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
            *("operations", "start", "backtesting", "--json"),
            *("--params-json", '{"bars": 1, "seed": 5}'),
            *("--param", "bars=300", "--param", "fee_bps=0.5"),
            *("-p", "model_operation_id=run 7", "-p", 'strategy={"name": "rsi", "period": 9}'),
        )
    )
    assert created["status"] == "pending" and created["operation_type"] == "backtesting"
    assert created["params"] == {
        "bars": 300,
        "seed": 5,
        "fee_bps": 0.5,
        "model_operation_id": "run 7",
        "strategy": {"name": "rsi", "period": 9},
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
    result = ktrdr(live, "operations", "start", "training", "--max-attempts", "5000")
    assert result.exit_code == 1
    assert one_error_line(result).endswith("(VALIDATION_ERROR)")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        (["-p", "epochs=abc"], "epochs"),
        (["-p", "epochz=5"], "epochz"),
        (["-p", "epochs=-1"], "epochs"),
    ],
)
def test_params_the_type_does_not_take_are_one_line_and_create_nothing(
    live: LiveApi, params: list[str], field: str
) -> None:
    result = ktrdr(live, "operations", "start", "training", *params)
    assert result.exit_code == 1
    line = one_error_line(result)
    assert f"invalid training params: {field}: " in line and line.endswith("(VALIDATION_ERROR)")
    assert live.get("/operations").json()["total"] == 0


def test_params_lists_each_field_its_type_default_and_description(live: LiveApi) -> None:
    result = ktrdr(live, "operations", "params", "training")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:] if line.strip()}
    assert rows["epochs"].split()[1:4] == ["integer", "≥1", "≤100000"]
    assert "8" in rows["epochs"].split() and "Passes over the training bars." in rows["epochs"]
    assert "fail_at_epoch" not in result.stdout
    strategies = ktrdr(live, "operations", "params", "backtesting").stdout
    assert "rsi | ma_crossover | model_signal" in strategies
    unknown = ktrdr(live, "operations", "params", "dancing")
    assert unknown.exit_code == 2 and "dancing" in unknown.output


def test_start_help_says_where_the_params_are_listed() -> None:
    result = runner.invoke(cli_operations.app, ["start", "--help"], env={"COLUMNS": "200"})
    assert "ktrdr operations params TYPE" in result.output


@pytest.mark.parametrize(
    ("args", "valid"),
    [
        (["operations", "start", "dancing"], "'training', 'backtesting', 'agent_research'"),
        (["operations", "list", "--status", "sleeping"], "'pending', 'resuming', 'running',"),
        (["operations", "list", "--type", "x"], "'training', 'backtesting', 'agent_research'"),
        (["checkpoints", "list", "--checkpoint-type", "x"], "'periodic', 'cancellation',"),
        (["operations", "list", "--limit", "0"], "greater than or equal to 1"),
        (["operations", "show", "not-an-id"], "'not-an-id' is not an operation id"),
    ],
)
def test_a_usage_error_is_one_line_naming_the_valid_values(
    live: LiveApi, args: list[str], valid: str
) -> None:
    result = ktrdr(live, *args)
    assert result.exit_code == 2
    line = one_error_line(result, code=2)
    assert valid in line and f"(see `ktrdr {' '.join(args[:2])} --help`)" in line
    assert live.get("/operations").json()["total"] == 0


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"ktrdr {__version__}\n"


def test_start_keep_checkpoints_then_follow(live: LiveApi) -> None:
    kept = json_of(ktrdr(live, "operations", "start", "training", "--keep-checkpoints", "--json"))
    default = json_of(ktrdr(live, "operations", "start", "training", "--json"))
    states = [
        live.drive(lambda system, op=op: system.bus.states.operation(op["operation_id"]))
        for op in (kept, default)
    ]
    assert [s.keep_checkpoints for s in states if s] == [True, False]

    seen: list[str] = []

    async def work(system: System) -> None:
        while not (ids := [o for o in await _pending(system) if o not in known]):
            await asyncio.sleep(0.02)
        seen.append(ids[0])
        await drive.claim(system, ids[0])
        await progress(system, ids[0], 50, "epoch 5/10", "training")
        await complete(system, ids[0], {"accuracy": 0.9})

    known = {kept["operation_id"], default["operation_id"]}
    worker = threading.Thread(target=live.drive, args=(work,))
    worker.start()
    result = ktrdr(live, "operations", "start", "training", "--follow", "--interval", "0.05")
    worker.join()
    assert result.exit_code == 0, result.output
    created, *_, final = result.stdout.splitlines()
    assert created.startswith(f"created {seen[0]} (training, ")
    assert final == f"{seen[0]} completed"
    assert "status: completed" in result.stderr
    summary = dict(line.split(None, 1) for line in result.stderr.splitlines()[-9:] if line)
    assert summary["operation"] == f"{seen[0]} (training)"
    assert summary["result"] == '{"accuracy": 0.9}' and summary["took"] != "-"


async def _pending(system: System) -> list[str]:
    from ktrdr.projections import views

    async with system.pool.connection() as conn:
        items, _ = await views.list_operations(conn, status="pending")
    return [o["operation_id"] for o in items]


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
    failed, backtest, pending = failed[:8], backtest[:8], pending[:8]
    assert rows[failed][1:3] == ["training", "failed"] and "epoch 2" in " ".join(rows[failed])
    assert rows[backtest][1:3] == ["backtesting", "running"]
    assert "bar 5400" in " ".join(rows[backtest])
    assert rows[pending][1:5] == ["agent_research", "pending", "0%", "-"]
    assert all(rows[op][-1] in ("0s", "1s", "2s") for op in (failed, backtest, pending))


@pytest.mark.parametrize("columns", [80, 120])
def test_list_fits_the_terminal_with_short_ids(live: LiveApi, columns: int) -> None:
    ops = [failed_with_epochs(live, [1, 2]), running(live, "backtesting", bar_index=123456)]
    ops.append(live.create("agent_research"))
    result = ktrdr(live, "operations", "list", columns=columns)
    assert result.exit_code == 0, result.output
    lines = table_fits(
        result.stdout, columns, ("ID", "TYPE", "STATUS", "PROGRESS", "CHECKPOINT", "AGE")
    )
    starts = {line.split()[0]: line.split() for line in lines if line.strip()}
    for op in ops:
        assert starts[op[:8]][-1] in ("0s", "1s", "2s", "3s"), lines
    checkpoints = ktrdr(live, "checkpoints", "list", columns=columns)
    rows = table_fits(
        checkpoints.stdout, columns, ("OPERATION", "TYPE", "CHECKPOINT", "SIZE", "AGE")
    )
    assert {line.split()[0] for line in rows if line.strip()} >= {ops[0][:8], ops[1][:8]}


def test_unique_id_prefixes_work_everywhere(live: LiveApi) -> None:
    ops = [failed_with_epochs(live, [1, 2]) for _ in range(20)]
    op = ops[0]
    unique = next(op[:n] for n in range(1, 36) if sum(o.startswith(op[:n]) for o in ops) == 1)
    shown = ktrdr(live, "operations", "show", unique)
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.splitlines()[0].split() == ["operation", op]
    assert json_of(ktrdr(live, "checkpoints", "show", unique, "--json"))["operation_id"] == op
    watched = ktrdr(live, "operations", "watch", unique, "--json")
    assert watched.exit_code == 1 and json.loads(watched.stdout)["operation_id"] == op
    resumed = ktrdr(live, "operations", "resume", op[:8].upper())
    assert resumed.stdout == f"resuming {op} from checkpoint #2 (epoch 2)\n", resumed.output
    cancelled = ktrdr(live, "operations", "cancel", op[:13])
    assert cancelled.stdout == f"cancelled {op}\n", cancelled.output
    deleted = ktrdr(live, "checkpoints", "delete", ops[1][:10], "--force")
    assert deleted.exit_code == 0 and ops[1] in deleted.stdout, deleted.output

    digit = next(d for d in "0123456789abcdef" if sum(o.startswith(d) for o in ops) >= 2)
    matching = sorted(o for o in ops if o.startswith(digit))
    ambiguous = ktrdr(live, "operations", "show", digit)
    assert ambiguous.exit_code == 1 and ambiguous.stdout == ""
    first, *listed = ambiguous.stderr.strip().splitlines()
    assert first.startswith(f"error: '{digit}' is ambiguous: {len(matching)} operation ids")
    assert sorted(line.split()[0] for line in listed[:10]) == matching[:10] or len(matching) > 10
    # Each match is listed with its type and its status now (ops[0] was resumed and cancelled).
    status = {o: live.get(f"/operations/{o}").json()["status"] for o in matching}
    shown_rows = [line.split() for line in listed if "more" not in line]
    assert all(row[1:3] == ["training", status[row[0]]] for row in shown_rows), listed

    absent = next(p for p in ("0000", "ffff", "abab") if not any(o.startswith(p) for o in ops))
    missing = ktrdr(live, "checkpoints", "show", absent)
    assert missing.exit_code == 1
    assert one_error_line(missing) == f"error: no operation id starts with '{absent}'"


def test_workers_list(live: LiveApi) -> None:
    assert ktrdr(live, "workers", "list").stdout.startswith("no workers")
    trainer = "trainer-with-a-long-name-1"
    for worker_id, worker_type in ((trainer, "training"), ("bt-2", "backtesting")):
        body = {"worker_type": worker_type, "host": "h", "pid": 1, "version": "test"}
        response = httpx.post(
            f"{live.url}/api/v1/workers",
            json=body | {"worker_id": worker_id},
            headers=live.headers,
        )
        assert response.status_code == 201, response.text
    op = live.create()
    live.drive(lambda system: drive.claim(system, op, worker=trainer))
    for columns in (80, 120):
        result = ktrdr(live, "workers", "list", columns=columns)
        assert result.exit_code == 0, result.output
        lines = table_fits(
            result.stdout, columns, ("WORKER", "TYPE", "STATUS", "OPERATION", "HEARTBEAT")
        )
        rows = {line.split()[0]: line.split() for line in lines if line.strip()}
        assert rows["bt-2"][1:4] == ["backtesting", "alive", "-"]
        assert rows["bt-2"][-2:] in (["0s", "ago"], ["1s", "ago"], ["2s", "ago"])
        assert rows[trainer][1:4] == ["training", "alive", op[:8]]
    listed = json_of(ktrdr(live, "workers", "list", "--json"))
    assert {w["worker_id"] for w in listed["items"]} == {trainer, "bt-2"}


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


def test_resume_on_another_device_is_refused_unless_allowed(live: LiveApi) -> None:
    op = live.create("training")

    async def failed_on_cuda(system: System) -> None:
        await drive.claim(system, op)
        await drive.checkpoint(system, op, {"epoch": 3, "device": "cuda"})
        await drive.fail(system, op)

    live.drive(failed_on_cuda)
    refused = ktrdr(live, "operations", "resume", op, "--device", "cpu")
    assert refused.exit_code == 1
    line = one_error_line(refused)
    assert "made on cuda" in line and line.endswith("(DEVICE_CHANGE_REFUSED)")
    allowed = ktrdr(live, "operations", "resume", op, "--device", "cpu", "--allow-device-change")
    assert allowed.exit_code == 0, allowed.output
    assert allowed.stdout == f"resuming {op} from checkpoint #1 (epoch 3) on cpu\n"
    params = live.get(f"/operations/{op}").json()["params"]
    assert params == {"device": "cpu", "allow_device_change": True}


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


def _commands(group: str) -> dict[str, Any]:
    root: Any = typer.main.get_command(app)
    commands: dict[str, Any] = root.commands[group].commands
    return commands


@pytest.mark.parametrize("group", ["operations", "checkpoints", "workers"])
def test_every_command_and_option_explains_itself(group: str) -> None:
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


@pytest.mark.parametrize(
    ("details", "shown"),
    [
        (
            {"val_loss": 0.314159, "train_loss": 0.5, "eta_seconds": 75},
            ["val_loss 0.3142", "ETA 1:15"],
        ),
        ({"portfolio_value": 101234.5}, ["portfolio 101,234.50"]),
    ],
)
def test_watch_shows_elapsed_time_eta_and_the_latest_value(
    live: LiveApi, details: dict[str, Any], shown: list[str]
) -> None:
    op = running(live)
    live.drive(
        lambda system: drive.as_its_worker(
            system, op, ReportProgress, percentage=42, current_step="epoch 4/10", details=details
        )
    )
    result = ktrdr(live, "operations", "watch", op[:8], "--interval", "0.05", "--timeout", "0.3")
    assert result.exit_code == 1
    shown_once = " ".join(result.stderr.split())  # the bar's text wraps in a narrow terminal
    for text in ["42%", "epoch 4/10", "elapsed", *shown]:
        assert text in shown_once, result.stderr


def test_show_metrics_draws_the_curves(live: LiveApi) -> None:
    op = running(live)
    epochs = [
        {"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e + 0.01 * e} for e in range(1, 31)
    ]
    equity = [{"bar_index": i * 100, "portfolio_value": 100_000.0 + i * 50} for i in range(80)]

    async def record(system: System) -> None:
        await drive.as_its_worker(system, op, RecordMetrics, series="epochs", points=epochs)
        await drive.as_its_worker(system, op, RecordMetrics, series="equity", points=equity)

    live.drive(record)
    result = ktrdr(live, "operations", "show", op[:10], "--metrics", columns=80)
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert lines["operation"].split()[1] == op
    train = lines["train_loss"].split()
    assert train[1][0] == "█" and train[1][-1] == "▁" and len(train[1]) == 30
    assert train[2:] == ["1", "→", "0.03333", "(min", "0.03333,", "30", "epochs)"]
    val = lines["val_loss"].split()
    assert set(val[1]) <= set(TICKS) and "min" in lines["val_loss"]
    money = lines["portfolio_value"].split()
    assert len(money[1]) == 40 and money[1][0] == "▁" and money[1][-1] == "█"
    assert money[2:] == ["100,000.00", "→", "103,950.00", "(80", "samples)"]
    body = json_of(ktrdr(live, "operations", "show", op, "--metrics", "--json"))
    assert body["metrics"]["epochs"] == epochs

    empty = running(live)
    shown = ktrdr(live, "operations", "show", empty, "--metrics").stdout
    assert shown.splitlines()[-1] == "metrics:  none recorded yet"
